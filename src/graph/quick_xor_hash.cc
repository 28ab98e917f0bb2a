#include "cadcanfs/graph/quick_xor_hash.h"

#include <openssl/evp.h>

namespace cadcanfs::graph {
namespace {

constexpr uint64_t kWidthInBits = 160;
constexpr uint64_t kShift = 11;

}  // namespace

void QuickXorHash::AddAt(uint64_t offset, ByteSpan data) {
  // Byte p of the input lands at bit 11 * (p mod 160) of the ring, so bytes 160 apart
  // land at the same place: they are XORed together first (a loop the compiler
  // vectorizes), and the 160 folded bytes are placed once. Byte by byte, hashing took
  // a tenth of an upload fragment's time.
  std::array<uint8_t, kWidthInBits> folded{};
  size_t at = static_cast<size_t>(offset % kWidthInBits);
  size_t i = 0;
  for (; i < data.size() && at != 0; ++i, at = (at + 1) % kWidthInBits) folded[at] ^= data[i];
  for (; i + kWidthInBits <= data.size(); i += kWidthInBits) {
    for (size_t k = 0; k < kWidthInBits; ++k) folded[k] ^= data[i + k];
  }
  for (; i < data.size(); ++i, ++at) folded[at] ^= data[i];
  for (size_t position = 0; position < kWidthInBits; ++position) {
    const uint8_t value = folded[position];
    if (value == 0) continue;
    const uint64_t bit = (kShift * position) % kWidthInBits;
    const size_t byte_index = bit / 8;
    const unsigned spread = static_cast<unsigned>(value) << (bit % 8);
    ring_[byte_index] ^= static_cast<uint8_t>(spread);
    ring_[(byte_index + 1) % kSize] ^= static_cast<uint8_t>(spread >> 8);
  }
}

QuickXorHash::State QuickXorHash::Digest(uint64_t total_length) const {
  State out = ring_;
  for (size_t i = 0; i < 8; ++i)
    out[kSize - 8 + i] ^= static_cast<uint8_t>(total_length >> (8 * i));
  return out;
}

std::string QuickXorHash::DigestBase64(uint64_t total_length) const {
  const State digest = Digest(total_length);
  return Base64Encode(digest);
}

std::string QuickXorHashBase64(ByteSpan data) {
  QuickXorHash hash;
  hash.AddAt(0, data);
  return hash.DigestBase64(data.size());
}

std::string Base64Encode(ByteSpan data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data.data(),
                                static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<Bytes> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  Bytes out(3 * (text.size() / 4));
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  size_t padding = 0;
  if (!text.empty() && text.back() == '=') ++padding;
  if (text.size() > 1 && text[text.size() - 2] == '=') ++padding;
  out.resize(static_cast<size_t>(n) - padding);
  return out;
}

}  // namespace cadcanfs::graph
