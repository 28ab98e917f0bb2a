// RotateMasterKey: rewrap every data key under a new master key, and the name key in
// the config (the name key itself is not rotated; see docs/operations.md).
//
// Crash safety (docs/vault-format.md, "Key rotation"):
//   0. Only when the config holds a key that is neither the old nor the new one (a run
//      to another new key was interrupted): a read-only pass checks that the old key
//      still opens every file. Then that other key is needed nowhere.
//   1. The config becomes {old, new} in one atomic replace: the new key's entry is
//      added and any other key's entry dropped. Old and new keys both open it.
//   2. Pass A: every header gets the new wrap in the slot that does not hold the old
//      key (overwriting an interrupted run's wrap there), fsynced. Until pass A ends
//      every file still opens with the old key alone.
//   3. Pass B: every slot that does not hold the new key is zeroed and fsynced. From
//      pass B on every file opens with the new key alone.
//   4. The old key's config entry is removed (atomic replace).
// So at every instant one key alone reads the whole vault, and a rerun skips finished
// work and completes the rest, with the same new key or, while the old key still
// opens everything, with another one.
//
// No entry is passed over unseen: an entry whose type the store cannot tell could be a
// file under the old key, so the rotation stops before step 4 and says how many.
#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cadcanfs/fs/offline.h"
#include "cipher_walk.h"

namespace cadcanfs {

namespace {

// What a walk met besides the regular files it visited.
struct WalkCounts {
  uint64_t symlinks = 0;
  uint64_t special_nodes = 0;
  uint64_t foreign = 0;       // names cadcanfs never writes
  uint64_t unknown_type = 0;  // cadcanfs names of type kOther: maybe a file
};

// Visits every regular file in the ciphertext tree that carries a header, and counts
// every other entry.
Status ForEachCipherFile(Store& store, const std::string& dir, WalkCounts& counts,
                         const std::function<Status(const std::string&)>& visit) {
  return ForEachStoredEntry(store, dir,
                            [&](const std::string& path, const DirEntry& e, StoredNameKind kind) {
                              if (kind == StoredNameKind::kUnknown) {
                                counts.foreign++;
                                return Status::Ok();
                              }
                              // cadcanfs metadata: directory ids, config, lock, sidecars, temp
                              // files
                              if (!IsContentName(kind)) return Status::Ok();
                              switch (e.type) {
                                case ObjectType::kFile:
                                  return visit(path);
                                case ObjectType::kSymlink:
                                  counts.symlinks++;
                                  break;
                                case ObjectType::kFifo:
                                case ObjectType::kSocket:
                                case ObjectType::kCharDevice:
                                case ObjectType::kBlockDevice:
                                  counts.special_nodes++;
                                  break;
                                case ObjectType::kOther:
                                  counts.unknown_type++;
                                  break;
                                case ObjectType::kDirectory:
                                  break;  // the walk descends into it
                              }
                              return Status::Ok();
                            });
}

// Fails while any entry could not be classified: the old key must stay in the config.
Status RequireCompleteWalk(const WalkCounts& counts) {
  if (counts.unknown_type == 0) return Status::Ok();
  return Status::Error(Code::kUnsupported,
                       "the key rotation is incomplete: " + std::to_string(counts.unknown_type) +
                           " entries of a type the vault's filesystem did not report were "
                           "skipped, so the old key was kept and is still needed");
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
  return file.Commit(std::nullopt).status();
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
  CADCANFS_RETURN_IF_ERROR(obj.file->Commit(std::nullopt).status());
  return true;
}

// Pass B for one file: once the new key opens it, zero every slot that does not hold
// the new key (the old key's, and any left by an interrupted run to another key).
// Returns whether anything was zeroed.
Result<bool> ClearOtherSlots(Store& store, const std::string& path, const MasterKey& old_key,
                             const MasterKey& new_key) {
  CADCANFS_ASSIGN_OR_RETURN(OpenedObject obj, OpenHeader(store, path, old_key, new_key));
  const MasterKey* only_new[] = {&new_key};
  CADCANFS_RETURN_IF_ERROR(OpenFileHeader(obj.header, only_new).status());
  bool cleared = false;
  for (int index = 0; index < static_cast<int>(kKeySlotCount); ++index) {
    std::optional<KekId> id = PeekSlotKeyId(obj.header, index);
    if (id && *id != new_key.id()) {
      CADCANFS_RETURN_IF_ERROR(ZeroSlot(*obj.file, index));
      cleared = true;
    }
  }
  return cleared;
}

// Pass 0: the old key alone must open every file before another key's entry may go.
Status RequireOldKeyOpensEverything(Store& store, const MasterKey& old_key,
                                    const std::string& other_ids, ProgressObserver& progress) {
  const MasterKey* only_old[] = {&old_key};
  WalkCounts counts;
  CADCANFS_RETURN_IF_ERROR(
      ForEachCipherFile(store, "", counts, [&](const std::string& path) -> Status {
        HeaderBytes header{};
        CADCANFS_ASSIGN_OR_RETURN(auto file, store.Open(path, OpenOptions{}));
        CADCANFS_ASSIGN_OR_RETURN(size_t n, file->ReadAt(0, header));
        if (n != header.size()) return Status::Error(Code::kCorrupt, "file header is truncated");
        Status opened = OpenFileHeader(header, only_old).status();
        if (opened.code() == Code::kWrongKey) {
          return Status::Error(Code::kWrongKey,
                               "an interrupted key rotation to key id " + other_ids +
                                   " already moved files off the old key: finish it first by "
                                   "rerunning rekey with that key as the new key");
        }
        progress.OnFileDone();
        return opened.WithContext("a file could not be checked");
      }));
  return RequireCompleteWalk(counts);
}

}  // namespace

Result<WorkTotals> CountCipherFiles(Store& store) {
  WorkTotals totals;
  WalkCounts counts;
  CADCANFS_RETURN_IF_ERROR(ForEachCipherFile(store, "", counts, [&](const std::string&) {
    totals.files++;
    return Status::Ok();
  }));
  return totals;
}

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
  const KekId old_id = old_key->master.id();
  const KekId new_id = new_key.master.id();
  if (old_id == new_id) {
    return Status::Error(Code::kInvalidArgument, "the old and new keys are the same");
  }
  CADCANFS_ASSIGN_OR_RETURN(SecretBytes name_key, UnlockConfig(config, old_key->master));

