// Content encryption: fixed-size plaintext blocks sealed with AES-256-GCM.
//
// A ciphertext file is the 192-byte header followed by n >= 1 stored blocks. Block i
// holds plaintext bytes [i*B, min((i+1)*B, size)); every block but the last is full.
// An empty file has one empty last block, so truncating a file to its bare header is
// detected too. A stored block is
//     nonce (12, random) || GCM ciphertext (len) || tag (16)
// with associated data
//     file id (16) || block index (8, big-endian) || last-block flag (1: 0x01 or 0x00)
// which detects bit flips, blocks moved within or between files, and truncation or
// extension at a block boundary.
//
// Offsets are kept in pure functions (as gocryptfs' offsets.go does): "plain" and
// "cipher" in every name say which space an offset lives in.
//
// Thread safety: pure functions; SealBlock/OpenBlock are safe to call concurrently.
#ifndef CADCANFS_VAULT_CONTENT_H_
#define CADCANFS_VAULT_CONTENT_H_

#include <cstdint>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/common/status.h"
#include "cadcanfs/vault/file_header.h"

namespace cadcanfs {

inline constexpr uint32_t kBlockOverhead = kGcmNonceSize + kGcmTagSize;  // 28

class BlockLayout {
 public:
  explicit BlockLayout(uint32_t block_size) : block_size_(block_size) {}

  uint32_t block_size() const { return block_size_; }
  uint64_t stored_block_size() const { return uint64_t{block_size_} + kBlockOverhead; }

  // Number of stored blocks for a plaintext size (at least 1).
  uint64_t BlockCount(uint64_t plain_size) const {
    return plain_size == 0 ? 1 : (plain_size + block_size_ - 1) / block_size_;
  }
  uint64_t BlockIndexOfPlainOffset(uint64_t plain_offset) const {
    return plain_offset / block_size_;
  }
  uint64_t PlainOffsetOfBlock(uint64_t index) const { return index * block_size_; }
  uint64_t CipherOffsetOfBlock(uint64_t index) const {
    return kFileHeaderSize + index * stored_block_size();
  }
  // Plaintext length of block `index` in a file of `plain_size` bytes.
  uint32_t PlainLengthOfBlock(uint64_t index, uint64_t plain_size) const;
  uint64_t CipherSizeOfPlainSize(uint64_t plain_size) const;
  // kCorrupt for sizes no valid file can have (a torn or truncated block).
  Result<uint64_t> PlainSizeOfCipherSize(uint64_t cipher_size) const;

 private:
  uint32_t block_size_;
};

// Seals `plain` (at most one block) as block `index`; writes plain.size()+28 bytes to `out`.
Status SealBlock(const FileKeys& keys, uint64_t index, bool last, ByteSpan plain, uint8_t* out);

// Opens stored block `index`; writes stored.size()-28 bytes to `out`.
// kAuthenticationFailed if anything about it is wrong.
Status OpenBlock(const FileKeys& keys, uint64_t index, bool last, ByteSpan stored, uint8_t* out);

}  // namespace cadcanfs

#endif  // CADCANFS_VAULT_CONTENT_H_
