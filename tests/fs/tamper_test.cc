// The tamper matrix: one case per attack on a real vault, each asserting the exact error.
#include <gtest/gtest.h>

#include "cadcanfs/fs/offline.h"
#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

using testing::PatternBytes;
using testing::ReadRaw;
using testing::TempVault;
using testing::WriteRaw;

constexpr uint32_t kBlock = 4096;

class TamperTest : public ::testing::Test {
 protected:
  TamperTest() : vault_(kBlock), layout_(kBlock) {
    victim_content_ = PatternBytes(4 * kBlock + 100, 1);
    victim_ = vault_.CreateFile("victim", victim_content_);
    donor_ = vault_.CreateFile("donor", PatternBytes(4 * kBlock + 100, 2));
    vault_.Reopen();
  }
  std::string Raw(const std::string& cipher_path) { return vault_.root() + "/" + cipher_path; }
  Code ReadVictimCode() {
    auto r = vault_.ReadAll(victim_);
    return r.ok() ? Code::kOk : r.status().code();
  }
  Bytes Stored(const Bytes& file, uint64_t index) {
    auto at = file.begin() + layout_.CipherOffsetOfBlock(index);
    return Bytes(at, at + layout_.stored_block_size());
  }
  void PutStored(Bytes& file, uint64_t index, const Bytes& block) {
    std::copy(block.begin(), block.end(), file.begin() + layout_.CipherOffsetOfBlock(index));
  }

  TempVault vault_;
  BlockLayout layout_;
  Bytes victim_content_;
  std::string victim_;
  std::string donor_;
};

TEST_F(TamperTest, UntouchedVaultReadsBack) {
  auto r = vault_.ReadAll(victim_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, victim_content_);
}

TEST_F(TamperTest, FlippedBitInABlockIsAnAuthenticationFailure) {
  Bytes raw = ReadRaw(Raw(victim_));
  raw[layout_.CipherOffsetOfBlock(1) + 500] ^= 0x04;
  WriteRaw(Raw(victim_), raw);
  EXPECT_EQ(ReadVictimCode(), Code::kAuthenticationFailed);
}

TEST_F(TamperTest, SwappedBlocksAreDetected) {
  Bytes raw = ReadRaw(Raw(victim_));
  Bytes b1 = Stored(raw, 1), b2 = Stored(raw, 2);
  PutStored(raw, 1, b2);
  PutStored(raw, 2, b1);
  WriteRaw(Raw(victim_), raw);
  EXPECT_EQ(ReadVictimCode(), Code::kAuthenticationFailed);
}

TEST_F(TamperTest, BlockMovedWithinTheFileIsDetected) {
  Bytes raw = ReadRaw(Raw(victim_));
  PutStored(raw, 2, Stored(raw, 0));
  WriteRaw(Raw(victim_), raw);
  EXPECT_EQ(ReadVictimCode(), Code::kAuthenticationFailed);
}

TEST_F(TamperTest, BlockCopiedFromAnotherFileIsDetected) {
  Bytes raw = ReadRaw(Raw(victim_));
  Bytes donor = ReadRaw(Raw(donor_));
  PutStored(raw, 1, Stored(donor, 1));
  WriteRaw(Raw(victim_), raw);
  EXPECT_EQ(ReadVictimCode(), Code::kAuthenticationFailed);
}

TEST_F(TamperTest, HeaderCopiedFromAnotherFileIsDetected) {
  Bytes raw = ReadRaw(Raw(victim_));
  Bytes donor = ReadRaw(Raw(donor_));
  std::copy(donor.begin(), donor.begin() + kFileHeaderSize, raw.begin());
  WriteRaw(Raw(victim_), raw);
  EXPECT_EQ(ReadVictimCode(), Code::kAuthenticationFailed);
}

TEST_F(TamperTest, FlippedBitInTheHeaderIsDetected) {
  Bytes raw = ReadRaw(Raw(victim_));
  raw[20] ^= 0x80;  // inside the file id
  WriteRaw(Raw(victim_), raw);
  EXPECT_EQ(ReadVictimCode(), Code::kAuthenticationFailed);
}

