#include "cadcanfs/fs/encrypted_file.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>
#include <vector>

#include "cadcanfs/fs/cancellation.h"

namespace cadcanfs {

namespace {

// Store I/O is batched to about 1 MiB of ciphertext per call.
constexpr uint64_t kBatchBytes = 1 << 20;

// Opening asks for the header and the first blocks together: one backend fetch then
// serves the header and, for small files (a CBCT slice, a photo), the whole content,
// where reading the 192-byte header alone would cost a round trip of its own.
constexpr uint64_t kOpenPrefetchBytes = 256 << 10;

// A streaming reader keeps this much ciphertext requested ahead of where it reads, so
// the backend is fetching the next megabytes while we decrypt the current one.
constexpr uint64_t kStreamAheadBytes = 8 << 20;

// Per-thread scratch buffers, so the read/write path does not allocate once warm.
enum class Scratch { kCipher, kPlain, kSeal, kHeld, kCount };

std::vector<uint8_t>& ScratchBuffer(Scratch which) {
  thread_local std::array<std::vector<uint8_t>, static_cast<size_t>(Scratch::kCount)> buffers;
  return buffers[static_cast<size_t>(which)];
}

uint8_t* Sized(Scratch which, size_t size) {
  std::vector<uint8_t>& buffer = ScratchBuffer(which);
  if (buffer.size() < size) buffer.resize(size);
  return buffer.data();
}

Status BlockError(const Status& s, uint64_t index) {
  return Status::Error(s.code(), "block " + std::to_string(index) + ": " + s.message(),
                       s.sys_errno());
}

// Whether block `index` of the object, laid out for a ciphertext of `cipher_size`
// bytes, authenticates (with the last-block flag that size gives it).
bool BlockAuthenticates(StoreFile& object, const FileKeys& keys, BlockLayout layout,
                        uint64_t cipher_size, uint64_t index) {
  auto plain_size = layout.PlainSizeOfCipherSize(cipher_size);
  if (!plain_size.ok() || index >= layout.BlockCount(*plain_size)) return false;
  const uint32_t length = layout.PlainLengthOfBlock(index, *plain_size);
  std::vector<uint8_t> stored(length + kBlockOverhead);
  std::vector<uint8_t> plain(length);
  auto n = object.ReadAt(layout.CipherOffsetOfBlock(index), stored);
  if (!n.ok() || *n != stored.size()) return false;
  const bool last = index == layout.BlockCount(*plain_size) - 1;
  const bool ok = OpenBlock(keys, index, last, stored, plain.data()).ok();
  std::fill(plain.begin(), plain.end(), 0);
  return ok;
}

// A resize that did not finish (the process died during it) leaves a pending size in
// the header: the other size the file may have. The writer orders its store calls so
// that the last block of one of the two sizes is intact at every instant; this keeps
// the size whose last block authenticates, and on a writable open makes it final.
Result<uint64_t> SettlePendingResize(StoreFile& object, const FileKeys& keys, BlockLayout layout,
                                     uint64_t current, uint64_t pending, bool writable) {
  uint64_t settled = current;
  bool known = pending == current;
  if (!known) {
    auto smaller = layout.PlainSizeOfCipherSize(std::min(current, pending));
    if (smaller.ok()) {
      const uint64_t index = layout.BlockCount(*smaller) - 1;
      if (BlockAuthenticates(object, keys, layout, current, index)) {
        known = true;
      } else if (BlockAuthenticates(object, keys, layout, pending, index)) {
        known = true;
        settled = pending;
      }
    }
  }
  // Neither size holds together: that is damage, not a torn resize. Keep the hint.
  if (!known || !writable) return settled;
  if (settled != current) CADCANFS_RETURN_IF_ERROR(object.Truncate(settled));
  CADCANFS_RETURN_IF_ERROR(object.WriteAt(kPendingSizeOffset, EncodePendingSize(0)));
  return settled;
}

}  // namespace

EncryptedFile::EncryptedFile(std::unique_ptr<StoreFile> object, FileKeys keys, BlockLayout layout,
                             uint64_t plain_size, bool writable, bool can_reserve)
    : object_(std::move(object)),
      keys_(std::move(keys)),
      layout_(layout),
      plain_size_(plain_size),
      writable_(writable),
      can_reserve_(can_reserve) {}

Result<std::unique_ptr<EncryptedFile>> EncryptedFile::Create(Store& store, std::string_view path,
                                                             const MasterKey& master,
                                                             BlockLayout layout, uint32_t mode) {
  CADCANFS_ASSIGN_OR_RETURN(auto created, CreateFileHeader(master));
  auto& [header, opened] = created;
  // Header and the empty last block go out in one write.
  std::vector<uint8_t> initial(kFileHeaderSize + kBlockOverhead);
  std::copy(header.begin(), header.end(), initial.begin());
  CADCANFS_RETURN_IF_ERROR(SealBlock(opened.keys, 0, true, {}, initial.data() + kFileHeaderSize));
  OpenOptions options{
      .write = true, .create = true, .exclusive = true, .truncate = true, .mode = mode};
  CADCANFS_ASSIGN_OR_RETURN(std::unique_ptr<StoreFile> object, store.Open(path, options));
  Status s = object->WriteAt(0, initial);
  if (!s.ok()) {
    object.reset();
    (void)store.Remove(path);  // do not leave a headerless object behind
    return s;
  }
  return std::make_unique<EncryptedFile>(std::move(object), std::move(opened.keys), layout, 0,
                                         /*writable=*/true, store.capabilities().reserve);
}

Result<std::unique_ptr<EncryptedFile>> EncryptedFile::Open(
    Store& store, std::string_view path, bool writable, std::span<const MasterKey* const> masters,
    BlockLayout layout) {
  CADCANFS_ASSIGN_OR_RETURN(std::unique_ptr<StoreFile> object,
                            store.Open(path, OpenOptions{.write = writable}));
  object->Prefetch(0, kOpenPrefetchBytes);
  HeaderBytes header{};
  CADCANFS_ASSIGN_OR_RETURN(size_t n, object->ReadAt(0, header));
  if (n != header.size()) return Status::Error(Code::kCorrupt, "file header is truncated");
  CADCANFS_ASSIGN_OR_RETURN(OpenedHeader opened, OpenFileHeader(header, masters));
  CADCANFS_ASSIGN_OR_RETURN(uint64_t cipher_size, object->Size());
  if (uint64_t pending = PeekPendingSize(header); pending != 0) {
    CADCANFS_ASSIGN_OR_RETURN(cipher_size, SettlePendingResize(*object, opened.keys, layout,
                                                               cipher_size, pending, writable));
  }
  CADCANFS_ASSIGN_OR_RETURN(uint64_t plain_size, layout.PlainSizeOfCipherSize(cipher_size));
  return std::make_unique<EncryptedFile>(std::move(object), std::move(opened.keys), layout,
                                         plain_size, writable, store.capabilities().reserve);
}

Status EncryptedFile::UpgradeToWritable(std::unique_ptr<StoreFile> writable_object) {
  std::unique_lock lock(mu_);
  if (writable_.load(std::memory_order_relaxed)) return Status::Ok();
  object_ = std::move(writable_object);
  writable_.store(true, std::memory_order_release);
  return Status::Ok();
}

uint64_t EncryptedFile::size() const {
  std::shared_lock lock(mu_);
  return plain_size_;
}

std::string EncryptedFile::id_for_log() const { return "fid:" + HexEncode(keys_.file_id); }

Result<uint32_t> EncryptedFile::ReadBlockLocked(uint64_t index, uint8_t* out) {
  const uint32_t len = layout_.PlainLengthOfBlock(index, plain_size_);
  const bool last = index == layout_.BlockCount(plain_size_) - 1;
  uint8_t* stored = Sized(Scratch::kCipher, len + kBlockOverhead);
  CADCANFS_ASSIGN_OR_RETURN(size_t n,
                            object_->ReadAt(layout_.CipherOffsetOfBlock(index),
                                            std::span<uint8_t>(stored, len + kBlockOverhead)));
  if (n != len + kBlockOverhead) {
    return Status::Error(Code::kAuthenticationFailed,
                         "block " + std::to_string(index) + " is missing or short");
  }
  Status s = OpenBlock(keys_, index, last, ByteSpan(stored, n), out);
  if (!s.ok()) return BlockError(s, index);
  return len;
}

Result<size_t> EncryptedFile::Read(uint64_t offset, std::span<uint8_t> out) {
  std::shared_lock lock(mu_);
  if (offset >= plain_size_ || out.empty()) return size_t{0};
  const uint64_t length = std::min<uint64_t>(out.size(), plain_size_ - offset);
  const uint64_t end = offset + length;
  const uint64_t block_count = layout_.BlockCount(plain_size_);
  const uint64_t first = layout_.BlockIndexOfPlainOffset(offset);
  const uint64_t last = layout_.BlockIndexOfPlainOffset(end - 1);
  const uint64_t batch_blocks = std::max<uint64_t>(1, kBatchBytes / layout_.stored_block_size());
  uint8_t* partial = Sized(Scratch::kPlain, layout_.block_size());
  PrefetchAfter(offset, end);

  for (uint64_t batch_first = first; batch_first <= last; batch_first += batch_blocks) {
    const uint64_t batch_last = std::min(last, batch_first + batch_blocks - 1);
    const uint64_t cipher_begin = layout_.CipherOffsetOfBlock(batch_first);
    const uint64_t cipher_end = layout_.CipherOffsetOfBlock(batch_last) +
                                layout_.PlainLengthOfBlock(batch_last, plain_size_) +
                                kBlockOverhead;
    uint8_t* stored = Sized(Scratch::kCipher, cipher_end - cipher_begin);
    CADCANFS_ASSIGN_OR_RETURN(
        size_t n,
        object_->ReadAt(cipher_begin, std::span<uint8_t>(stored, cipher_end - cipher_begin)));
    if (n != cipher_end - cipher_begin) {
      return Status::Error(Code::kAuthenticationFailed, "ciphertext is shorter than its size");
    }
    for (uint64_t index = batch_first; index <= batch_last; ++index) {
      const uint64_t block_plain_start = layout_.PlainOffsetOfBlock(index);
      const uint32_t len = layout_.PlainLengthOfBlock(index, plain_size_);
      ByteSpan block(stored + (layout_.CipherOffsetOfBlock(index) - cipher_begin),
                     len + kBlockOverhead);
      const uint64_t copy_from = std::max(offset, block_plain_start);
      const uint64_t copy_to = std::min(end, block_plain_start + len);
      const bool whole = copy_from == block_plain_start && copy_to == block_plain_start + len;
      // Whole blocks decrypt straight into the caller's buffer; edges go via scratch.
      uint8_t* dest = whole ? out.data() + (block_plain_start - offset) : partial;
      Status s = OpenBlock(keys_, index, index == block_count - 1, block, dest);
      if (!s.ok()) return BlockError(s, index);
      if (!whole) {
        std::memcpy(out.data() + (copy_from - offset), partial + (copy_from - block_plain_start),
                    copy_to - copy_from);
      }
    }
  }
  return static_cast<size_t>(length);
}

void EncryptedFile::PrefetchAfter(uint64_t offset, uint64_t end) {
  // Only a read that continues the previous one counts as streaming; random reads
  // (a CAD viewer jumping around a volume) must not drag in data nobody asked for.
  const uint64_t expected = next_sequential_.exchange(end, std::memory_order_relaxed);
  if (offset != expected || offset == 0) return;
  const uint64_t cipher_end = layout_.CipherOffsetOfBlock(layout_.BlockIndexOfPlainOffset(end));
  const uint64_t wanted = cipher_end + kStreamAheadBytes;
  uint64_t done = prefetched_until_.load(std::memory_order_relaxed);
  // Beyond `wanted` means an earlier pass over the file: start afresh from here.
  const bool current = done > cipher_end && done <= wanted;
  if (current && done - cipher_end >= kStreamAheadBytes / 2) return;  // still far enough ahead
  const uint64_t from = current ? done : cipher_end;
  if (!prefetched_until_.compare_exchange_strong(done, wanted, std::memory_order_relaxed)) return;
  object_->Prefetch(from, wanted - from);
}

Status EncryptedFile::Write(uint64_t offset, ByteSpan data) {
  if (data.empty()) return Status::Ok();
  std::unique_lock lock(mu_);
  return WriteRangeLocked(offset, data.size(), data.data());
}

Result<uint64_t> EncryptedFile::Append(ByteSpan data) {
  std::unique_lock lock(mu_);
  const uint64_t offset = plain_size_;
  if (!data.empty()) CADCANFS_RETURN_IF_ERROR(WriteRangeLocked(offset, data.size(), data.data()));
  return offset;
}

Result<ObjectInfo> EncryptedFile::Stat() {
  std::shared_lock lock(mu_);
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, object_->Stat());
  info.size = plain_size_;
  return info;
}

