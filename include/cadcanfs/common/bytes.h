// Byte-level helpers shared by every layer: fixed-width big-endian integers,
// hex and RFC 4648 base32 (lowercase, unpadded) text encodings.
//
// All functions are pure and thread-safe.
#ifndef CADCANFS_COMMON_BYTES_H_
#define CADCANFS_COMMON_BYTES_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cadcanfs {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;
using MutableByteSpan = std::span<uint8_t>;

inline ByteSpan AsBytes(std::string_view s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
inline std::string_view AsChars(ByteSpan b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

inline void PutU16BE(uint8_t* out, uint16_t v) {
  out[0] = static_cast<uint8_t>(v >> 8);
  out[1] = static_cast<uint8_t>(v);
}
inline void PutU32BE(uint8_t* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
inline void PutU64BE(uint8_t* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
}
inline uint16_t GetU16BE(const uint8_t* in) {
  return static_cast<uint16_t>((uint16_t{in[0]} << 8) | in[1]);
}
inline uint32_t GetU32BE(const uint8_t* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | in[i];
  return v;
}
inline uint64_t GetU64BE(const uint8_t* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | in[i];
  return v;
}

std::string HexEncode(ByteSpan data);
// Accepts upper- or lowercase; rejects odd lengths and non-hex characters.
std::optional<Bytes> HexDecode(std::string_view text);

// RFC 4648 base32 with the lowercase alphabet "a-z2-7" and no padding. Lowercase
// because vaults also live on case-insensitive stores (OneDrive).
std::string Base32Encode(ByteSpan data);
// Rejects uppercase, padding, characters outside the alphabet and non-canonical
// trailing bits, so every byte string has exactly one accepted encoding.
std::optional<Bytes> Base32Decode(std::string_view text);
// Length of Base32Encode's output for `n` input bytes.
constexpr size_t Base32EncodedLength(size_t n) { return (n * 8 + 4) / 5; }

// Constant-time comparison for MACs and key checks.
bool ConstantTimeEqual(ByteSpan a, ByteSpan b);

}  // namespace cadcanfs

#endif  // CADCANFS_COMMON_BYTES_H_
