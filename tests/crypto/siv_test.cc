// AES-SIV known answers from RFC 5297 appendix A, plus tamper checks.
#include "cadcanfs/crypto/siv.h"

#include <gtest/gtest.h>

#include "testing/hex.h"

namespace cadcanfs {
namespace {

using testing::Hex;
using testing::SecretHex;

TEST(SivTest, Rfc5297A1DeterministicExample) {
  SecretBytes key = SecretHex("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  Bytes ad = Hex("101112131415161718191a1b1c1d1e1f2021222324252627");
  Bytes pt = Hex("112233445566778899aabbccddee");
  auto sealed = SivEncrypt(key, {ad}, pt);
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(HexEncode(*sealed), "85632d07c6e8f37f950acd320a2ecc9340c02b9690c4dc04daef7f6afe5c");
  auto opened = SivDecrypt(key, {ad}, *sealed);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, pt);
}

TEST(SivTest, Rfc5297A2NonceBasedExampleWithThreeComponents) {
  SecretBytes key = SecretHex("7f7e7d7c7b7a79787776757473727170404142434445464748494a4b4c4d4e4f");
  Bytes ad1 =
      Hex("00112233445566778899aabbccddeeffdeaddadadeaddadaffeeddccbbaa99887766554433221100");
  Bytes ad2 = Hex("102030405060708090a0");
  Bytes nonce = Hex("09f911029d74e35bd84156c5635688c0");
  Bytes pt =
      Hex("7468697320697320736f6d6520706c61696e7465787420746f20656e6372797074207573696e67205349562d"
          "414553");
  auto sealed = SivEncrypt(key, {ad1, ad2, nonce}, pt);
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(HexEncode(*sealed),
            "7bdb6e3b432667eb06f4d14bff2fbd0fcb900f2fddbe404326601965c889bf17"
            "dba77ceb094fa663b7a3f748ba8af829ea64ad544a272e9c485b62a3fd5c0d");
}

TEST(SivTest, TamperedSivOrAssociatedDataIsRejected) {
  SecretBytes key(kSivKeySize);
  Bytes ad = {1, 2, 3};
  auto sealed = SivEncrypt(key, {ad}, AsBytes("patient-name"));
  ASSERT_TRUE(sealed.ok());
  Bytes flipped = *sealed;
  flipped.back() ^= 1;
  EXPECT_EQ(SivDecrypt(key, {ad}, flipped).status().code(), Code::kAuthenticationFailed);
  Bytes other_ad = {1, 2, 4};
  EXPECT_EQ(SivDecrypt(key, {other_ad}, *sealed).status().code(), Code::kAuthenticationFailed);
  EXPECT_EQ(SivDecrypt(key, {ad}, Bytes(5)).status().code(), Code::kAuthenticationFailed);
}

TEST(SivTest, EmptyPlaintextIsRefusedBothWays) {
  SecretBytes key(kSivKeySize);
  EXPECT_EQ(SivEncrypt(key, {}, {}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(SivDecrypt(key, {}, Bytes(kSivTagSize)).status().code(), Code::kAuthenticationFailed);
}

}  // namespace
}  // namespace cadcanfs
