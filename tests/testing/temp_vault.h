// Test fixtures: a temporary directory and a real vault on a LocalStore inside it.
#ifndef CADCANFS_TESTS_TESTING_TEMP_VAULT_H_
#define CADCANFS_TESTS_TESTING_TEMP_VAULT_H_

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "cadcanfs/fs/vault.h"
#include "cadcanfs/store/local_store.h"
#include "cadcanfs/vault/key_source.h"

namespace cadcanfs::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/cadcanfs-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Writes a fresh key file (mode 0600) and returns its path.
inline std::string MakeKeyFile(const TempDir& dir, const std::string& name) {
  std::string path = dir.path() + "/" + name;
  EXPECT_TRUE(WriteNewKeyFile(path).ok());
  return path;
}

class TempVault {
 public:
  explicit TempVault(uint32_t block_size = 4096) {
    key_file_ = MakeKeyFile(dir_, "master.key");
    root_ = dir_.path() + "/vault";
    mkdir(root_.c_str(), 0700);
    auto store = OpenLocalStore(root_);
    auto key = LoadKeyForNewVault(KeyOptions{key_file_, std::nullopt});
    EXPECT_TRUE(Vault::Initialize(**store, *key, block_size).ok());
    Reopen();
  }

  void Reopen() {
    vault_.reset();
    auto store = OpenLocalStore(root_);
    auto config = Vault::ReadConfig(**store);
    EXPECT_TRUE(config.ok()) << config.status().ToString();
    auto key = LoadKeyForVault(KeyOptions{key_file_, std::nullopt}, *config);
    auto vault = Vault::Open(std::move(store).value(), std::move(key).value());
    EXPECT_TRUE(vault.ok()) << vault.status().ToString();
    vault_ = std::move(vault).value();
  }

  Vault& vault() { return *vault_; }
  const std::string& root() const { return root_; }
  const std::string& key_file() const { return key_file_; }
  const TempDir& dir() const { return dir_; }

  // Creates plaintext file `name` in the root with `content`, returns its cipher path.
  std::string CreateFile(const std::string& name, const Bytes& content) {
    auto dir = vault_->ReadDirId("");
    auto encrypted = vault_->EncryptName(*dir, name);
    EXPECT_TRUE(vault_->PrepareEntry("", *encrypted).ok());
    auto file = vault_->CreateFile(encrypted->stored, 0600);
    EXPECT_TRUE(file.ok()) << file.status().ToString();
    EXPECT_TRUE((*file)->Write(0, content).ok());
    return encrypted->stored;
  }

  Result<Bytes> ReadAll(const std::string& cipher_path) {
    CADCANFS_ASSIGN_OR_RETURN(auto file, vault_->OpenFile(cipher_path, false));
    Bytes out(file->size());
    CADCANFS_ASSIGN_OR_RETURN(size_t n, file->Read(0, out));
    out.resize(n);
    return out;
  }

 private:
  TempDir dir_;
  std::string key_file_;
  std::string root_;
  std::unique_ptr<Vault> vault_;
};

// Whether the vault at `root` opens with `keys` alone, and every file of `contents`
// (plaintext path -> bytes) reads back exactly with it.
inline ::testing::AssertionResult AllFilesReadBackWith(
    const std::string& root, const KeyOptions& keys, const std::map<std::string, Bytes>& contents) {
  auto store = OpenLocalStore(root);
  if (!store.ok()) return ::testing::AssertionFailure() << store.status().ToString();
  auto config = Vault::ReadConfig(**store);
  if (!config.ok()) return ::testing::AssertionFailure() << config.status().ToString();
  auto key = LoadKeyForVault(keys, *config);
  if (!key.ok()) return ::testing::AssertionFailure() << key.status().ToString();
  auto vault = Vault::Open(std::move(store).value(), std::move(key).value());
  if (!vault.ok()) return ::testing::AssertionFailure() << vault.status().ToString();
  for (const auto& [path, bytes] : contents) {
    auto cipher = (*vault)->CipherPathOf(path);
    if (!cipher.ok()) return ::testing::AssertionFailure() << cipher.status().ToString();
    auto file = (*vault)->OpenFile(*cipher, false);
    if (!file.ok()) return ::testing::AssertionFailure() << file.status().ToString();
    Bytes out((*file)->size());
    auto n = (*file)->Read(0, out);
    if (!n.ok() || out != bytes) return ::testing::AssertionFailure() << "content differs";
  }
  return ::testing::AssertionSuccess();
}

inline Bytes PatternBytes(size_t n, uint32_t seed) {
  Bytes out(n);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    out[i] = static_cast<uint8_t>(x);
  }
  return out;
}

inline Bytes ReadRaw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void WriteRaw(const std::string& path, const Bytes& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

}  // namespace cadcanfs::testing

#endif  // CADCANFS_TESTS_TESTING_TEMP_VAULT_H_
