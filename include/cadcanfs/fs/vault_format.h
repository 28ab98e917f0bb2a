// VaultFormat: the encrypted vault as a Format (format.h), for FileSystem.
//
// The Vault speaks its own terms (directory ids, encrypted names, EncryptedFile), which
// the offline tools (encrypt, decrypt, fsck, rekey) use directly; this adapter maps
// them onto the Format interface the filesystem core is written against.
//
// Thread safety: as Vault.
#ifndef CADCANFS_FS_VAULT_FORMAT_H_
#define CADCANFS_FS_VAULT_FORMAT_H_

#include <memory>

#include "cadcanfs/fs/format.h"
#include "cadcanfs/fs/vault.h"

namespace cadcanfs {

class VaultFormat final : public Format {
 public:
  explicit VaultFormat(std::unique_ptr<Vault> vault) : vault_(std::move(vault)) {}

  Vault& vault() { return *vault_; }

  Store& store() override { return vault_->store(); }
  uint32_t preferred_io_size() const override { return vault_->layout().block_size(); }
  Result<uint64_t> PlainSizeOfStored(uint64_t stored_size) const override {
    return vault_->layout().PlainSizeOfCipherSize(stored_size);
  }
  uint64_t SymlinkLengthOfStored(uint64_t stored_length) const override {
    return SymlinkTargetLengthOfStored(stored_length);
  }

  bool entries_by_state() const override {
    return vault_->directory_layout() == VaultLayout::kFlat;
  }
  std::string EntriesDirOfState(const DirState& dir) const override {
    return *vault_->FlatEntriesDir(dir);
  }
  Result<DirState> ReadDirState(std::string_view store_dir) override {
    return vault_->ReadDirId(store_dir);
  }
  Result<DirState> MakeDirectory(std::string_view store_path, uint32_t mode) override {
    return vault_->MakeDirectory(store_path, mode);
  }
  Status RemoveDirectory(std::string_view store_path, const DirState& state) override {
    return vault_->RemoveDirectory(store_path, state);
  }
  Status ReleaseEmptyDirectory(std::string_view store_path) override {
    return vault_->ReleaseEmptyDirectory(store_path);
  }
  Status RestoreDirState(std::string_view store_path, const DirState& state) override {
    return vault_->RestoreDirId(store_path, state);
  }
  Result<DirListing> ListDirectory(std::string_view store_dir, const DirState& state) override {
    return vault_->ListDirectory(store_dir, state);
  }

  Result<EncryptedName> EncodeName(const DirState& dir, std::string_view name) const override {
    return vault_->EncryptName(dir, name);
  }
  Status PrepareEntry(std::string_view store_dir, const EncryptedName& name) override {
    return vault_->PrepareEntry(store_dir, name);
  }
  Status CleanupEntry(std::string_view store_dir, const EncryptedName& name) override {
    return vault_->CleanupEntry(store_dir, name);
  }
  Result<std::string> DecodeStoredName(std::string_view store_dir, const DirState& dir,
                                       std::string_view stored_name) override {
    return vault_->DecryptStoredName(store_dir, dir, stored_name);
  }

  Result<std::unique_ptr<FileContent>> CreateFile(std::string_view store_path,
                                                  uint32_t mode) override {
    CADCANFS_ASSIGN_OR_RETURN(auto file, vault_->CreateFile(store_path, mode));
    return std::unique_ptr<FileContent>(std::move(file));
  }
  Result<std::unique_ptr<FileContent>> OpenFile(std::string_view store_path,
                                                bool writable) override {
    CADCANFS_ASSIGN_OR_RETURN(auto file, vault_->OpenFile(store_path, writable));
    return std::unique_ptr<FileContent>(std::move(file));
  }

  Result<std::string> EncodeSymlinkTarget(std::string_view target) const override {
    return vault_->names().EncryptSymlinkTarget(target);
  }
  Result<std::string> DecodeSymlinkTarget(const DirState& dir,
                                          std::string_view stored) const override {
    return vault_->names().DecryptSymlinkTarget(dir, stored);
  }
  Result<std::string> EncodeXattrName(std::string_view name) const override {
    return vault_->names().EncryptXattrName(name);
  }
  Result<std::string> DecodeXattrName(std::string_view stored) const override {
    return vault_->names().DecryptXattrName(stored);
  }
  Result<Bytes> SealXattrValue(std::string_view stored_name, ByteSpan value) const override {
    return vault_->names().SealXattrValue(stored_name, value);
  }
  Result<Bytes> OpenXattrValue(std::string_view stored_name, ByteSpan sealed) const override {
    return vault_->names().OpenXattrValue(stored_name, sealed);
  }

 private:
  std::unique_ptr<Vault> vault_;
};

}  // namespace cadcanfs

#endif  // CADCANFS_FS_VAULT_FORMAT_H_
