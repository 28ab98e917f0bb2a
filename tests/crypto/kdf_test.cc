// Known answers for HKDF-SHA256 (RFC 5869 A.3), HMAC-SHA256 (RFC 4231 case 2),
// SHA-256 (FIPS 180-2) and scrypt (RFC 7914 section 12).
#include "cadcanfs/crypto/kdf.h"

#include <gtest/gtest.h>

#include "testing/hex.h"

namespace cadcanfs {
namespace {

using testing::SecretHex;

TEST(KdfTest, HkdfRfc5869CaseThreeEmptySaltAndInfo) {
  auto okm = HkdfSha256(SecretHex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"), "", 42);
  ASSERT_TRUE(okm.ok());
  EXPECT_EQ(HexEncode(okm->span()),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
            "9d201395faa4b61a96c8");
}

TEST(KdfTest, HkdfInfoSeparatesKeys) {
  SecretBytes ikm = SecretHex("00112233445566778899aabbccddeeff");
  auto a = HkdfSha256(ikm, "a", 32);
  auto b = HkdfSha256(ikm, "b", 32);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(HexEncode(a->span()), HexEncode(b->span()));
}

TEST(KdfTest, HmacSha256Rfc4231CaseTwo) {
  SecretBytes key = SecretBytes::CopyOf(AsBytes("Jefe"));
  Digest mac = HmacSha256(key, AsBytes("what do ya want for nothing?"));
  EXPECT_EQ(HexEncode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(KdfTest, Sha256OfAbc) {
  EXPECT_EQ(HexEncode(Sha256(AsBytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(KdfTest, ScryptRfc7914SecondVector) {
  SecretBytes pass = SecretBytes::CopyOf(AsBytes("password"));
  ScryptParams params{1024, 8, 16};
  auto out = Scrypt(pass, AsBytes("NaCl"), params, 64);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(HexEncode(out->span()),
            "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
            "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640");
}

}  // namespace
}  // namespace cadcanfs
