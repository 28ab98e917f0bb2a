#include "cadcanfs/graph/token_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace cadcanfs::graph {
namespace {

SecretBytes KeyOf(uint8_t fill) {
  SecretBytes key(32);
  std::fill(key.data(), key.data() + key.size(), fill);
  return key;
}

class TokenStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/token-store-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/tokens";
    settings_.client_id = "client-1";
    settings_.tenant = "organizations";
    settings_.login_url = "http://127.0.0.1:1";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Bytes FileBytes() {
    std::ifstream in(path_, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), {});
  }
  void WriteFileBytes(const Bytes& data) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data.data()),
              static_cast<std::streamsize>(data.size()));
  }

  std::string dir_;
  std::string path_;
  LoginSettings settings_;
  const std::string token_ = "refresh-token-value-that-must-stay-secret";
};

TEST_F(TokenStoreTest, RoundTripKeepsTokenAndSettings) {
  TokenStore store(path_, KeyOf(1));
  ASSERT_TRUE(store.Save(settings_, SecretBytes::CopyOf(AsBytes(token_))).ok());
  auto loaded = TokenStore(path_, KeyOf(1)).Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(AsChars(loaded->refresh_token.span()), token_);
  EXPECT_EQ(loaded->settings.client_id, "client-1");
  EXPECT_EQ(loaded->settings.tenant, "organizations");
  EXPECT_EQ(loaded->settings.scope, settings_.scope);
  // The token is not in the file in the clear.
  const Bytes file = FileBytes();
  EXPECT_EQ(AsChars(file).find(token_), std::string_view::npos);
}

TEST_F(TokenStoreTest, FileIsPrivateAndReplacedAtomically) {
  TokenStore store(path_, KeyOf(1));
  ASSERT_TRUE(store.Save(settings_, SecretBytes::CopyOf(AsBytes(token_))).ok());
  struct stat info = {};
  ASSERT_EQ(stat(path_.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  ASSERT_TRUE(store.Save(settings_, SecretBytes::CopyOf(AsBytes("rotated"))).ok());
  ASSERT_EQ(stat(path_.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));
  auto loaded = store.Load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(AsChars(loaded->refresh_token.span()), "rotated");
}

TEST_F(TokenStoreTest, WrongKeyIsOneClearError) {
  ASSERT_TRUE(
      TokenStore(path_, KeyOf(1)).Save(settings_, SecretBytes::CopyOf(AsBytes(token_))).ok());
  auto loaded = TokenStore(path_, KeyOf(2)).Load();
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), Code::kAuthenticationFailed);
  EXPECT_NE(loaded.status().message().find("wrong key or a damaged file"), std::string::npos);
}

TEST_F(TokenStoreTest, DamagedFileIsDetected) {
  TokenStore store(path_, KeyOf(1));
  ASSERT_TRUE(store.Save(settings_, SecretBytes::CopyOf(AsBytes(token_))).ok());
  const Bytes original = FileBytes();
  // A flipped bit in the settings (authenticated data) or in the ciphertext.
  for (size_t at : {size_t{12}, original.size() - 20, original.size() - 1}) {
    Bytes damaged = original;
    damaged[at] ^= 0x01;
    WriteFileBytes(damaged);
    auto loaded = store.Load();
    ASSERT_FALSE(loaded.ok()) << at;
    EXPECT_EQ(loaded.status().code(), Code::kAuthenticationFailed) << at;
  }
  Bytes truncated(original.begin(), original.begin() + 20);
  WriteFileBytes(truncated);
  EXPECT_EQ(store.Load().status().code(), Code::kAuthenticationFailed);
  WriteFileBytes(Bytes{'h', 'e', 'l', 'l', 'o'});
  EXPECT_EQ(store.Load().status().code(), Code::kCorrupt);
}

TEST_F(TokenStoreTest, MissingFileAndLogout) {
  TokenStore store(path_, KeyOf(1));
  EXPECT_EQ(store.Load().status().code(), Code::kNotFound);
  ASSERT_TRUE(store.Save(settings_, SecretBytes::CopyOf(AsBytes(token_))).ok());
  EXPECT_TRUE(TokenStore::Remove(path_).ok());
  EXPECT_FALSE(std::filesystem::exists(path_));
  EXPECT_EQ(TokenStore::Remove(path_).code(), Code::kNotFound);
  // A file that is not a token store is left alone.
  WriteFileBytes(Bytes{'n', 'o', 't', 'e', 's'});
  EXPECT_EQ(TokenStore::Remove(path_).code(), Code::kCorrupt);
  EXPECT_TRUE(std::filesystem::exists(path_));
}

}  // namespace
}  // namespace cadcanfs::graph