// A growing write must not damage what is already stored if the disk fills up. So the
// bytes past the old end of the ciphertext are written first: that is where a full
// disk fails (write(2) reserves space as it goes on ext4, XFS, btrfs and tmpfs). Only
// then are existing bytes overwritten, which needs no new space. The old last block
// straddles the old end, so its part below the end is held back until last.
//
// Nor must it lose the old last block if the process dies half way: until the held-back
// bytes land, the file reads back whole only at its old size. So the header first
// records the old size as pending; a reopen that finds the new size broken keeps the
// old one (SettlePendingResize).
//
// No fallocate here: it allocates extents immediately and, for a file written in
// small pieces (tar writes 10 KiB records), scatters the file over the disk; delayed
// allocation at writeback lays it out contiguously, so reading it back costs one I/O.
Status EncryptedFile::WriteRangeLocked(uint64_t offset, uint64_t length, const uint8_t* data) {
  const uint64_t old_size = plain_size_;
  const uint64_t end = offset + length;
  const uint64_t new_size = std::max(old_size, end);
  const uint64_t old_count = layout_.BlockCount(old_size);
  const uint64_t new_count = layout_.BlockCount(new_size);
  const WriteSpan span{offset, end, new_size, data};
  if (new_size == old_size) {
    Status s = WriteBlocksLocked(span, layout_.BlockIndexOfPlainOffset(offset),
                                 layout_.BlockIndexOfPlainOffset(end - 1), nullptr);
    if (!s.ok()) tail_valid_ = false;  // the stored last block may not match it now
    return s;
  }
  // Growing re-seals the old last block (its flag changes) and fills any gap with zeros.
  const uint64_t old_last = old_count - 1;
  const uint64_t first = std::min(layout_.BlockIndexOfPlainOffset(offset), old_last);
  const uint64_t last = std::min(new_count - 1, layout_.BlockIndexOfPlainOffset(end - 1));
  const uint64_t old_cipher_size = layout_.CipherSizeOfPlainSize(old_size);
  CADCANFS_RETURN_IF_ERROR(RecordPendingLocked(old_cipher_size));
  HeldBytes held{old_cipher_size, 0, ScratchBuffer(Scratch::kHeld)};
  held.bytes.clear();
  Status s = WriteBlocksLocked(span, old_last, last, &held);
  if (s.ok() && first < old_last) s = WriteBlocksLocked(span, first, old_last - 1, nullptr);
  if (s.ok()) s = object_->WriteAt(held.offset, held.bytes);
  if (!s.ok()) {
    // Drop whatever part of the tail landed: the old last block still carries the
    // last-block flag, so the file is whole again at its old size.
    tail_valid_ = false;
    if (object_->Truncate(old_cipher_size).ok()) (void)RecordPendingLocked(0);
    return s;
  }
  plain_size_ = new_size;
  // The write is complete. A pending size left behind if this fails is harmless: the
  // new size's last block authenticates, so a reopen keeps it.
  (void)RecordPendingLocked(0);
  return Status::Ok();
}

