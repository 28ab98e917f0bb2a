// CheckVault: authenticate everything in a vault and list what is damaged.
#include <map>
#include <set>

#include "cadcanfs/fs/offline.h"

namespace cadcanfs {

namespace {

class Checker {
 public:
  Checker(Vault& vault, ProgressObserver* progress) : vault_(vault), progress_(progress) {}

  FsckReport Run() {
    CheckDirectory("", "");
    if (vault_.directory_layout() == VaultLayout::kFlat) {
      CheckFlatRoot();
      CheckUnreferencedEntriesDirs();
    }
    return std::move(report_);
  }

 private:
  void Problem(const std::string& cipher, const std::string& plain, Status status,
               std::string file_id = {}) {
    report_.problems.push_back({cipher, plain, std::move(file_id), std::move(status)});
  }

  void FileChecked(uint64_t plain_bytes) {
    if (progress_ == nullptr) return;
    progress_->OnBytes(plain_bytes);
    progress_->OnFileDone();
  }

  // `entry` is the directory's store entry; its entries are in vault_.EntriesDir.
  void CheckDirectory(const std::string& entry, const std::string& plain_dir) {
    report_.directories_checked++;
    auto dir = vault_.ReadDirId(entry);
    if (!dir.ok()) {
      Problem(entry.empty() ? "." : entry, plain_dir, dir.status());
      return;
    }
    const std::string cipher_dir = vault_.EntriesDir(entry, *dir);
    if (cipher_dir != entry) {
      referenced_entries_dirs_.insert(cipher_dir);
      if (!entry.empty()) CheckFlatEntry(entry, plain_dir);
      auto copy = vault_.ReadDirId(cipher_dir);
      if (!copy.ok() || *copy != *dir) {
        Problem(cipher_dir, plain_dir,
                copy.ok() ? Status::Error(Code::kCorrupt, "the entries' copy of the id differs")
                          : copy.status());
        return;
      }
    }
    auto raw = vault_.store().List(cipher_dir);
    if (!raw.ok()) {
      Problem(cipher_dir, plain_dir, raw.status());
      return;
    }
    std::set<std::string> names;
    for (const DirEntry& e : *raw) names.insert(e.name);
    std::map<std::string, std::string> plain_names;  // plaintext name -> its stored name
    for (const DirEntry& e : *raw) {
      std::string cipher_path = JoinStorePath(cipher_dir, e.name);
      switch (ClassifyStoredName(e.name)) {
        case StoredNameKind::kDirId:
          continue;
        case StoredNameKind::kConfig:
          if (!cipher_dir.empty()) {
            Problem(cipher_path, "", Status::Error(Code::kCorrupt, "config outside the root"));
          }
          continue;
        case StoredNameKind::kTemp:
          Problem(cipher_path, "",
                  Status::Error(Code::kCorrupt, "leftover temporary file (safe to delete)"));
          continue;
        case StoredNameKind::kFlatDirs:  // only a flat vault's root holds it
        case StoredNameKind::kUnknown:
          Problem(cipher_path, "", Status::Error(Code::kCorrupt, "not a cadcanfs entry"));
          continue;
        case StoredNameKind::kLongNameSidecar: {
          std::string owner = e.name.substr(0, e.name.size() - std::string(kSidecarSuffix).size());
          if (!names.count(owner)) {
            Problem(cipher_path, "",
                    Status::Error(Code::kCorrupt, "long-name sidecar without an entry"));
          }
          continue;
        }
        case StoredNameKind::kEncrypted:
        case StoredNameKind::kLongName:
          break;
      }
      auto name = vault_.DecryptStoredName(cipher_dir, *dir, e.name);
      if (!name.ok()) {
        Problem(cipher_path, "", name.status());
        continue;
      }
      // One plaintext name, one entry: a second entry that decrypts to the same name is
      // forged (it could stand in for the first one on a restore or through a mount).
      auto [first, inserted] = plain_names.emplace(*name, e.name);
      if (!inserted) {
        Problem(cipher_path, "",
                Status::Error(Code::kCorrupt,
                              "decrypts to the same name as the entry " + first->second));
        continue;
      }
      std::string plain_path = JoinStorePath(plain_dir, *name);
      CheckEntry(cipher_path, plain_path, *dir, e.type);
    }
  }

