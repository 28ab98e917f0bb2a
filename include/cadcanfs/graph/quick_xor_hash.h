// QuickXorHash, OneDrive's content hash (Microsoft's C# reference algorithm).
//
// Each input byte b[i] is XORed into a 160-bit ring at bit (11*i mod 160); the total
// length, little-endian, is XORed into bytes 12..19 of the result. Because a byte's
// contribution depends only on its value and its offset, bytes may be added at any
// offset in any order: an upload that resumes from the middle of a fragment adds
// each byte exactly once, wherever the retry starts.
//
// Thread safety: like any value type.
#ifndef CADCANFS_GRAPH_QUICK_XOR_HASH_H_
#define CADCANFS_GRAPH_QUICK_XOR_HASH_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cadcanfs/common/bytes.h"

namespace cadcanfs::graph {

class QuickXorHash {
 public:
  static constexpr size_t kSize = 20;
  using State = std::array<uint8_t, kSize>;

  QuickXorHash() = default;
  // Restores a state saved with state() (for an upload resumed after a restart).
  explicit QuickXorHash(const State& state) : ring_(state) {}

  // Adds `data` as the bytes at `offset` of the input.
  void AddAt(uint64_t offset, ByteSpan data);
  // The 20-byte digest of an input of `total_length` bytes.
  State Digest(uint64_t total_length) const;
  // The digest as Graph shows it: base64 of the 20 bytes.
  std::string DigestBase64(uint64_t total_length) const;

  const State& state() const { return ring_; }

 private:
  State ring_{};
};

// Convenience: the base64 QuickXorHash of `data`.
std::string QuickXorHashBase64(ByteSpan data);

std::string Base64Encode(ByteSpan data);
std::optional<Bytes> Base64Decode(std::string_view text);

}  // namespace cadcanfs::graph

#endif  // CADCANFS_GRAPH_QUICK_XOR_HASH_H_