  // Step 0: entries of neither key come from a run to another new key that was
  // interrupted. Its key goes only if the old key still opens everything.
  std::string other_ids;
  for (const KeyEntry& e : config.keys) {
    if (e.kek_id != old_id && e.kek_id != new_id) {
      other_ids += (other_ids.empty() ? "" : ", ") + HexEncode(e.kek_id);
    }
  }
  ProgressObserver no_progress;
  ProgressObserver& progress = hooks.progress != nullptr ? *hooks.progress : no_progress;
  const unsigned passes = other_ids.empty() ? 2 : 3;
  unsigned pass = 0;
  if (!other_ids.empty()) {
    progress.OnPass(++pass, passes);
    CADCANFS_RETURN_IF_ERROR(
        RequireOldKeyOpensEverything(store, old_key->master, other_ids, progress));
  }

  // Step 1: the config becomes {old, new}.
  const size_t before = config.keys.size();
  std::erase_if(config.keys,
                [&](const KeyEntry& e) { return e.kek_id != old_id && e.kek_id != new_id; });
  bool changed = config.keys.size() != before;
  if (config.FindKey(new_id) == nullptr) {
    CADCANFS_ASSIGN_OR_RETURN(KeyEntry entry,
                              MakeKeyEntry(config, new_key.master, name_key, new_key.kdf));
    config.keys.push_back(std::move(entry));
    changed = true;
  } else {
    CADCANFS_RETURN_IF_ERROR(UnlockConfig(config, new_key.master).status());
  }
  if (changed) CADCANFS_RETURN_IF_ERROR(WriteConfig(store, config));

  // Pass A: add the new wrap to every file.
  progress.OnPass(++pass, passes);
  uint64_t done = 0;
  WalkCounts counts;
  CADCANFS_RETURN_IF_ERROR(
      ForEachCipherFile(store, "", counts, [&](const std::string& path) -> Status {
        auto added = AddNewSlot(store, path, old_key->master, new_key.master);
        if (!added.ok()) return added.status().WithContext("a file could not be rewrapped");
        if (*added) {
          stats.files_rewrapped++;
          if (hooks.after_new_slot) hooks.after_new_slot(++done);
        } else {
          stats.files_already_done++;
        }
        progress.OnFileDone();
        return Status::Ok();
      }));
  stats.symlinks = counts.symlinks;
  stats.special_nodes = counts.special_nodes;
  stats.foreign_entries = counts.foreign;
  // Before any old slot goes: an unclassified entry may be a file only the old key opens.
  CADCANFS_RETURN_IF_ERROR(RequireCompleteWalk(counts));

  // Pass B: remove every other wrap from every file.
  progress.OnPass(++pass, passes);
  uint64_t cleared = 0;
  WalkCounts counts_b;
  CADCANFS_RETURN_IF_ERROR(
      ForEachCipherFile(store, "", counts_b, [&](const std::string& path) -> Status {
        auto zeroed = ClearOtherSlots(store, path, old_key->master, new_key.master);
        if (!zeroed.ok()) {
          return zeroed.status().WithContext("an old key slot could not be cleared");
        }
        if (*zeroed && hooks.after_old_slot_cleared) hooks.after_old_slot_cleared(++cleared);
        progress.OnFileDone();
        return Status::Ok();
      }));
  CADCANFS_RETURN_IF_ERROR(RequireCompleteWalk(counts_b));

  // Last: drop the old key from the config.
  std::erase_if(config.keys, [&](const KeyEntry& e) { return e.kek_id == old_id; });
  CADCANFS_RETURN_IF_ERROR(WriteConfig(store, config));
  return stats;
}

}  // namespace cadcanfs
