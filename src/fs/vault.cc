#include "cadcanfs/fs/vault.h"

#include <algorithm>
#include <cerrno>

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

}  // namespace

Status NoSuchVaultPath() {
  return Status::Error(Code::kNotFound, "no such file or directory in the vault");
}

Status Vault::Initialize(Store& store, const LoadedKey& key, uint32_t block_size) {
  CADCANFS_ASSIGN_OR_RETURN(auto entries, store.List(""));
  if (!entries.empty()) {
    return Status::Error(Code::kNotEmpty, "the target directory is not empty");
  }
  VaultConfig config;
  config.block_size = block_size;
  CADCANFS_RETURN_IF_ERROR(FillRandom(config.vault_id));
  CADCANFS_ASSIGN_OR_RETURN(SecretBytes name_key, RandomSecret(kNameKeySize));
  CADCANFS_ASSIGN_OR_RETURN(KeyEntry entry, MakeKeyEntry(config, key.master, name_key, key.kdf));
  config.keys.push_back(std::move(entry));
  // Validate what we are about to write with the same parser that will read it.
  CADCANFS_RETURN_IF_ERROR(ParseConfig(SerializeConfig(config)).status());
  DirId root_id;
  CADCANFS_RETURN_IF_ERROR(FillRandom(root_id));
  CADCANFS_RETURN_IF_ERROR(store.WriteAtomic(kDirIdFileName, root_id, /*exclusive=*/true));
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
  return std::unique_ptr<Vault>(new Vault(std::move(store), std::move(config), std::move(key),
                                          std::move(extra_keys), std::move(name_key)));
}

Vault::Vault(std::unique_ptr<Store> store, VaultConfig config, LoadedKey key,
             std::vector<MasterKey> extra_keys, SecretBytes name_key)
    : store_(std::move(store)),
      config_(std::move(config)),
      key_(std::move(key)),
      extra_keys_(std::move(extra_keys)),
      layout_(config_.block_size),
      names_(std::make_unique<NameCipher>(std::move(name_key))) {
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

Result<DirId> Vault::MakeDirectory(std::string_view cipher_path, uint32_t mode) {
  DirId id;
  CADCANFS_RETURN_IF_ERROR(FillRandom(id));
  // The directory must stay writable by us while we add its id file.
  CADCANFS_RETURN_IF_ERROR(store_->MakeDir(cipher_path, mode | 0700));
  Status s = store_->WriteAtomic(JoinStorePath(cipher_path, kDirIdFileName), id, true);
  if (s.ok() && (mode & 0700) != 0700) s = store_->SetMode(cipher_path, mode);
  if (!s.ok()) {
    (void)store_->RemoveDir(cipher_path);
    return s;
  }
  return id;
}

Status Vault::ReleaseEmptyDirectory(std::string_view cipher_path) {
  CADCANFS_ASSIGN_OR_RETURN(std::vector<DirEntry> entries, store_->List(cipher_path));
  for (const DirEntry& e : entries) {
    if (e.name != kDirIdFileName) {
      return Status::Error(Code::kNotEmpty, "directory is not empty");
    }
  }
  Status s = store_->Remove(JoinStorePath(cipher_path, kDirIdFileName));
  return s.code() == Code::kNotFound ? Status::Ok() : s;
}

Status Vault::RestoreDirId(std::string_view cipher_path, const DirId& id) {
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
    cipher = JoinStorePath(cipher, name.stored);
  }
  return cipher;
}

Result<std::string> Vault::PlainPathOf(std::string_view cipher_path) {
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

Result<std::unique_ptr<EncryptedFile>> Vault::CreateFile(std::string_view cipher_path,
                                                         uint32_t mode) {
  return EncryptedFile::Create(*store_, cipher_path, key_.master, layout_, mode);
}

Result<std::unique_ptr<EncryptedFile>> Vault::OpenFile(std::string_view cipher_path,
                                                       bool writable) {
  return EncryptedFile::Open(*store_, cipher_path, writable, masters_, layout_);
}

}  // namespace cadcanfs