Status EncryptedFile::RecordPendingLocked(uint64_t cipher_size) {
  if (cipher_size > kMaxPendingSize) {
    return Status::Error(Code::kFileTooLarge, "file is too large for this format");
  }
  return object_->WriteAt(kPendingSizeOffset, EncodePendingSize(cipher_size));
}

Status EncryptedFile::WriteBlocksLocked(const WriteSpan& span, uint64_t first, uint64_t last,
                                        HeldBytes* held) {
  const uint64_t old_size = plain_size_;
  const uint64_t old_count = layout_.BlockCount(old_size);
  const uint64_t new_count = layout_.BlockCount(span.new_size);
  const uint64_t batch_blocks = std::max<uint64_t>(1, kBatchBytes / layout_.stored_block_size());
  uint8_t* plain = Sized(Scratch::kPlain, layout_.block_size());

  for (uint64_t batch_first = first; batch_first <= last; batch_first += batch_blocks) {
    if (batch_first != first && CancelScope::Cancelled()) {
      return Status::Error(Code::kInterrupted, "the write was interrupted");
    }
    const uint64_t batch_last = std::min(last, batch_first + batch_blocks - 1);
    const uint64_t cipher_begin = layout_.CipherOffsetOfBlock(batch_first);
    const uint64_t batch_size = layout_.CipherOffsetOfBlock(batch_last) +
                                layout_.PlainLengthOfBlock(batch_last, span.new_size) +
                                kBlockOverhead - cipher_begin;
    uint8_t* sealed = Sized(Scratch::kSeal, batch_size);
    for (uint64_t index = batch_first; index <= batch_last; ++index) {
      const uint64_t block_start = layout_.PlainOffsetOfBlock(index);
      const uint32_t new_len = layout_.PlainLengthOfBlock(index, span.new_size);
      const uint64_t cover_from = std::max(span.offset, block_start);
      const uint64_t cover_to = std::min(span.end, block_start + new_len);
      const bool covered = cover_from <= block_start && cover_to >= block_start + new_len;
      const uint8_t* source = plain;
      if (covered && span.data != nullptr) {
        source = span.data + (block_start - span.offset);
      } else {
        std::memset(plain, 0, new_len);
        const bool had_content = index < old_count && layout_.PlainLengthOfBlock(index, old_size);
        if (!covered && had_content) {
          CADCANFS_RETURN_IF_ERROR(LoadBlockLocked(index, plain));
        }
        if (cover_from < cover_to && span.data != nullptr) {
          std::memcpy(plain + (cover_from - block_start), span.data + (cover_from - span.offset),
                      cover_to - cover_from);
        } else if (cover_from < cover_to) {
          std::memset(plain + (cover_from - block_start), 0, cover_to - cover_from);
        }
      }
      uint8_t* out = sealed + (layout_.CipherOffsetOfBlock(index) - cipher_begin);
      CADCANFS_RETURN_IF_ERROR(
          SealBlock(keys_, index, index == new_count - 1, ByteSpan(source, new_len), out));
      if (index == new_count - 1) RememberTailLocked(index, source, new_len);
    }
    uint64_t skip = 0;
    if (held != nullptr && cipher_begin < held->below) {
      skip = std::min(held->below - cipher_begin, batch_size);
      held->offset = cipher_begin;
      held->bytes.assign(sealed, sealed + skip);
    }
    if (skip < batch_size) {
      CADCANFS_RETURN_IF_ERROR(
          object_->WriteAt(cipher_begin + skip, ByteSpan(sealed + skip, batch_size - skip)));
    }
  }
  return Status::Ok();
}

