// AES-256-GCM known answers from the GCM specification (McGrew & Viega, test cases
// 13-16, as adopted by NIST SP 800-38D validation), plus tamper checks.
#include "cadcanfs/crypto/gcm.h"

#include <gtest/gtest.h>

#include "testing/hex.h"

namespace cadcanfs {
namespace {

using testing::Hex;
using testing::SecretHex;

struct GcmVector {
  const char* key;
  const char* iv;
  const char* aad;
  const char* pt;
  const char* ct;
  const char* tag;
};

const GcmVector kVectors[] = {
    // Test case 13: empty plaintext.
    {"0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    // Test case 14: one zero block.
    {"0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "", "00000000000000000000000000000000", "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"},
    // Test case 15: four blocks, no AAD.
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    // Test case 16: partial final block with AAD.
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

class GcmKnownAnswerTest : public ::testing::TestWithParam<GcmVector> {};

TEST_P(GcmKnownAnswerTest, SealMatchesVector) {
  const GcmVector& v = GetParam();
  GcmKey key(SecretHex(v.key));
  Bytes pt = Hex(v.pt);
  Bytes ct(pt.size());
  uint8_t tag[kGcmTagSize];
  ASSERT_TRUE(GcmSeal(key, Hex(v.iv), Hex(v.aad), pt, ct.data(), tag).ok());
  EXPECT_EQ(HexEncode(ct), v.ct);
  EXPECT_EQ(HexEncode(ByteSpan(tag, kGcmTagSize)), v.tag);
}

TEST_P(GcmKnownAnswerTest, OpenMatchesVector) {
  const GcmVector& v = GetParam();
  GcmKey key(SecretHex(v.key));
  Bytes ct = Hex(v.ct);
  Bytes pt(ct.size());
  ASSERT_TRUE(GcmOpen(key, Hex(v.iv), Hex(v.aad), ct, Hex(v.tag), pt.data()).ok());
  EXPECT_EQ(HexEncode(pt), v.pt);
}

TEST_P(GcmKnownAnswerTest, FlippedTagIsRejected) {
  const GcmVector& v = GetParam();
  GcmKey key(SecretHex(v.key));
  Bytes ct = Hex(v.ct);
  Bytes tag = Hex(v.tag);
  tag[0] ^= 1;
  Bytes pt(ct.size());
  EXPECT_EQ(GcmOpen(key, Hex(v.iv), Hex(v.aad), ct, tag, pt.data()).code(),
            Code::kAuthenticationFailed);
}

INSTANTIATE_TEST_SUITE_P(SpecVectors, GcmKnownAnswerTest, ::testing::ValuesIn(kVectors));

TEST(GcmTest, FlippedCiphertextBitIsRejectedAndOutputWiped) {
  GcmKey key(SecretHex(kVectors[2].key));
  Bytes ct = Hex(kVectors[2].ct);
  ct[10] ^= 0x80;
  Bytes pt(ct.size(), 0xAA);
  EXPECT_EQ(GcmOpen(key, Hex(kVectors[2].iv), {}, ct, Hex(kVectors[2].tag), pt.data()).code(),
            Code::kAuthenticationFailed);
  EXPECT_EQ(pt, Bytes(ct.size(), 0));
}

TEST(GcmTest, KeyCachingSwitchesBetweenKeysCorrectly) {
  // Alternating keys on one thread exercises the cached-key fast path both ways.
  GcmKey a(SecretHex(kVectors[2].key));
  GcmKey b(SecretHex(kVectors[0].key));
  for (int i = 0; i < 3; ++i) {
    Bytes pt = Hex(kVectors[2].pt);
    Bytes ct(pt.size());
    uint8_t tag[kGcmTagSize];
    ASSERT_TRUE(GcmSeal(a, Hex(kVectors[2].iv), {}, pt, ct.data(), tag).ok());
    EXPECT_EQ(HexEncode(ct), kVectors[2].ct);
    Bytes ct2(16);
    ASSERT_TRUE(GcmSeal(b, Hex(kVectors[1].iv), {}, Hex(kVectors[1].pt), ct2.data(), tag).ok());
    EXPECT_EQ(HexEncode(ct2), kVectors[1].ct);
  }
}

TEST(GcmTest, RejectsWrongNonceSize) {
  GcmKey key(SecretHex(kVectors[0].key));
  uint8_t tag[kGcmTagSize];
  EXPECT_EQ(GcmSeal(key, Bytes(8), {}, {}, nullptr, tag).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace cadcanfs
