// Table tests for the block offset arithmetic, and block seal/open binding.
#include "cadcanfs/vault/content.h"

#include <gtest/gtest.h>

#include "cadcanfs/crypto/random.h"

namespace cadcanfs {
namespace {

TEST(BlockLayoutTest, SizesRoundTripForEveryShape) {
  BlockLayout layout(4096);
  const uint64_t sizes[] = {
      0, 1, 4095, 4096, 4097, 8191, 8192, 8193, 10 * 1024 * 1024 + 7, (uint64_t{5} << 30) + 3};
  for (uint64_t plain : sizes) {
    uint64_t cipher = layout.CipherSizeOfPlainSize(plain);
    auto back = layout.PlainSizeOfCipherSize(cipher);
    ASSERT_TRUE(back.ok()) << plain;
    EXPECT_EQ(*back, plain);
  }
}

TEST(BlockLayoutTest, KnownValues) {
  BlockLayout layout(4096);
  EXPECT_EQ(layout.CipherSizeOfPlainSize(0), kFileHeaderSize + 28);
  EXPECT_EQ(layout.CipherSizeOfPlainSize(4096), kFileHeaderSize + 4096 + 28);
  EXPECT_EQ(layout.CipherSizeOfPlainSize(4097), kFileHeaderSize + 2 * 28 + 4097);
  EXPECT_EQ(layout.BlockCount(0), 1u);
  EXPECT_EQ(layout.BlockCount(4096), 1u);
  EXPECT_EQ(layout.BlockCount(4097), 2u);
  EXPECT_EQ(layout.CipherOffsetOfBlock(2), kFileHeaderSize + 2 * (4096 + 28));
  EXPECT_EQ(layout.PlainLengthOfBlock(1, 5000), 5000u - 4096u);
  EXPECT_EQ(layout.PlainLengthOfBlock(2, 5000), 0u);
}

TEST(BlockLayoutTest, ImpossibleCipherSizesAreCorrupt) {
  BlockLayout layout(4096);
  EXPECT_EQ(layout.PlainSizeOfCipherSize(0).status().code(), Code::kCorrupt);
  EXPECT_EQ(layout.PlainSizeOfCipherSize(kFileHeaderSize + 27).status().code(), Code::kCorrupt);
  // A full block followed by a torn block of fewer than 28 bytes.
  EXPECT_EQ(layout.PlainSizeOfCipherSize(kFileHeaderSize + 4096 + 28 + 10).status().code(),
            Code::kCorrupt);
  // A full block followed by an empty extra block.
  EXPECT_EQ(layout.PlainSizeOfCipherSize(kFileHeaderSize + 4096 + 28 + 28).status().code(),
            Code::kCorrupt);
}

FileKeys RandomKeys() {
  FileKeys keys;
  EXPECT_TRUE(FillRandom(keys.file_id).ok());
  keys.content_key = std::make_shared<GcmKey>(RandomSecret(32).value());
  return keys;
}

TEST(BlockSealTest, AssociatedDataBindsIndexLastFlagAndFile) {
  FileKeys keys = RandomKeys();
  Bytes plain(100, 7);
  Bytes sealed(plain.size() + kBlockOverhead);
  ASSERT_TRUE(SealBlock(keys, 5, false, plain, sealed.data()).ok());
  Bytes out(plain.size());
  EXPECT_TRUE(OpenBlock(keys, 5, false, sealed, out.data()).ok());
  EXPECT_EQ(out, plain);
  EXPECT_EQ(OpenBlock(keys, 6, false, sealed, out.data()).code(), Code::kAuthenticationFailed);
  EXPECT_EQ(OpenBlock(keys, 5, true, sealed, out.data()).code(), Code::kAuthenticationFailed);
  FileKeys other = keys;
  other.file_id[0] ^= 1;
  EXPECT_EQ(OpenBlock(other, 5, false, sealed, out.data()).code(), Code::kAuthenticationFailed);
}

TEST(BlockSealTest, NoncesAreFreshEachTime) {
  FileKeys keys = RandomKeys();
  Bytes plain(32, 1);
  Bytes a(plain.size() + kBlockOverhead), b(plain.size() + kBlockOverhead);
  ASSERT_TRUE(SealBlock(keys, 0, true, plain, a.data()).ok());
  ASSERT_TRUE(SealBlock(keys, 0, true, plain, b.data()).ok());
  EXPECT_NE(Bytes(a.begin(), a.begin() + 12), Bytes(b.begin(), b.begin() + 12));
}

}  // namespace
}  // namespace cadcanfs
