#include "cadcanfs/vault/config.h"

#include <gtest/gtest.h>

#include "cadcanfs/crypto/random.h"

namespace cadcanfs {
namespace {

MasterKey NewMaster() { return MasterKey::FromBytes(RandomSecret(32).value()).value(); }

VaultConfig NewConfig(const MasterKey& master, const SecretBytes& name_key) {
  VaultConfig config;
  EXPECT_TRUE(FillRandom(config.vault_id).ok());
  config.keys.push_back(MakeKeyEntry(config, master, name_key, std::nullopt).value());
  return config;
}

TEST(ConfigTest, SerializeParseUnlockRoundTrip) {
  MasterKey master = NewMaster();
  SecretBytes name_key = RandomSecret(kNameKeySize).value();
  VaultConfig config = NewConfig(master, name_key);
  auto parsed = ParseConfig(SerializeConfig(config));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  auto unlocked = UnlockConfig(*parsed, master);
  ASSERT_TRUE(unlocked.ok());
  EXPECT_EQ(HexEncode(unlocked->span()), HexEncode(name_key.span()));
}

TEST(ConfigTest, WrongKeyIsReportedAsSuch) {
  MasterKey master = NewMaster();
  VaultConfig config = NewConfig(master, RandomSecret(kNameKeySize).value());
  EXPECT_EQ(UnlockConfig(config, NewMaster()).status().code(), Code::kWrongKey);
}

TEST(ConfigTest, EditedFieldFailsAuthentication) {
  MasterKey master = NewMaster();
  VaultConfig config = NewConfig(master, RandomSecret(kNameKeySize).value());
  VaultConfig edited = config;
  edited.block_size = 8192;
  EXPECT_EQ(UnlockConfig(edited, master).status().code(), Code::kAuthenticationFailed);
  edited = config;
  edited.vault_id[0] ^= 1;
  EXPECT_EQ(UnlockConfig(edited, master).status().code(), Code::kAuthenticationFailed);
}

TEST(ConfigTest, StrictParserRejectsJunk) {
  EXPECT_EQ(ParseConfig("not json").status().code(), Code::kCorrupt);
  EXPECT_EQ(ParseConfig("{}").status().code(), Code::kCorrupt);
  MasterKey master = NewMaster();
  std::string text = SerializeConfig(NewConfig(master, RandomSecret(kNameKeySize).value()));
  std::string extra = text;
  extra.insert(1, "\"extra\": 1,");
  EXPECT_EQ(ParseConfig(extra).status().code(), Code::kCorrupt);
  std::string future = text;
  future.replace(future.find("\"version\": 2"), 12, "\"version\": 4");
  EXPECT_EQ(ParseConfig(future).status().code(), Code::kUnsupported);
  std::string odd_block = text;
  odd_block.replace(odd_block.find("32768"), 5, "12345");
  EXPECT_EQ(ParseConfig(odd_block).status().code(), Code::kCorrupt);
}

TEST(ConfigTest, WeakScryptParametersAreRefused) {
  MasterKey master = NewMaster();
  VaultConfig config;
  KdfParams kdf;
  kdf.salt = Bytes(32, 1);
  kdf.scrypt.n = 1024;  // 1 MiB: below the 64 MiB floor
  config.keys.push_back(
      MakeKeyEntry(config, master, RandomSecret(kNameKeySize).value(), kdf).value());
  EXPECT_EQ(ParseConfig(SerializeConfig(config)).status().code(), Code::kCorrupt);
}

}  // namespace
}  // namespace cadcanfs