void EncryptedFile::RememberTailLocked(uint64_t index, const uint8_t* plain, uint32_t length) {
  // Only a partial block is ever read back by a write; a full one is left alone.
  tail_valid_ = length < layout_.block_size();
  if (!tail_valid_) return;
  tail_index_ = index;
  tail_.assign(plain, plain + length);
}

Status EncryptedFile::LoadBlockLocked(uint64_t index, uint8_t* plain) {
  const uint32_t length = layout_.PlainLengthOfBlock(index, plain_size_);
  if (tail_valid_ && tail_index_ == index && tail_.size() == length) {
    std::memcpy(plain, tail_.data(), length);
    return Status::Ok();
  }
  return ReadBlockLocked(index, plain).status();
}

Status EncryptedFile::Truncate(uint64_t new_size) {
  std::unique_lock lock(mu_);
  if (new_size == plain_size_) return Status::Ok();
  if (new_size > plain_size_) return WriteRangeLocked(plain_size_, new_size - plain_size_, nullptr);
  return ShrinkLocked(new_size);
}

// Shrinking re-seals the new last block with its flag set, then cuts the object. Between
// the two, the file holds together only at the new size, so the header records that
// size as pending first; a reopen that finds the old size broken keeps the new one.
// If the cut fails, the old block goes back and the file keeps its old size.
Status EncryptedFile::ShrinkLocked(uint64_t new_size) {
  tail_valid_ = false;
  const uint64_t old_size = plain_size_;
  const uint64_t new_last = layout_.BlockCount(new_size) - 1;
  uint8_t* plain = Sized(Scratch::kPlain, layout_.block_size());
  CADCANFS_ASSIGN_OR_RETURN(const uint32_t old_len, ReadBlockLocked(new_last, plain));
  const uint32_t len = layout_.PlainLengthOfBlock(new_last, new_size);
  const uint64_t block_offset = layout_.CipherOffsetOfBlock(new_last);
  uint8_t* sealed = Sized(Scratch::kSeal, old_len + kBlockOverhead);
  CADCANFS_RETURN_IF_ERROR(SealBlock(keys_, new_last, true, ByteSpan(plain, len), sealed));
  CADCANFS_RETURN_IF_ERROR(RecordPendingLocked(layout_.CipherSizeOfPlainSize(new_size)));
  CADCANFS_RETURN_IF_ERROR(object_->WriteAt(block_offset, ByteSpan(sealed, len + kBlockOverhead)));
  Status cut = object_->Truncate(layout_.CipherSizeOfPlainSize(new_size));
  if (!cut.ok()) {
    const bool was_last = new_last == layout_.BlockCount(old_size) - 1;
    Status restored = SealBlock(keys_, new_last, was_last, ByteSpan(plain, old_len), sealed);
    if (restored.ok()) {
      restored = object_->WriteAt(block_offset, ByteSpan(sealed, old_len + kBlockOverhead));
    }
    // Without the old block back, the pending size keeps the new size readable.
    if (restored.ok()) (void)RecordPendingLocked(0);
    return cut;
  }
  plain_size_ = new_size;
  (void)RecordPendingLocked(0);  // harmless if it fails: the new size holds together
  return Status::Ok();
}

