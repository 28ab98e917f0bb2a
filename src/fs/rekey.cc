// RotateMasterKey: rewrap every data key and the name key under a new master key.
//
// Crash safety (docs/vault-format.md, "Key rotation"):
//   1. The config gains an entry for the new key (atomic replace). Both keys open it.
//   2. Pass A: every header gets the new wrap in its free key slot, fsynced. Until
//      pass A ends every file still opens with the old key alone.
//   3. Pass B: every old slot is zeroed and fsynced. From pass B on every file opens
//      with the new key alone.
//   4. The old key's config entry is removed (atomic replace).
// So at every instant one key alone reads the whole vault, and a rerun with the same
// arguments skips finished work and completes the rest.
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

struct OpenedObject {
  std::unique_ptr<StoreFile> file;
  HeaderBytes header{};
  OpenedHeader opened;
};

Result<OpenedObject> OpenHeader(Store& store, const std::string& path, const MasterKey& old_key,
                                const MasterKey& new_key) {
  OpenedObject out;
  CADCANFS_ASSIGN_OR_RETURN(out.file, store.Open(path, OpenOptions{.write = true}));
  CADCANFS_ASSIGN_OR_RETURN(size_t n, out.file->ReadAt(0, out.header));
  if (n != out.header.size()) return Status::Error(Code::kCorrupt, "file header is truncated");
  const MasterKey* both[] = {&old_key, &new_key};
  CADCANFS_ASSIGN_OR_RETURN(out.opened, OpenFileHeader(out.header, both));
  return out;
}

// Pass A for one file: add the new wrap unless a slot already holds it.
Result<bool> AddNewSlot(Store& store, const std::string& path, const MasterKey& old_key,
                        const MasterKey& new_key) {
  CADCANFS_ASSIGN_OR_RETURN(OpenedObject obj, OpenHeader(store, path, old_key, new_key));
  if (PeekSlotKeyId(obj.header, 0) == new_key.id() ||
      PeekSlotKeyId(obj.header, 1) == new_key.id()) {
    return false;
  }
  const int other = 1 - obj.opened.slot;
  CADCANFS_ASSIGN_OR_RETURN(auto slot,
                            SealKeySlot(obj.opened.keys.file_id, obj.opened.dek, new_key));
  CADCANFS_RETURN_IF_ERROR(obj.file->WriteAt(kKeySlotOffset + other * kKeySlotSize, slot));
  CADCANFS_RETURN_IF_ERROR(obj.file->Sync());
  return true;
}

// Pass B for one file: zero the slot that holds the old key, once the new one opens.
Status ClearOldSlot(Store& store, const std::string& path, const MasterKey& old_key,
                    const MasterKey& new_key) {
  CADCANFS_ASSIGN_OR_RETURN(OpenedObject obj, OpenHeader(store, path, old_key, new_key));
  const MasterKey* only_new[] = {&new_key};
  CADCANFS_RETURN_IF_ERROR(OpenFileHeader(obj.header, only_new).status());
  for (int index = 0; index < static_cast<int>(kKeySlotCount); ++index) {
    if (PeekSlotKeyId(obj.header, index) == old_key.id()) {
      CADCANFS_RETURN_IF_ERROR(ZeroSlot(*obj.file, index));
    }
  }
  return Status::Ok();
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

  // Pass A: add the new wrap to every file.
  uint64_t done = 0;
  CADCANFS_RETURN_IF_ERROR(ForEachCipherFile(store, "", [&](const std::string& path) -> Status {
    auto added = AddNewSlot(store, path, old_key->master, new_key.master);
    if (!added.ok()) return added.status().WithContext("a file could not be rewrapped");
    if (*added) {
      stats.files_rewrapped++;
      if (hooks.after_new_slot) hooks.after_new_slot(++done);
    } else {
      stats.files_already_done++;
    }
    return Status::Ok();
  }));
  // Pass B: remove the old wrap from every file.
  CADCANFS_RETURN_IF_ERROR(ForEachCipherFile(store, "", [&](const std::string& path) -> Status {
    return ClearOldSlot(store, path, old_key->master, new_key.master)
        .WithContext("an old key slot could not be cleared");
  }));

  // Last: drop the old key from the config.
  std::erase_if(config.keys, [&](const KeyEntry& e) { return e.kek_id == old_key->master.id(); });
  CADCANFS_RETURN_IF_ERROR(WriteConfig(store, config));
  return stats;
}

}  // namespace cadcanfs