  void CheckEntry(const std::string& cipher_path, const std::string& plain_path, const DirId& dir,
                  ObjectType type) {
    switch (type) {
      case ObjectType::kDirectory:
        CheckDirectory(cipher_path, plain_path);
        return;
      case ObjectType::kFile: {
        report_.files_checked++;
        auto file = vault_.OpenFile(cipher_path, false);
        if (!file.ok()) {
          Problem(cipher_path, plain_path, file.status());
          FileChecked(0);
          return;
        }
        Status s = (*file)->VerifyAllBlocks();
        if (!s.ok()) Problem(cipher_path, plain_path, s, (*file)->id_for_log());
        FileChecked((*file)->size());
        return;
      }
      case ObjectType::kSymlink: {
        auto stored = vault_.store().ReadLink(cipher_path);
        Status s = stored.ok() ? vault_.names().DecryptSymlinkTarget(dir, *stored).status()
                               : stored.status();
        if (!s.ok()) Problem(cipher_path, plain_path, s);
        return;
      }
      case ObjectType::kFifo:
      case ObjectType::kSocket:
      case ObjectType::kCharDevice:
      case ObjectType::kBlockDevice:
        // No content to authenticate: the name was checked above, and the type, mode and
        // device number are metadata, which is not authenticated (see the threat model).
        return;
      case ObjectType::kOther:
        // Not checked means not known to be intact: report it rather than pass over it.
        Problem(cipher_path, plain_path,
                Status::Error(Code::kCorrupt, "skipped: the entry's type is unknown"));
        return;
    }
  }

  // A flat vault's directory entry holds its id file and nothing else.
  void CheckFlatEntry(const std::string& entry, const std::string& plain_dir) {
    auto raw = vault_.store().List(entry);
    if (!raw.ok()) return Problem(entry, plain_dir, raw.status());
    for (const DirEntry& e : *raw) {
      if (e.name != kDirIdFileName) {
        Problem(JoinStorePath(entry, e.name), plain_dir,
                Status::Error(Code::kCorrupt, "not a cadcanfs entry"));
      }
    }
  }

  // A flat vault's root holds the config, the lock, the root id and the directory tree.
  void CheckFlatRoot() {
    auto raw = vault_.store().List("");
    if (!raw.ok()) return Problem(".", "", raw.status());
    for (const DirEntry& e : *raw) {
      StoredNameKind kind = ClassifyStoredName(e.name);
      if (kind == StoredNameKind::kTemp) {
        Problem(e.name, "",
                Status::Error(Code::kCorrupt, "leftover temporary file (safe to delete)"));
      } else if (kind != StoredNameKind::kConfig && kind != StoredNameKind::kDirId &&
                 kind != StoredNameKind::kFlatDirs) {
        Problem(e.name, "", Status::Error(Code::kCorrupt, "not a cadcanfs entry"));
      }
    }
  }

  // Entries directories no directory names: a mkdir or rmdir the process died in.
  void CheckUnreferencedEntriesDirs() {
    auto fanout = vault_.store().List(kFlatDirsName);
    if (!fanout.ok()) return Problem(kFlatDirsName, "", fanout.status());
    for (const DirEntry& f : *fanout) {
      const std::string fan_path = JoinStorePath(kFlatDirsName, f.name);
      auto dirs = vault_.store().List(fan_path);
      if (!dirs.ok()) {
        Problem(fan_path, "", dirs.status());
        continue;
      }
      for (const DirEntry& d : *dirs) {
        const std::string path = JoinStorePath(fan_path, d.name);
        if (!referenced_entries_dirs_.count(path)) {
          Problem(path, "",
                  Status::Error(Code::kCorrupt,
                                "entries directory of no directory (an interrupted mkdir or "
                                "rmdir left it; safe to delete once its entries are saved)"));
        }
      }
    }
  }

  Vault& vault_;
  ProgressObserver* progress_;  // may be null
  FsckReport report_;
  std::set<std::string> referenced_entries_dirs_;  // flat layout
};

}  // namespace

FsckReport CheckVault(Vault& vault, ProgressObserver* progress) {
  return Checker(vault, progress).Run();
}

}  // namespace cadcanfs
