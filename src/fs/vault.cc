#include "cadcanfs/fs/vault.h"

#include <algorithm>
#include <cerrno>
#include <deque>

#include "cadcanfs/crypto/kdf.h"
#include "cadcanfs/crypto/random.h"

namespace cadcanfs {

namespace {

constexpr size_t kMaxConfigSize = 64 * 1024;
constexpr size_t kMaxSidecarSize = 4096;

Status VaultMissing(const Status& s) {
  if (s.code() == Code::kNotFound) {
    return Status::Error(Code::kNotFound, "this directory is not a cadcanfs vault (no config)");
  }
  return s;
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start < path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start) parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

// The flat layout's entries directories: "cadcanfs.dirs/" + 2 + "/" + 30 characters of
// base32(HMAC-SHA256(location key, directory id)) (docs/vault-format.md §1).
constexpr size_t kLocationHashBytes = 20;  // 32 base32 characters
constexpr size_t kLocationFanout = 2;

Result<SecretBytes> DeriveLocationKey(const SecretBytes& name_key) {
  return HkdfSha256(name_key, "cadcanfs v3 directory location", 32);
}

std::string FlatEntriesPath(const SecretBytes& location_key, const DirId& id) {
  Digest mac = HmacSha256(location_key, id);
  std::string hash = Base32Encode(ByteSpan(mac.data(), kLocationHashBytes));
  return std::string(kFlatDirsName) + "/" + hash.substr(0, kLocationFanout) + "/" +
         hash.substr(kLocationFanout);
}

Status IgnoreExisting(Status s) { return s.code() == Code::kAlreadyExists ? Status::Ok() : s; }

Status IgnoreMissing(Status s) { return s.code() == Code::kNotFound ? Status::Ok() : s; }

// Creates a flat vault's entries directory for `id`, holding a copy of the id.
Status MakeEntriesDir(Store& store, const std::string& path, const DirId& id) {
  CADCANFS_RETURN_IF_ERROR(IgnoreExisting(store.MakeDir(kFlatDirsName, 0700)));
  CADCANFS_RETURN_IF_ERROR(IgnoreExisting(store.MakeDir(StoreParent(path), 0700)));
  CADCANFS_RETURN_IF_ERROR(store.MakeDir(path, 0700));
  Status s = store.WriteAtomic(JoinStorePath(path, kDirIdFileName), id, /*exclusive=*/true);
  if (!s.ok()) (void)store.RemoveDir(path);
  return s;
}

}  // namespace

Status NoSuchVaultPath() {
  return Status::Error(Code::kNotFound, "no such file or directory in the vault");
}

Status Vault::Initialize(Store& store, const LoadedKey& key, uint32_t block_size,
                         VaultLayout layout) {
  CADCANFS_ASSIGN_OR_RETURN(auto entries, store.List(""));
  if (!entries.empty()) {
    return Status::Error(Code::kNotEmpty, "the target directory is not empty");
  }
  VaultConfig config;
  config.block_size = block_size;
  config.layout = layout;
  config.version = layout == VaultLayout::kFlat ? kFlatLayoutVersion : kTreeLayoutVersion;
  CADCANFS_RETURN_IF_ERROR(FillRandom(config.vault_id));
  CADCANFS_ASSIGN_OR_RETURN(SecretBytes name_key, RandomSecret(kNameKeySize));
  CADCANFS_ASSIGN_OR_RETURN(KeyEntry entry, MakeKeyEntry(config, key.master, name_key, key.kdf));
  config.keys.push_back(std::move(entry));
  // Validate what we are about to write with the same parser that will read it.
  CADCANFS_RETURN_IF_ERROR(ParseConfig(SerializeConfig(config)).status());
  DirId root_id;
  CADCANFS_RETURN_IF_ERROR(FillRandom(root_id));
  CADCANFS_RETURN_IF_ERROR(store.WriteAtomic(kDirIdFileName, root_id, /*exclusive=*/true));
  if (layout == VaultLayout::kFlat) {
    CADCANFS_ASSIGN_OR_RETURN(SecretBytes location_key, DeriveLocationKey(name_key));
    CADCANFS_RETURN_IF_ERROR(
        MakeEntriesDir(store, FlatEntriesPath(location_key, root_id), root_id));
  }
  // The config comes last: a store without it is not a vault yet, and can be retried.
  return store.WriteAtomic(kConfigFileName, AsBytes(SerializeConfig(config)), true);
}

Result<VaultConfig> Vault::ReadConfig(Store& store) {
  auto text = store.ReadSmall(kConfigFileName, kMaxConfigSize);
  if (!text.ok()) return VaultMissing(text.status());
  return ParseConfig(AsChars(*text));
}

Result<std::unique_ptr<Vault>> Vault::Open(std::unique_ptr<Store> store, LoadedKey key,
                                           std::vector<MasterKey> extra_keys) {
  CADCANFS_ASSIGN_OR_RETURN(VaultConfig config, ReadConfig(*store));
  CADCANFS_ASSIGN_OR_RETURN(SecretBytes name_key, UnlockConfig(config, key.master));
  for (const MasterKey& extra : extra_keys) {
    // Extra keys must belong to the vault too, so a typo cannot go unnoticed.
    CADCANFS_RETURN_IF_ERROR(UnlockConfig(config, extra).status());
  }
  CADCANFS_ASSIGN_OR_RETURN(SecretBytes location_key, DeriveLocationKey(name_key));
  return std::unique_ptr<Vault>(new Vault(std::move(store), std::move(config), std::move(key),
                                          std::move(extra_keys), std::move(name_key),
                                          std::move(location_key)));
}

Vault::Vault(std::unique_ptr<Store> store, VaultConfig config, LoadedKey key,
             std::vector<MasterKey> extra_keys, SecretBytes name_key, SecretBytes location_key)
    : store_(std::move(store)),
      config_(std::move(config)),
      key_(std::move(key)),
      extra_keys_(std::move(extra_keys)),
      layout_(config_.block_size),
      names_(std::make_unique<NameCipher>(std::move(name_key))),
      location_key_(std::move(location_key)) {
  masters_.push_back(&key_.master);
  for (const MasterKey& k : extra_keys_) masters_.push_back(&k);
}

Result<DirId> Vault::ReadDirId(std::string_view cipher_dir) {
  auto bytes = store_->ReadSmall(JoinStorePath(cipher_dir, kDirIdFileName), kDirIdSize);
  if (!bytes.ok()) {
    if (bytes.status().code() != Code::kNotFound) return bytes.status();
    // Tell "no such directory" apart from "a directory that lost its id file".
    if (!store_->Stat(cipher_dir).ok()) return NoSuchVaultPath();
    return Status::Error(Code::kCorrupt, "directory id file is missing");
  }
  if (bytes->size() != kDirIdSize) {
    return Status::Error(Code::kCorrupt, "directory id file has the wrong size");
  }
  DirId id;
  std::copy(bytes->begin(), bytes->end(), id.begin());
  return id;
}

std::optional<std::string> Vault::FlatEntriesDir(const DirId& id) const {
  if (config_.layout != VaultLayout::kFlat) return std::nullopt;
  return FlatEntriesPath(location_key_, id);
}

std::string Vault::EntriesDir(std::string_view cipher_path, const DirId& id) const {
  std::optional<std::string> flat = FlatEntriesDir(id);
  return flat ? *flat : std::string(cipher_path);
}

Result<std::string> Vault::EntriesDirOf(std::string_view cipher_path) {
  if (config_.layout != VaultLayout::kFlat) return std::string(cipher_path);
  CADCANFS_ASSIGN_OR_RETURN(DirId id, ReadDirId(cipher_path));
  return FlatEntriesPath(location_key_, id);
}

Status Vault::MakeFlatEntriesDir(const DirId& id) {
  return MakeEntriesDir(*store_, FlatEntriesPath(location_key_, id), id);
}

Status Vault::RemoveFlatEntriesDir(const DirId& id) {
  const std::string path = FlatEntriesPath(location_key_, id);
  CADCANFS_RETURN_IF_ERROR(IgnoreMissing(store_->Remove(JoinStorePath(path, kDirIdFileName))));
  CADCANFS_RETURN_IF_ERROR(IgnoreMissing(store_->RemoveDir(path)));
  // The fan-out directory goes when its last entries directory does; kNotEmpty is fine.
  (void)store_->RemoveDir(StoreParent(path));
  return Status::Ok();
}

Result<DirId> Vault::MakeDirectory(std::string_view cipher_path, uint32_t mode) {
  DirId id;
  CADCANFS_RETURN_IF_ERROR(FillRandom(id));
  // The entries directory first: an entry never names a directory that is not there,
  // and one left behind by a crash is an unreferenced, empty directory.
  if (config_.layout == VaultLayout::kFlat) CADCANFS_RETURN_IF_ERROR(MakeFlatEntriesDir(id));
  // The directory must stay writable by us while we add its id file.
  Status s = store_->MakeDir(cipher_path, mode | 0700);
  if (s.ok()) {
    s = store_->WriteAtomic(JoinStorePath(cipher_path, kDirIdFileName), id, true);
    if (s.ok() && (mode & 0700) != 0700) s = store_->SetMode(cipher_path, mode);
    if (!s.ok()) (void)store_->RemoveDir(cipher_path);
  }
  if (!s.ok()) {
    if (config_.layout == VaultLayout::kFlat) (void)RemoveFlatEntriesDir(id);
    return s;
  }
  return id;
}

Status Vault::ReleaseEmptyDirectory(std::string_view cipher_path) {
  CADCANFS_ASSIGN_OR_RETURN(DirId id, ReadDirId(cipher_path));
  CADCANFS_ASSIGN_OR_RETURN(std::vector<DirEntry> entries,
                            store_->List(EntriesDir(cipher_path, id)));
  for (const DirEntry& e : entries) {
    if (e.name != kDirIdFileName) {
      return Status::Error(Code::kNotEmpty, "directory is not empty");
    }
  }
  if (config_.layout == VaultLayout::kFlat) CADCANFS_RETURN_IF_ERROR(RemoveFlatEntriesDir(id));
  return IgnoreMissing(store_->Remove(JoinStorePath(cipher_path, kDirIdFileName)));
}

Status Vault::RestoreDirId(std::string_view cipher_path, const DirId& id) {
  if (config_.layout == VaultLayout::kFlat) {
    CADCANFS_RETURN_IF_ERROR(IgnoreExisting(MakeFlatEntriesDir(id)));
  }
  return store_->WriteAtomic(JoinStorePath(cipher_path, kDirIdFileName), id, false);
}

Status Vault::RemoveDirectory(std::string_view cipher_path, const DirId& id) {
  // Listing a non-directory fails with kNotADirectory, so no separate Stat is needed.
  CADCANFS_RETURN_IF_ERROR(ReleaseEmptyDirectory(cipher_path));
  Status s = store_->RemoveDir(cipher_path);
  if (!s.ok()) (void)RestoreDirId(cipher_path, id);
  return s;
}

Result<EncryptedName> Vault::EncryptName(const DirId& dir, std::string_view name) const {
  return names_->Encrypt(dir, name);
}

Status Vault::PrepareEntry(std::string_view cipher_dir, const EncryptedName& name) {
  if (!name.is_long()) return Status::Ok();
  return store_->WriteAtomic(JoinStorePath(cipher_dir, SidecarName(name.stored)),
                             AsBytes(name.encoded));
}

Status Vault::CleanupEntry(std::string_view cipher_dir, const EncryptedName& name) {
  if (!name.is_long()) return Status::Ok();
  Status s = store_->Remove(JoinStorePath(cipher_dir, SidecarName(name.stored)));
  return s.code() == Code::kNotFound ? Status::Ok() : s;
}

Result<std::string> Vault::DecryptStoredName(std::string_view cipher_dir, const DirId& dir,
                                             std::string_view stored_name) {
  switch (ClassifyStoredName(stored_name)) {
    case StoredNameKind::kEncrypted:
      return names_->Decrypt(dir, stored_name);
    case StoredNameKind::kLongName: {
      auto sidecar =
          store_->ReadSmall(JoinStorePath(cipher_dir, SidecarName(stored_name)), kMaxSidecarSize);
      if (!sidecar.ok()) {
        return Status::Error(Code::kCorrupt, "long-name sidecar is missing or unreadable");
      }
      std::string encoded(AsChars(*sidecar));
      if (LongStoredName(encoded) != stored_name) {
        return Status::Error(Code::kAuthenticationFailed, "long-name sidecar does not match");
      }
      // The hash binds the sidecar to the entry, but not the choice of a long name: a
      // "lng-" entry whose sidecar holds a short name would be a second, forged entry
      // for that name (an alias of another file, or of a symlink on a restore path).
      // Only names that cannot be stored directly may use a sidecar.
      if (encoded.size() <= kMaxStoredNameLength) {
        return Status::Error(Code::kAuthenticationFailed,
                             "long-name sidecar holds a name that needs no sidecar");
      }
      return names_->Decrypt(dir, encoded);
    }
    default:
      return Status::Error(Code::kInvalidArgument, "not an encrypted entry name");
  }
}

Result<DirListing> Vault::ListDirectory(std::string_view cipher_dir) {
  CADCANFS_ASSIGN_OR_RETURN(DirId dir, ReadDirId(cipher_dir));
  return ListDirectory(cipher_dir, dir);
}

Result<DirListing> Vault::ListDirectory(std::string_view cipher_dir, const DirId& dir) {
  // A flat vault's entries directory is named after its id: one moved or swapped in
  // under another directory's name would decrypt nothing, but say so plainly.
  if (std::optional<std::string> expected = FlatEntriesDir(dir);
      expected && *expected != cipher_dir) {
    return Status::Error(Code::kCorrupt, "a directory's entries are not where its id puts them");
  }
  CADCANFS_ASSIGN_OR_RETURN(std::vector<DirEntry> raw, store_->List(cipher_dir));
  DirListing listing;
  listing.entries.reserve(raw.size());
  for (DirEntry& e : raw) {
    StoredNameKind kind = ClassifyStoredName(e.name);
    if (kind != StoredNameKind::kEncrypted && kind != StoredNameKind::kLongName) {
      if (kind == StoredNameKind::kUnknown) {
        listing.damaged.push_back(
            {e.name, Status::Error(Code::kCorrupt, "entry is not a cadcanfs name")});
      }
      continue;
    }
    auto name = DecryptStoredName(cipher_dir, dir, e.name);
    if (!name.ok()) {
      listing.damaged.push_back({e.name, name.status()});
      continue;
    }
    listing.entries.push_back(
        {std::move(name).value(), std::move(e.name), e.type, std::move(e.info)});
  }
  return listing;
}

Result<std::string> Vault::CipherPathOf(std::string_view plain_path) {
  std::string cipher;
  for (std::string_view part : SplitPath(plain_path)) {
    CADCANFS_ASSIGN_OR_RETURN(DirId dir, ReadDirId(cipher));
    CADCANFS_ASSIGN_OR_RETURN(EncryptedName name, names_->Encrypt(dir, part));
    cipher = JoinStorePath(EntriesDir(cipher, dir), name.stored);
  }
  return cipher;
}

Result<std::string> Vault::PlainPathOf(std::string_view cipher_path) {
  if (config_.layout == VaultLayout::kFlat) return FlatPlainPathOf(cipher_path);
  std::string cipher;
  std::string plain;
  for (std::string_view part : SplitPath(cipher_path)) {
    CADCANFS_ASSIGN_OR_RETURN(DirId dir, ReadDirId(cipher));
    CADCANFS_ASSIGN_OR_RETURN(std::string name, DecryptStoredName(cipher, dir, part));
    plain = JoinStorePath(plain, name);
    cipher = JoinStorePath(cipher, part);
  }
  return plain;
}

Result<std::string> Vault::FlatPlainPathOf(std::string_view cipher_path) {
  // "cadcanfs.dirs/<2>/<30>/<entry>": the entries directory, then one stored name.
  std::vector<std::string_view> parts = SplitPath(cipher_path);
  if (parts.empty()) return std::string();
  if (parts.size() != 4 || parts[0] != kFlatDirsName) return NoSuchVaultPath();
  const std::string entries_dir =
      std::string(parts[0]) + "/" + std::string(parts[1]) + "/" + std::string(parts[2]);
  DirId dir{};
  CADCANFS_ASSIGN_OR_RETURN(std::string plain_dir, FindFlatDirectory(entries_dir, dir));
  CADCANFS_ASSIGN_OR_RETURN(std::string name, DecryptStoredName(entries_dir, dir, parts[3]));
  return JoinStorePath(plain_dir, name);
}

Result<std::string> Vault::FindFlatDirectory(std::string_view entries_dir, DirId& id) {
  struct Pending {
    std::string cipher;  // the directory's entry
    std::string plain;
  };
  std::deque<Pending> queue{{"", ""}};
  while (!queue.empty()) {
    Pending dir = std::move(queue.front());
    queue.pop_front();
    CADCANFS_ASSIGN_OR_RETURN(DirId dir_id, ReadDirId(dir.cipher));
    const std::string entries = EntriesDir(dir.cipher, dir_id);
    if (entries == entries_dir) {
      id = dir_id;
      return dir.plain;
    }
    CADCANFS_ASSIGN_OR_RETURN(DirListing listing, ListDirectory(entries));
    for (PlainDirEntry& e : listing.entries) {
      if (e.type != ObjectType::kDirectory) continue;
      queue.push_back({JoinStorePath(entries, e.stored_name), JoinStorePath(dir.plain, e.name)});
    }
  }
  return NoSuchVaultPath();
}

Result<std::unique_ptr<EncryptedFile>> Vault::CreateFile(std::string_view cipher_path,
                                                         uint32_t mode) {
  return EncryptedFile::Create(*store_, cipher_path, key_.master, layout_, mode);
}

Result<std::unique_ptr<EncryptedFile>> Vault::OpenFile(std::string_view cipher_path,
                                                       bool writable) {
  return EncryptedFile::Open(*store_, cipher_path, writable, masters_, layout_);
}

}  // namespace cadcanfs
