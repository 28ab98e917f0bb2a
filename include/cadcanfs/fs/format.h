// Format: what FileSystem needs to know about how plaintext is laid out in a store.
//
// One FileSystem, one FUSE frontend, one inode table and one set of handle rules serve
// every mount; what differs between an encrypted vault and a plain tree (an office's
// own OneDrive folder, or a local directory used to test the core) is only this:
//   - names in a directory: encrypted (with long-name sidecars) or as they are;
//   - content: an EncryptedFile, or a pass-through PlainFile;
//   - per-directory state: a directory id, or nothing;
//   - symlink targets and extended attributes: sealed, or as they are.
// The Vault is one implementation and PlainFormat (plain_format.h) the other.
//
// Thread safety: implementations hold no mutable state after construction; all
// methods may be called concurrently.
#ifndef CADCANFS_FS_FORMAT_H_
#define CADCANFS_FS_FORMAT_H_

#include <sys/types.h>
#include <time.h>

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/common/status.h"
#include "cadcanfs/store/store.h"
#include "cadcanfs/vault/names.h"

namespace cadcanfs {

// The open content of one regular file, shared by all handles of its inode.
//
// Thread safety: Read and Sync may run concurrently with each other; Write, Truncate
// and Allocate are serialised against everything else by the implementation.
class FileContent {
 public:
  virtual ~FileContent() = default;

  virtual uint64_t size() const = 0;
  // A name for logs that identifies the file without naming it ("fid:<hex>").
  virtual std::string id_for_log() const = 0;

  virtual Result<size_t> Read(uint64_t offset, std::span<uint8_t> out) = 0;
  virtual Status Write(uint64_t offset, ByteSpan data) = 0;
  // Writes at the current end; returns the offset written at.
  virtual Result<uint64_t> Append(ByteSpan data) = 0;
  virtual Status Truncate(uint64_t new_size) = 0;
  virtual Status Allocate(uint64_t offset, uint64_t length, bool keep_size) = 0;
  // fsync: everything written is in the store (StoreFile::Commit).
  virtual Status Sync() = 0;
  // close(2) (FUSE flush): everything written survives a crash of the daemon, without
  // waiting for a remote store (StoreFile::Checkpoint).
  virtual Status Checkpoint() = 0;
  // The store object's attributes with the plaintext size.
  virtual Result<ObjectInfo> Stat() = 0;

  virtual bool writable() const = 0;
  // Swaps in a writable handle on the same store object (see FileSystem).
  virtual Status UpgradeToWritable(std::unique_ptr<StoreFile> writable_object) = 0;
  virtual Status SetMode(uint32_t mode) = 0;
  virtual Status SetOwner(uid_t uid, gid_t gid) = 0;
  virtual Status SetTimes(const struct timespec times[2]) = 0;
};

struct PlainDirEntry {
  std::string name;         // as the user sees it
  std::string stored_name;  // the entry in the store's directory
  ObjectType type = ObjectType::kOther;
  std::optional<ObjectInfo> info;  // from the store listing, if it carries attributes
  // The name the caller's view shows instead of `name` (the pseudonymized view), or
  // empty: `name` is shown.
  std::string shown;
};

// What a listing could not decode, for fsck and for the tamper log.
struct DamagedEntry {
  std::string stored_name;
  Status status;
};

struct DirListing {
  std::vector<PlainDirEntry> entries;
  std::vector<DamagedEntry> damaged;
};

// The per-directory state a format keeps: the vault's directory id, all zeros in a
// format without one.
using DirState = DirId;

class Format {
 public:
  virtual ~Format() = default;

  virtual Store& store() = 0;
  // st_blksize: the unit in which the format rewrites content.
  virtual uint32_t preferred_io_size() const = 0;
  // The plaintext size of a regular file whose store object is `stored_size` long;
  // an error if no file has that length (a write the daemon died in).
  virtual Result<uint64_t> PlainSizeOfStored(uint64_t stored_size) const = 0;
  // The length readlink gives for a stored symlink target of `stored_length`.
  virtual uint64_t SymlinkLengthOfStored(uint64_t stored_length) const = 0;

  // Directories. A directory's store entry (`store_path`) holds its state; its entries
  // live in that same store directory, unless entries_by_state() says they live at
  // EntriesDirOfState (a flat vault, docs/vault-format.md §1).
  virtual bool entries_by_state() const = 0;
  // REQUIRES: entries_by_state().
  virtual std::string EntriesDirOfState(const DirState& dir) const = 0;
  virtual Result<DirState> ReadDirState(std::string_view store_path) = 0;
  // mkdir plus the directory's state, durably.
  virtual Result<DirState> MakeDirectory(std::string_view store_path, uint32_t mode) = 0;
  // rmdir: kNotEmpty unless the directory holds nothing the user could see.
  virtual Status RemoveDirectory(std::string_view store_path, const DirState& state) = 0;
  // Before a rename replaces the empty directory at `store_path`: kNotEmpty unless it
  // is empty, else drops its state. RestoreDirState undoes this if the rename fails.
  virtual Status ReleaseEmptyDirectory(std::string_view store_path) = 0;
  virtual Status RestoreDirState(std::string_view store_path, const DirState& state) = 0;
  // The entries in `store_dir`, the entries directory of a directory whose state is
  // `state` (as read when the directory was resolved, so listing reads it not again).
  virtual Result<DirListing> ListDirectory(std::string_view store_dir, const DirState& state) = 0;

  // Names.
  virtual Result<EncryptedName> EncodeName(const DirState& dir, std::string_view name) const = 0;
  // Writes what an entry needs before it is created (a long name's sidecar), if anything.
  virtual Status PrepareEntry(std::string_view store_dir, const EncryptedName& name) = 0;
  // Removes what PrepareEntry wrote, once the entry is gone.
  virtual Status CleanupEntry(std::string_view store_dir, const EncryptedName& name) = 0;
  virtual Result<std::string> DecodeStoredName(std::string_view store_dir, const DirState& dir,
                                               std::string_view stored_name) = 0;

  // Content.
  virtual Result<std::unique_ptr<FileContent>> CreateFile(std::string_view store_path,
                                                          uint32_t mode) = 0;
  virtual Result<std::unique_ptr<FileContent>> OpenFile(std::string_view store_path,
                                                        bool writable) = 0;

  // Symlink targets and extended attributes.
  virtual Result<std::string> EncodeSymlinkTarget(std::string_view target) const = 0;
  virtual Result<std::string> DecodeSymlinkTarget(const DirState& dir,
                                                  std::string_view stored) const = 0;
  virtual Result<std::string> EncodeXattrName(std::string_view name) const = 0;
  virtual Result<std::string> DecodeXattrName(std::string_view stored) const = 0;
  virtual Result<Bytes> SealXattrValue(std::string_view stored_name, ByteSpan value) const = 0;
  virtual Result<Bytes> OpenXattrValue(std::string_view stored_name, ByteSpan sealed) const = 0;
};

}  // namespace cadcanfs

#endif  // CADCANFS_FS_FORMAT_H_
