// RFC 3394 section 4 known answers for AES key wrap.
#include "cadcanfs/crypto/keywrap.h"

#include <gtest/gtest.h>

#include "testing/hex.h"

namespace cadcanfs {
namespace {

using testing::Hex;
using testing::SecretHex;

struct WrapVector {
  const char* kek;
  const char* key;
  const char* wrapped;
};

const WrapVector kVectors[] = {
    // 4.1: 128 bits of key data with a 128-bit KEK.
    {"000102030405060708090a0b0c0d0e0f", "00112233445566778899aabbccddeeff",
     "1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5"},
    // 4.3: 128 bits of key data with a 256-bit KEK.
    {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     "00112233445566778899aabbccddeeff", "64e8c3f9ce0f5ba263e9777905818a2a93c8191e7d6e8ae7"},
    // 4.6: 256 bits of key data with a 256-bit KEK (our DEK case).
    {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     "00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f",
     "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21"},
};

class KeyWrapKnownAnswerTest : public ::testing::TestWithParam<WrapVector> {};

TEST_P(KeyWrapKnownAnswerTest, WrapMatchesVector) {
  auto wrapped = AesKeyWrap(SecretHex(GetParam().kek), SecretHex(GetParam().key));
  ASSERT_TRUE(wrapped.ok());
  EXPECT_EQ(HexEncode(*wrapped), GetParam().wrapped);
}

TEST_P(KeyWrapKnownAnswerTest, UnwrapMatchesVector) {
  auto key = AesKeyUnwrap(SecretHex(GetParam().kek), Hex(GetParam().wrapped));
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(HexEncode(key->span()), GetParam().key);
}

TEST_P(KeyWrapKnownAnswerTest, TamperedWrapIsRejected) {
  Bytes wrapped = Hex(GetParam().wrapped);
  wrapped[3] ^= 0x10;
  EXPECT_EQ(AesKeyUnwrap(SecretHex(GetParam().kek), wrapped).status().code(),
            Code::kAuthenticationFailed);
}

INSTANTIATE_TEST_SUITE_P(Rfc3394, KeyWrapKnownAnswerTest, ::testing::ValuesIn(kVectors));

TEST(KeyWrapTest, WrongKekIsRejected) {
  Bytes wrapped = Hex(kVectors[2].wrapped);
  SecretBytes other(32);
  EXPECT_EQ(AesKeyUnwrap(other, wrapped).status().code(), Code::kAuthenticationFailed);
}

TEST(KeyWrapTest, BadLengthsAreRejected) {
  SecretBytes kek(32);
  EXPECT_FALSE(AesKeyWrap(kek, SecretBytes(12)).ok());
  EXPECT_EQ(AesKeyUnwrap(kek, Bytes(20)).status().code(), Code::kAuthenticationFailed);
}

}  // namespace
}  // namespace cadcanfs
