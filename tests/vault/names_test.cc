#include "cadcanfs/vault/names.h"

#include <gtest/gtest.h>

#include "cadcanfs/crypto/random.h"
#include "cadcanfs/crypto/siv.h"

namespace cadcanfs {
namespace {

class NamesTest : public ::testing::Test {
 protected:
  NamesTest()
      : key_copy_(RandomSecret(kSivKeySize).value()),
        cipher_(SecretBytes::CopyOf(key_copy_.span())) {
    EXPECT_TRUE(FillRandom(dir_a_).ok());
    EXPECT_TRUE(FillRandom(dir_b_).ok());
  }
  SecretBytes key_copy_;  // the cipher's key, to build format v1 targets by hand
  NameCipher cipher_;
  DirId dir_a_{};
  DirId dir_b_{};
};

TEST_F(NamesTest, RoundTripsAwkwardNames) {
  const std::string names[] = {"a",
                               std::string(143, 'x'),
                               std::string(144, 'y'),
                               std::string(255, 'z'),
                               "Smith, John #42 % 100: final.stl",
                               "with space",
                               "caf\xc3\xa9",   // NFC é
                               "cafe\xcc\x81",  // NFD é
                               "\xe6\x82\xa3\xe8\x80\x85.ply"};
  for (const std::string& name : names) {
    auto encrypted = cipher_.Encrypt(dir_a_, name);
    ASSERT_TRUE(encrypted.ok()) << name.size();
    EXPECT_LE(encrypted->stored.size(), kMaxStoredNameLength);
    auto back = cipher_.Decrypt(dir_a_, encrypted->encoded);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, name);
  }
}

TEST_F(NamesTest, NfcAndNfdStayDistinct) {
  auto nfc = cipher_.Encrypt(dir_a_, "caf\xc3\xa9");
  auto nfd = cipher_.Encrypt(dir_a_, "cafe\xcc\x81");
  EXPECT_NE(nfc->stored, nfd->stored);
}

TEST_F(NamesTest, ThresholdForLongNamesIs143Bytes) {
  EXPECT_FALSE(cipher_.Encrypt(dir_a_, std::string(143, 'a'))->is_long());
  auto long_name = cipher_.Encrypt(dir_a_, std::string(144, 'a'));
  EXPECT_TRUE(long_name->is_long());
  EXPECT_EQ(ClassifyStoredName(long_name->stored), StoredNameKind::kLongName);
  EXPECT_EQ(ClassifyStoredName(SidecarName(long_name->stored)), StoredNameKind::kLongNameSidecar);
}

TEST_F(NamesTest, DeterministicPerDirectoryAndDifferentAcrossDirectories) {
  auto a1 = cipher_.Encrypt(dir_a_, "scan.stl");
  auto a2 = cipher_.Encrypt(dir_a_, "scan.stl");
  auto b = cipher_.Encrypt(dir_b_, "scan.stl");
  EXPECT_EQ(a1->stored, a2->stored);
  EXPECT_NE(a1->stored, b->stored);
  EXPECT_EQ(cipher_.Decrypt(dir_b_, a1->encoded).status().code(), Code::kAuthenticationFailed);
}

TEST_F(NamesTest, EncodingIsLowercaseBase32) {
  auto e = cipher_.Encrypt(dir_a_, "Patient");
  for (char c : e->stored) EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'));
}

TEST_F(NamesTest, FlippedCharacterIsRejected) {
  auto e = cipher_.Encrypt(dir_a_, "Patient");
  std::string bad = e->encoded;
  bad[5] = bad[5] == 'a' ? 'b' : 'a';
  EXPECT_EQ(cipher_.Decrypt(dir_a_, bad).status().code(), Code::kAuthenticationFailed);
}

TEST_F(NamesTest, InvalidNamesAreRefusedLikeExt4) {
  EXPECT_EQ(cipher_.Encrypt(dir_a_, std::string(256, 'a')).status().code(), Code::kNameTooLong);
  EXPECT_EQ(cipher_.Encrypt(dir_a_, "a/b").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(cipher_.Encrypt(dir_a_, "..").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(cipher_.Encrypt(dir_a_, "").status().code(), Code::kInvalidArgument);
}

TEST_F(NamesTest, SymlinkTargetsRoundTripAndAreRandomised) {
  auto t1 = cipher_.EncryptSymlinkTarget("../Smith/scan.stl");
  auto t2 = cipher_.EncryptSymlinkTarget("../Smith/scan.stl");
  ASSERT_TRUE(t1.ok() && t2.ok());
  EXPECT_NE(*t1, *t2);
  bool bound = true;
  EXPECT_EQ(*cipher_.DecryptSymlinkTarget(dir_a_, *t1, &bound), "../Smith/scan.stl");
  EXPECT_FALSE(bound);
  // Not bound to a directory: the link may move anywhere (issue 12, item 1).
  EXPECT_EQ(*cipher_.DecryptSymlinkTarget(dir_b_, *t1), "../Smith/scan.stl");
  EXPECT_EQ(cipher_.EncryptSymlinkTarget(std::string(3000, 'a')).status().code(),
            Code::kNameTooLong);
  std::string flipped = *t1;
  flipped[5] = flipped[5] == 'a' ? 'b' : 'a';
  EXPECT_EQ(cipher_.DecryptSymlinkTarget(dir_a_, flipped).status().code(),
            Code::kAuthenticationFailed);
}

// Format v1 sealed a target to its directory's id; such targets still open there.
TEST_F(NamesTest, DirectoryBoundTargetsOfFormatV1StillOpen) {
  Bytes nonce(16, 7);
  auto sealed = SivEncrypt(key_copy_, {AsBytes("cadcanfs v1 symlink"), dir_a_, nonce},
                           AsBytes(std::string_view("cbct/scan.stl")));
  ASSERT_TRUE(sealed.ok());
  nonce.insert(nonce.end(), sealed->begin(), sealed->end());
  const std::string stored = Base32Encode(nonce);
  bool bound = false;
  EXPECT_EQ(*cipher_.DecryptSymlinkTarget(dir_a_, stored, &bound), "cbct/scan.stl");
  EXPECT_TRUE(bound);
  EXPECT_FALSE(cipher_.DecryptSymlinkTarget(dir_b_, stored).ok());
}

TEST(ClassifyTest, ReservedNames) {
  EXPECT_EQ(ClassifyStoredName("cadcanfs.dirid"), StoredNameKind::kDirId);
  EXPECT_EQ(ClassifyStoredName("cadcanfs.conf"), StoredNameKind::kConfig);
  // The writer lock is vault-root metadata too: never a file, never damage.
  EXPECT_EQ(ClassifyStoredName("cadcanfs.lock"), StoredNameKind::kConfig);
  EXPECT_EQ(ClassifyStoredName("cadcanfs.lock2"), StoredNameKind::kUnknown);
  EXPECT_EQ(ClassifyStoredName(".cadcanfs-tmp-123"), StoredNameKind::kTemp);
  EXPECT_EQ(ClassifyStoredName("Readme.txt"), StoredNameKind::kUnknown);
  EXPECT_EQ(ClassifyStoredName("lng-abc"), StoredNameKind::kUnknown);
}

}  // namespace
}  // namespace cadcanfs
