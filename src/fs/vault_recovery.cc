// Vault::SettleInterruptedWrites: the recovery a writer runs when the previous writer
// died holding the vault lock (VaultLock::interrupted_session_start).
//
// A resize the process died in leaves a pending size in the file's header, and until a
// writable open settles it, the size the ciphertext's length implies may not be the
// one the file holds together at (docs/vault-format.md §6). A reader would then see a
// stat size that its reads do not deliver. Settling every such file before serving
// keeps the two in agreement. Only files changed since the dead session began can
// hold a pending size, so the walk reads headers of those alone.
#include <fcntl.h>

#include "cadcanfs/fs/vault.h"
#include "cadcanfs/vault/file_header.h"
#include "cipher_walk.h"

namespace cadcanfs {

namespace {

// A clock stepped back during the dead session (NTP at boot) must not hide a file.
constexpr time_t kClockStepMargin = 3600;

bool ChangedSince(const ObjectInfo& info, const struct timespec& since) {
  return info.ctime.tv_sec >= since.tv_sec - kClockStepMargin;
}

}  // namespace

Result<uint64_t> Vault::SettleInterruptedWrites(const struct timespec& since) {
  uint64_t settled = 0;
  CADCANFS_RETURN_IF_ERROR(ForEachStoredEntry(
      *store_, "", [&](const std::string& path, const DirEntry& e, StoredNameKind kind) {
        if (!IsContentName(kind) || e.type != ObjectType::kFile) return Status::Ok();
        return SettleIfInterrupted(path, e, since, settled);
      }));
  return settled;
}

Status Vault::SettleIfInterrupted(const std::string& path, const DirEntry& entry,
                                  const struct timespec& since, uint64_t& settled) {
  ObjectInfo info;
  if (entry.info) {
    info = *entry.info;
  } else {
    CADCANFS_ASSIGN_OR_RETURN(info, store_->Stat(path));
  }
  if (!ChangedSince(info, since)) return Status::Ok();
  CADCANFS_ASSIGN_OR_RETURN(bool pending, HasPendingResize(path));
  if (!pending) return Status::Ok();
  // A writable open settles the size (EncryptedFile::Open). A file too damaged to
  // open is left for fsck to report: recovery is not repair.
  if (OpenFile(path, true).ok()) ++settled;
  return Status::Ok();
}

Result<bool> Vault::HasPendingResize(const std::string& cipher_path) {
  CADCANFS_ASSIGN_OR_RETURN(std::unique_ptr<StoreFile> object, store_->Open(cipher_path, {}));
  HeaderBytes header{};
  CADCANFS_ASSIGN_OR_RETURN(size_t n, object->ReadAt(0, header));
  return n == header.size() && PeekPendingSize(header) != 0;
}

}  // namespace cadcanfs
