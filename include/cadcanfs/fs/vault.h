// Vault: an opened encrypted vault on a Store: its config, master key(s), name
// cipher and block layout, plus the directory-level operations every frontend needs
// (directory ids, name encryption with long-name sidecars, listing, path mapping).
//
// Thread safety: all methods may be called concurrently; the Vault holds no mutable
// state after Open.
#ifndef CADCANFS_FS_VAULT_H_
#define CADCANFS_FS_VAULT_H_

#include <time.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cadcanfs/common/status.h"
#include "cadcanfs/fs/encrypted_file.h"
#include "cadcanfs/fs/format.h"
#include "cadcanfs/store/store.h"
#include "cadcanfs/vault/config.h"
#include "cadcanfs/vault/content.h"
#include "cadcanfs/vault/key_source.h"
#include "cadcanfs/vault/names.h"

namespace cadcanfs {

// The one "not found" every vault operation reports for a plaintext path.
Status NoSuchVaultPath();

class Vault {
 public:
  // Creates a vault in the store's (empty) root. kNotEmpty if the root has entries.
  static Status Initialize(Store& store, const LoadedKey& key, uint32_t block_size,
                           VaultLayout layout = VaultLayout::kTree);
  // Reads and parses the config without any key (for `info`).
  static Result<VaultConfig> ReadConfig(Store& store);
  // Opens with `key` (used for new files) and optional extra keys that may open headers.
  static Result<std::unique_ptr<Vault>> Open(std::unique_ptr<Store> store, LoadedKey key,
                                             std::vector<MasterKey> extra_keys = {});

  Store& store() { return *store_; }
  const VaultConfig& config() const { return config_; }
  const BlockLayout& layout() const { return layout_; }
  const NameCipher& names() const { return *names_; }
  const MasterKey& master() const { return key_.master; }
  std::span<const MasterKey* const> masters() const { return masters_; }

  // Directories have two places in the store (docs/vault-format.md §1): their entry, a
  // store directory in the parent's entries that holds their id file, and the store
  // directory that holds their own entries. In the tree layout the two are one; in
  // the flat layout the second is derived from the id. The functions below take an
  // entry (`cipher_path`) unless they say "entries" (`cipher_dir`).

  // Reads the directory id in the store directory `cipher_dir` (an entry, or a flat
  // vault's entries directory, which keeps a copy).
  Result<DirId> ReadDirId(std::string_view cipher_dir);
  VaultLayout directory_layout() const { return config_.layout; }
  // Where the entries of the directory with id `id` live in a flat vault; nullopt in
  // the tree layout, where they live in the directory's entry.
  std::optional<std::string> FlatEntriesDir(const DirId& id) const;
  // Where the entries of the directory whose entry is `cipher_path` and id `id` live.
  std::string EntriesDir(std::string_view cipher_path, const DirId& id) const;
  // EntriesDir, reading the id (once, in the flat layout only).
  Result<std::string> EntriesDirOf(std::string_view cipher_path);
  // mkdir plus a fresh directory id, durably. Returns the new id.
  Result<DirId> MakeDirectory(std::string_view cipher_path, uint32_t mode);

  // Encrypts `name` for the directory with id `dir`.
  // rmdir: kNotEmpty unless the directory holds nothing but its id file. Removes the
  // id file, then the directory, and puts the id back if the directory cannot go.
  Status RemoveDirectory(std::string_view cipher_path, const DirId& id);
  // Before a rename replaces the empty directory at `cipher_path`: kNotEmpty unless it
  // is empty, else removes its id file. RestoreDirId undoes this if the rename fails.
  Status ReleaseEmptyDirectory(std::string_view cipher_path);
  Status RestoreDirId(std::string_view cipher_path, const DirId& id);

  Result<EncryptedName> EncryptName(const DirId& dir, std::string_view name) const;
  // Writes the sidecar a long name needs before its entry is created (no-op otherwise).
  Status PrepareEntry(std::string_view cipher_dir, const EncryptedName& name);
  // Removes a long name's sidecar after its entry is gone (no-op otherwise).
  Status CleanupEntry(std::string_view cipher_dir, const EncryptedName& name);
  // Decrypts one stored entry name of a directory (reading its sidecar if long).
  Result<std::string> DecryptStoredName(std::string_view cipher_dir, const DirId& dir,
                                        std::string_view stored_name);

  // The entries in `cipher_dir`, an entries directory (EntriesDir), reading its id.
  Result<DirListing> ListDirectory(std::string_view cipher_dir);
  // The same for a directory whose id `dir` the caller read already.
  Result<DirListing> ListDirectory(std::string_view cipher_dir, const DirId& dir);
  // Maps "a/b/c" (plaintext, relative to the vault root) to its ciphertext path.
  Result<std::string> CipherPathOf(std::string_view plain_path);
  // Maps a ciphertext path back to plaintext (in the flat layout this searches the
  // directories for the one whose entries hold it).
  Result<std::string> PlainPathOf(std::string_view cipher_path);

  Result<std::unique_ptr<EncryptedFile>> CreateFile(std::string_view cipher_path, uint32_t mode);

  // Brings an older vault to the current format version before anything writes to it
  // (re-seals format v1 symlink targets, then rewrites the config). REQUIRES: the
  // caller holds the vault's writer lock. A no-op for a current vault.
  Status UpgradeFormat();
  // Settles the resizes a writer that died holding the vault lock left half done, in
  // files changed since `since` (the dead session's start, by the vault's clock), so
  // that every file's stored length again gives its size. Returns how many it settled.
  // REQUIRES: the caller holds the vault's writer lock.
  Result<uint64_t> SettleInterruptedWrites(const struct timespec& since);
  Result<std::unique_ptr<EncryptedFile>> OpenFile(std::string_view cipher_path, bool writable);

 private:
  Status SettleIfInterrupted(const std::string& path, const DirEntry& entry,
                             const struct timespec& since, uint64_t& settled);
  Result<bool> HasPendingResize(const std::string& cipher_path);
  // UpgradeFormat's walk: re-seals the directory-bound symlink targets below `cipher_dir`.
  Status UnbindSymlinkTargets(const std::string& cipher_dir);
  Status UnbindSymlinkTarget(const DirId& dir, const std::string& cipher_dir,
                             const std::string& path);

  Vault(std::unique_ptr<Store> store, VaultConfig config, LoadedKey key,
        std::vector<MasterKey> extra_keys, SecretBytes name_key, SecretBytes location_key);

  // The flat layout's entries directory for `id`: creates it with its id copy.
  Status MakeFlatEntriesDir(const DirId& id);
  Status RemoveFlatEntriesDir(const DirId& id);
  // PlainPathOf in the flat layout.
  Result<std::string> FlatPlainPathOf(std::string_view cipher_path);
  // The plaintext path of the directory whose entries are in `entries_dir`, found by
  // walking the plaintext tree breadth first.
  Result<std::string> FindFlatDirectory(std::string_view entries_dir, DirId& id);

  std::unique_ptr<Store> store_;
  VaultConfig config_;
  LoadedKey key_;
  std::vector<MasterKey> extra_keys_;
  std::vector<const MasterKey*> masters_;
  BlockLayout layout_;
  std::unique_ptr<NameCipher> names_;
  SecretBytes location_key_;  // flat layout: keys the entries-directory paths
};

}  // namespace cadcanfs

#endif  // CADCANFS_FS_VAULT_H_
