// RotateMasterKey: rewrap every data key and the name key under a new master key.
//
// Crash safety (docs/vault-format.md, "Key rotation"):
//   1. The config gains an entry for the new key (atomic replace). Both keys open it.
//   2. Per file: the new wrap goes into the header's free key slot and is fsynced;
//      only then is the old slot zeroed and fsynced. Every moment leaves one slot that
//      opens with the old or the new key.
//   3. When no header names the old key, its config entry is removed (atomic replace).
// A rerun with the same arguments skips finished files and completes the rest.
#include <algorithm>

#include "cadcanfs/fs/offline.h"

namespace cadcanfs {

namespace {

// Visits every regular file in the ciphertext tree that carries a header.
Status ForEachCipherFile(Store& store, const std::string& dir,
                         const std::function<Status(const std::string&)>& visit) {
  CADCANFS_ASSIGN_OR_RETURN(std::vector<DirEntry> entries, store.List(dir));
  for (const DirEntry& e : entries) {
    StoredNameKind kind = ClassifyStoredName(e.name);
    if (kind != StoredNameKind::kEncrypted && kind != StoredNameKind::kLongName) continue;
    std::string path = JoinStorePath(dir, e.name);
    if (e.type == ObjectType::kDirectory) {
      CADCANFS_RETURN_IF_ERROR(ForEachCipherFile(store, path, visit));
    } else if (e.type == ObjectType::kFile) {
      CADCANFS_RETURN_IF_ERROR(visit(path));
    }
  }
  return Status::Ok();
}

Status WriteConfig(Store& store, const VaultConfig& config) {
  return store.WriteAtomic(kConfigFileName, AsBytes(SerializeConfig(config)));
}

// Loads the new key, reusing the salt of an existing passphrase entry if it matches
// (a rerun after step 1), else deriving it afresh.
Result<LoadedKey> LoadNewKey(const KeyOptions& options, const VaultConfig& config) {
  auto existing = LoadKeyForVault(options, config);
  if (existing.ok()) return existing;
  if (existing.status().code() != Code::kWrongKey) return existing.status();
  return LoadKeyForNewVault(options);
}

Status ZeroSlot(StoreFile& file, int slot) {
  std::array<uint8_t, kKeySlotSize> zeros{};
  CADCANFS_RETURN_IF_ERROR(file.WriteAt(kKeySlotOffset + slot * kKeySlotSize, zeros));
  return file.Sync();
}

// Moves one file from the old key to the new one. Returns true if work was done.
Result<bool> RewrapFile(Store& store, const std::string& path, const MasterKey& old_key,
                        const MasterKey& new_key, const RekeyHooks& hooks, uint64_t done) {
  CADCANFS_ASSIGN_OR_RETURN(auto file, store.Open(path, OpenOptions{.write = true}));
  HeaderBytes header{};
  CADCANFS_ASSIGN_OR_RETURN(size_t n, file->ReadAt(0, header));
  if (n != header.size()) return Status::Error(Code::kCorrupt, "file header is truncated");
  const MasterKey* both[] = {&new_key, &old_key};
  CADCANFS_ASSIGN_OR_RETURN(OpenedHeader opened, OpenFileHeader(header, both));
  const int other = 1 - opened.slot;
  if (opened.kek_id == new_key.id()) {
    // Finished before, possibly with the old slot still to clear.
    if (PeekSlotKeyId(header, other) == old_key.id()) {
      CADCANFS_RETURN_IF_ERROR(ZeroSlot(*file, other));
      return true;
    }
    return false;
  }
  CADCANFS_ASSIGN_OR_RETURN(auto slot, SealKeySlot(opened.keys.file_id, opened.dek, new_key));
  CADCANFS_RETURN_IF_ERROR(file->WriteAt(kKeySlotOffset + other * kKeySlotSize, slot));
  CADCANFS_RETURN_IF_ERROR(file->Sync());
  if (hooks.after_new_slot) hooks.after_new_slot(done + 1);
  CADCANFS_RETURN_IF_ERROR(ZeroSlot(*file, opened.slot));
  return true;
}

}  // namespace

Result<RekeyStats> RotateMasterKey(Store& store, const KeyOptions& old_keys,
                                   const KeyOptions& new_keys, const RekeyHooks& hooks) {
  CADCANFS_ASSIGN_OR_RETURN(VaultConfig config, Vault::ReadConfig(store));
  CADCANFS_ASSIGN_OR_RETURN(LoadedKey new_key, LoadNewKey(new_keys, config));
  auto old_key = LoadKeyForVault(old_keys, config);
  RekeyStats stats;
  const bool old_in_config = old_key.ok() && config.FindKey(old_key->master.id()) != nullptr;
  if (!old_in_config) {
    // The old entry is removed only once every file was moved: a finished rotation.
    const bool old_loaded_or_absent = old_key.ok() || old_key.status().code() == Code::kWrongKey;
    if (old_loaded_or_absent && config.keys.size() == 1 &&
        UnlockConfig(config, new_key.master).ok()) {
      stats.already_complete = true;
      return stats;
    }
    return old_key.ok() ? Status::Error(Code::kWrongKey, "wrong key for this vault")
                        : old_key.status();
  }
  if (old_key->master.id() == new_key.master.id()) {
    return Status::Error(Code::kInvalidArgument, "the old and new keys are the same");
  }
  CADCANFS_ASSIGN_OR_RETURN(SecretBytes name_key, UnlockConfig(config, old_key->master));

  // Step 1: add the new key to the config.
  if (config.FindKey(new_key.master.id()) == nullptr) {
    CADCANFS_ASSIGN_OR_RETURN(KeyEntry entry,
                              MakeKeyEntry(config, new_key.master, name_key, new_key.kdf));
    config.keys.push_back(std::move(entry));
    CADCANFS_RETURN_IF_ERROR(WriteConfig(store, config));
  } else {
    CADCANFS_RETURN_IF_ERROR(UnlockConfig(config, new_key.master).status());
  }

  // Step 2: move every file.
  uint64_t done = 0;
  CADCANFS_RETURN_IF_ERROR(ForEachCipherFile(store, "", [&](const std::string& path) -> Status {
    auto moved = RewrapFile(store, path, old_key->master, new_key.master, hooks, done);
    if (!moved.ok()) return moved.status().WithContext("a file could not be rewrapped");
    if (*moved) {
      stats.files_rewrapped++;
      done++;
    } else {
      stats.files_already_done++;
    }
    return Status::Ok();
  }));

  // Step 3: drop the old key from the config.
  std::erase_if(config.keys,
                [&](const KeyEntry& e) { return e.kek_id == old_key->master.id(); });
  CADCANFS_RETURN_IF_ERROR(WriteConfig(store, config));
  return stats;
}

}  // namespace cadcanfs