Status EncryptedFile::Allocate(uint64_t offset, uint64_t length, bool keep_size) {
  std::unique_lock lock(mu_);
  const uint64_t end = offset + length;
  if (!keep_size && end > plain_size_) {
    CADCANFS_RETURN_IF_ERROR(WriteRangeLocked(plain_size_, end - plain_size_, nullptr));
  }
  if (!can_reserve_) return Status::Ok();  // space is taken as bytes land
  const uint64_t cipher_begin =
      layout_.CipherOffsetOfBlock(layout_.BlockIndexOfPlainOffset(offset));
  return object_->Reserve(cipher_begin, layout_.CipherSizeOfPlainSize(end) - cipher_begin);
}

Status EncryptedFile::Sync() {
  // Shared: committing changes no state, so readers need not wait; writers still do.
  std::shared_lock lock(mu_);
  return object_->Commit(std::nullopt).status();
}

Status EncryptedFile::Checkpoint() {
  std::shared_lock lock(mu_);
  return object_->Checkpoint();
}

Status EncryptedFile::VerifyAllBlocks() {
  std::shared_lock lock(mu_);
  std::vector<uint8_t> plain(layout_.block_size());
  const uint64_t count = layout_.BlockCount(plain_size_);
  for (uint64_t index = 0; index < count; ++index) {
    CADCANFS_RETURN_IF_ERROR(ReadBlockLocked(index, plain.data()).status());
  }
  return Status::Ok();
}

}  // namespace cadcanfs
