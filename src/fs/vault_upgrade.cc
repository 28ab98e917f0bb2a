// Vault::UpgradeFormat: brings a format v1 vault to the current version before anything
// writes to it (docs/vault-format.md §8).
//
// Version 1 sealed each symlink target to the id of the directory holding the link, so
// a link moved to another directory no longer opened. Version 2 targets are unbound.
// The upgrade re-seals every bound target in place (a new link under a temporary name,
// then an atomic rename over the old one), then writes the config with the new version.
// A crash anywhere leaves a vault that reads correctly, and the next writer finishes.
#include <random>

#include "cadcanfs/fs/vault.h"

namespace cadcanfs {

namespace {

std::string TemporaryName() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::string(kTempPrefix) + std::to_string(rng());
}

}  // namespace

Status Vault::UpgradeFormat() {
  // Version 1 existed only in the tree layout, and version 2 is its current form.
  if (config_.version >= kTreeLayoutVersion) return Status::Ok();
  // The config MAC covers the version, and only the supplied key can re-seal its entry.
  if (config_.keys.size() != 1) {
    return Status::Error(Code::kBusy,
                         "an interrupted key rotation must be finished (cadcanfs rekey) before "
                         "this format 1 vault can be written to");
  }
  CADCANFS_RETURN_IF_ERROR(UnbindSymlinkTargets(""));
  CADCANFS_ASSIGN_OR_RETURN(SecretBytes name_key, UnlockConfig(config_, key_.master));
  VaultConfig upgraded = config_;
  upgraded.version = kTreeLayoutVersion;
  CADCANFS_ASSIGN_OR_RETURN(
      KeyEntry entry, MakeKeyEntry(upgraded, key_.master, name_key, config_.keys.front().kdf));
  upgraded.keys = {std::move(entry)};
  CADCANFS_RETURN_IF_ERROR(
      store_->WriteAtomic(kConfigFileName, AsBytes(SerializeConfig(upgraded))));
  config_ = std::move(upgraded);
  return Status::Ok();
}

Status Vault::UnbindSymlinkTargets(const std::string& cipher_dir) {
  CADCANFS_ASSIGN_OR_RETURN(DirId dir, ReadDirId(cipher_dir));
  CADCANFS_ASSIGN_OR_RETURN(std::vector<DirEntry> entries, store_->List(cipher_dir));
  for (const DirEntry& e : entries) {
    const StoredNameKind kind = ClassifyStoredName(e.name);
    if (kind != StoredNameKind::kEncrypted && kind != StoredNameKind::kLongName) continue;
    const std::string path = JoinStorePath(cipher_dir, e.name);
    if (e.type == ObjectType::kDirectory) {
      CADCANFS_RETURN_IF_ERROR(UnbindSymlinkTargets(path));
    } else if (e.type == ObjectType::kSymlink) {
      CADCANFS_RETURN_IF_ERROR(UnbindSymlinkTarget(dir, cipher_dir, path));
    }
  }
  return Status::Ok();
}

Status Vault::UnbindSymlinkTarget(const DirId& dir, const std::string& cipher_dir,
                                  const std::string& path) {
  CADCANFS_ASSIGN_OR_RETURN(std::string stored, store_->ReadLink(path));
  bool bound = false;
  auto target = names_->DecryptSymlinkTarget(dir, stored, &bound);
  // A damaged target stays as it is, for fsck to report; it is not ours to drop.
  if (!target.ok() || !bound) return Status::Ok();
  CADCANFS_ASSIGN_OR_RETURN(std::string unbound, names_->EncryptSymlinkTarget(*target));
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, store_->Stat(path));
  const std::string temporary = JoinStorePath(cipher_dir, TemporaryName());
  CADCANFS_RETURN_IF_ERROR(store_->Symlink(unbound, temporary));
  Status s;
  if (store_->capabilities().posix_attributes) {
    s = store_->SetOwner(temporary, info.uid, info.gid);
    const struct timespec times[2] = {info.atime, info.mtime};
    if (s.ok()) s = store_->SetTimes(temporary, times);
  }
  if (s.ok()) s = store_->Rename(temporary, path, RenameMode::kReplace);
  if (!s.ok()) (void)store_->Remove(temporary);
  return s;
}

}  // namespace cadcanfs
