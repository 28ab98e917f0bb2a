#include "cadcanfs/vault/content.h"

#include <algorithm>

#include "cadcanfs/crypto/random.h"

namespace cadcanfs {

namespace {

constexpr size_t kBlockAadSize = kFileIdSize + 8 + 1;

std::array<uint8_t, kBlockAadSize> BlockAad(const FileId& file_id, uint64_t index, bool last) {
  std::array<uint8_t, kBlockAadSize> aad{};
  std::copy(file_id.begin(), file_id.end(), aad.begin());
  PutU64BE(aad.data() + kFileIdSize, index);
  aad[kFileIdSize + 8] = last ? 1 : 0;
  return aad;
}

}  // namespace

uint32_t BlockLayout::PlainLengthOfBlock(uint64_t index, uint64_t plain_size) const {
  uint64_t start = PlainOffsetOfBlock(index);
  if (start >= plain_size) return 0;
  return static_cast<uint32_t>(std::min<uint64_t>(block_size_, plain_size - start));
}

uint64_t BlockLayout::CipherSizeOfPlainSize(uint64_t plain_size) const {
  uint64_t n = BlockCount(plain_size);
  uint64_t last_len = plain_size - (n - 1) * block_size_;
  return kFileHeaderSize + (n - 1) * stored_block_size() + last_len + kBlockOverhead;
}

Result<uint64_t> BlockLayout::PlainSizeOfCipherSize(uint64_t cipher_size) const {
  if (cipher_size < kFileHeaderSize + kBlockOverhead) {
    return Status::Error(Code::kCorrupt, "ciphertext file is shorter than a header and a block");
  }
  uint64_t body = cipher_size - kFileHeaderSize;
  uint64_t n = (body + stored_block_size() - 1) / stored_block_size();
  uint64_t last_stored = body - (n - 1) * stored_block_size();
  if (last_stored < kBlockOverhead) {
    return Status::Error(Code::kCorrupt, "ciphertext file ends inside a block's nonce or tag");
  }
  uint64_t last_len = last_stored - kBlockOverhead;
  if (last_len == 0 && n > 1) {
    return Status::Error(Code::kCorrupt, "ciphertext file ends with an empty extra block");
  }
  return (n - 1) * block_size_ + last_len;
}

Status SealBlock(const FileKeys& keys, uint64_t index, bool last, ByteSpan plain, uint8_t* out) {
  CADCANFS_RETURN_IF_ERROR(FillRandom(std::span<uint8_t>(out, kGcmNonceSize)));
  auto aad = BlockAad(keys.file_id, index, last);
  return GcmSeal(*keys.content_key, ByteSpan(out, kGcmNonceSize), aad, plain, out + kGcmNonceSize,
                 out + kGcmNonceSize + plain.size());
}

Status OpenBlock(const FileKeys& keys, uint64_t index, bool last, ByteSpan stored, uint8_t* out) {
  if (stored.size() < kBlockOverhead) {
    return Status::Error(Code::kAuthenticationFailed, "stored block is shorter than its overhead");
  }
  const size_t len = stored.size() - kBlockOverhead;
  auto aad = BlockAad(keys.file_id, index, last);
  return GcmOpen(*keys.content_key, stored.subspan(0, kGcmNonceSize), aad,
                 stored.subspan(kGcmNonceSize, len), stored.subspan(kGcmNonceSize + len), out);
}

}  // namespace cadcanfs
