// Issue 12, items 7 and 9 (config part): the config parser narrowed numbers before
// checking them ("version": 4294967297 read as 1, scrypt r and p likewise), accepted
// uppercase hex, and put no cap on the number of key entries or on the total scrypt
// cost of opening. Every file of the config fuzz corpus is checked here too: names
// starting "accept-" must parse, "reject-" must not.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cadcanfs/store/local_store.h"
#include "cadcanfs/vault/config.h"
#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

namespace stdfs = std::filesystem;

std::string ReadText(const stdfs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

std::string Upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

TEST(Issue12Item07Test, CorpusFilesAreAcceptedOrRejectedAsNamed) {
  int accepted = 0;
  int rejected = 0;
  for (const auto& entry : stdfs::directory_iterator(CADCANFS_CONFIG_CORPUS)) {
    std::string name = entry.path().filename().string();
    auto parsed = ParseConfig(ReadText(entry.path()));
    if (name.rfind("accept-", 0) == 0) {
      EXPECT_TRUE(parsed.ok()) << name << ": " << parsed.status().ToString();
      if (parsed.ok()) {
        // What is accepted serialises back to an equal config.
        auto again = ParseConfig(SerializeConfig(*parsed));
        ASSERT_TRUE(again.ok()) << name;
        EXPECT_EQ(SerializeConfig(*again), SerializeConfig(*parsed)) << name;
      }
      accepted++;
    } else if (name.rfind("reject-", 0) == 0) {
      EXPECT_FALSE(parsed.ok()) << name << " was accepted";
      rejected++;
    }
  }
  EXPECT_GT(accepted, 5);
  EXPECT_GT(rejected, 20);
}

class Issue12Item07RealConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenLocalStore(vault_.root());
    ASSERT_TRUE(store.ok());
    auto config = Vault::ReadConfig(**store);
    ASSERT_TRUE(config.ok());
    config_ = *config;
    text_ = SerializeConfig(config_);
  }
  testing::TempVault vault_;
  VaultConfig config_;
  std::string text_;
};

TEST_F(Issue12Item07RealConfigTest, VersionIsNotNarrowed) {
  auto parsed = ParseConfig(Replace(text_, "\"version\": 2", "\"version\": 4294967298"));
  EXPECT_FALSE(parsed.ok());
  EXPECT_FALSE(ParseConfig(Replace(text_, "\"version\": 2", "\"version\": -4294967294")).ok());
  EXPECT_TRUE(ParseConfig(text_).ok());
}

TEST_F(Issue12Item07RealConfigTest, UppercaseHexIsRefusedEvenThoughTheMacWouldVerify) {
  for (const std::string& field :
       {config_.vault_id_hex(), HexEncode(config_.keys[0].kek_id), HexEncode(config_.keys[0].mac),
        HexEncode(config_.keys[0].wrapped_name_key)}) {
    std::string edited = Replace(text_, "\"" + field + "\"", "\"" + Upper(field) + "\"");
    EXPECT_FALSE(ParseConfig(edited).ok()) << field;
  }
}

TEST_F(Issue12Item07RealConfigTest, KeyEntriesAreCapped) {
  VaultConfig many = config_;
  while (many.keys.size() < 8) many.keys.push_back(config_.keys[0]);
  EXPECT_TRUE(ParseConfig(SerializeConfig(many)).ok());
  many.keys.push_back(config_.keys[0]);
  EXPECT_FALSE(ParseConfig(SerializeConfig(many)).ok());
}

std::string PassphraseConfig(uint64_t n, uint64_t r, uint64_t p, int entries = 1) {
  std::string keys;
  for (int i = 0; i < entries; ++i) {
    if (i > 0) keys += ",";
    keys += R"({"kek_id": "000000000000000)" + std::to_string(i) +
            R"(", "kdf": {"type": "scrypt", "salt": ")" + std::string(64, 'e') + R"(", "n": )" +
            std::to_string(n) + R"(, "r": )" + std::to_string(r) + R"(, "p": )" +
            std::to_string(p) + R"(}, "wrapped_name_key": ")" + std::string(144, 'a') +
            R"(", "mac": ")" + std::string(64, 'c') + R"("})";
  }
  return R"({"format": "cadcanfs-vault", "version": 1, "vault_id": ")" + std::string(32, '0') +
         R"(", "content_cipher": "AES-256-GCM", "block_size": 32768, "name_cipher": "AES-256-SIV",)"
         R"( "name_encoding": "base32-lower", "key_wrap": "AES-256-KW", "keys": [)" +
         keys + "]}";
}

TEST(Issue12Item07Test, ScryptParametersAreNotNarrowed) {
  EXPECT_TRUE(ParseConfig(PassphraseConfig(65536, 8, 1)).ok());
  // 2^32 + 8 and 2^32 + 1 would read as r = 8 and p = 1 after a 32-bit narrowing.
  EXPECT_FALSE(ParseConfig(PassphraseConfig(65536, 4294967304u, 1)).ok());
  EXPECT_FALSE(ParseConfig(PassphraseConfig(65536, 8, 4294967297u)).ok());
  EXPECT_FALSE(ParseConfig(PassphraseConfig(uint64_t{1} << 62, 1, 1)).ok());
}

TEST(Issue12Item09Test, ScryptCostOfOpeningIsCapped) {
  EXPECT_TRUE(ParseConfig(PassphraseConfig(uint64_t{1} << 22, 8, 1)).ok());    // 4 GiB
  EXPECT_FALSE(ParseConfig(PassphraseConfig(uint64_t{1} << 23, 8, 1)).ok());   // 8 GiB
  EXPECT_TRUE(ParseConfig(PassphraseConfig(uint64_t{1} << 16, 8, 16)).ok());   // 1 GiB work
  EXPECT_FALSE(ParseConfig(PassphraseConfig(uint64_t{1} << 22, 8, 16)).ok());  // 64 GiB work
  EXPECT_FALSE(ParseConfig(PassphraseConfig(uint64_t{1} << 14, 8, 1)).ok());   // below floor
  EXPECT_TRUE(ParseConfig(PassphraseConfig(uint64_t{1} << 22, 8, 1, 2)).ok());
  EXPECT_FALSE(ParseConfig(PassphraseConfig(uint64_t{1} << 22, 8, 1, 3)).ok());
  EXPECT_FALSE(ParseConfig(PassphraseConfig(65536, 8, 1, 9)).ok());
}

TEST(Issue12Item07Test, DuplicateMembersAreRefused) {
  std::string text = PassphraseConfig(65536, 8, 1);
  EXPECT_TRUE(ParseConfig(text).ok());
  text.pop_back();
  EXPECT_FALSE(ParseConfig(text + R"(, "block_size": 65536})").ok());
}

}  // namespace
}  // namespace cadcanfs