TEST_F(TamperTest, TruncationAtABlockBoundaryIsDetected) {
  Bytes raw = ReadRaw(Raw(victim_));
  raw.resize(layout_.CipherOffsetOfBlock(3));  // drop blocks 3 and 4
  WriteRaw(Raw(victim_), raw);
  EXPECT_EQ(ReadVictimCode(), Code::kAuthenticationFailed);
}

TEST_F(TamperTest, TruncationToTheBareHeaderIsDetected) {
  Bytes raw = ReadRaw(Raw(victim_));
  raw.resize(kFileHeaderSize);
  WriteRaw(Raw(victim_), raw);
  EXPECT_EQ(ReadVictimCode(), Code::kCorrupt);
}

TEST_F(TamperTest, ExtensionByAWholeBlockIsDetected) {
  Bytes raw = ReadRaw(Raw(victim_));
  Bytes extra = Stored(raw, 1);
  // Make the old last block a full one first so the result has a plausible size.
  raw.resize(layout_.CipherOffsetOfBlock(4));
  raw.insert(raw.end(), extra.begin(), extra.end());
  WriteRaw(Raw(victim_), raw);
  EXPECT_EQ(ReadVictimCode(), Code::kAuthenticationFailed);
}

TEST_F(TamperTest, FlippedBitInTheConfigIsDetected) {
  std::string path = vault_.root() + "/cadcanfs.conf";
  Bytes raw = ReadRaw(path);
  std::string text(raw.begin(), raw.end());
  size_t at = text.find("\"vault_id\": \"") + 14;
  text[at] = text[at] == '0' ? '1' : '0';
  WriteRaw(path, Bytes(text.begin(), text.end()));
  auto store = OpenLocalStore(vault_.root());
  auto config = Vault::ReadConfig(**store);
  ASSERT_TRUE(config.ok());
  auto key = LoadKeyForVault(KeyOptions{vault_.key_file(), std::nullopt}, *config);
  ASSERT_TRUE(key.ok());
  auto vault = Vault::Open(std::move(store).value(), std::move(key).value());
  EXPECT_EQ(vault.status().code(), Code::kAuthenticationFailed);
}

TEST_F(TamperTest, FlippedCharacterInANameIsDetectedAndReportedByFsck) {
  std::string renamed = victim_;
  renamed[3] = renamed[3] == 'a' ? 'b' : 'a';
  ASSERT_EQ(rename(Raw(victim_).c_str(), Raw(renamed).c_str()), 0);
  auto listing = vault_.vault().ListDirectory("");
  ASSERT_TRUE(listing.ok());
  ASSERT_EQ(listing->damaged.size(), 1u);
  EXPECT_EQ(listing->damaged[0].status.code(), Code::kAuthenticationFailed);
  FsckReport report = CheckVault(vault_.vault());
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0].cipher_path, renamed);
  EXPECT_TRUE(report.problems[0].plain_path.empty());
}

TEST_F(TamperTest, EntryMovedToAnotherDirectoryDoesNotDecrypt) {
  auto dir = vault_.vault().ReadDirId("");
  auto sub = vault_.vault().EncryptName(*dir, "sub");
  ASSERT_TRUE(vault_.vault().MakeDirectory(sub->stored, 0700).ok());
  ASSERT_EQ(rename(Raw(victim_).c_str(), Raw(sub->stored + "/" + victim_).c_str()), 0);
  auto listing = vault_.vault().ListDirectory(sub->stored);
  ASSERT_TRUE(listing.ok());
  EXPECT_TRUE(listing->entries.empty());
  EXPECT_EQ(listing->damaged.size(), 1u);
}

TEST_F(TamperTest, FsckNamesTheDamagedFileByCipherAndPlainPath) {
  Bytes raw = ReadRaw(Raw(victim_));
  raw[layout_.CipherOffsetOfBlock(4) + 40] ^= 1;
  WriteRaw(Raw(victim_), raw);
  FsckReport report = CheckVault(vault_.vault());
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0].cipher_path, victim_);
  EXPECT_EQ(report.problems[0].plain_path, "victim");
  EXPECT_EQ(report.problems[0].status.code(), Code::kAuthenticationFailed);
  EXPECT_EQ(report.files_checked, 2u);
}

}  // namespace
}  // namespace cadcanfs
