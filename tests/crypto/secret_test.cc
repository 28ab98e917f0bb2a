#include "cadcanfs/crypto/secret.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "cadcanfs/crypto/random.h"

namespace cadcanfs {
namespace {

TEST(SecretBytesTest, ZeroInitialisedAndSized) {
  SecretBytes s(32);
  ASSERT_EQ(s.size(), 32u);
  for (uint8_t b : s.span()) EXPECT_EQ(b, 0);
}

TEST(SecretBytesTest, MoveTransfersOwnershipAndLiveCountTracksLifetime) {
  size_t before = SecretBytes::LiveCount();
  {
    SecretBytes a(16);
    a.data()[0] = 7;
    SecretBytes b = std::move(a);
    EXPECT_TRUE(a.empty());
    EXPECT_EQ(b.data()[0], 7);
    EXPECT_EQ(SecretBytes::LiveCount(), before + 1);
  }
  EXPECT_EQ(SecretBytes::LiveCount(), before);
}

// Small secrets share protected slots: a released slot is wiped, and the next secret
// of its size class gets it back reading all zeros.
TEST(SecretBytesTest, ReleasedSlotIsWipedBeforeReuse) {
  const uint8_t* where = nullptr;
  {
    SecretBytes a(48);
    std::memset(a.data(), 0xAB, a.size());
    where = a.data();
  }
  SecretBytes b(40);
  EXPECT_EQ(b.data(), where);
  for (uint8_t byte : b.span()) ASSERT_EQ(byte, 0);
}

TEST(SecretBytesTest, LargeSecretsAreZeroedAndWritable) {
  SecretBytes big(3 * 4096 + 5);
  ASSERT_EQ(big.size(), 3u * 4096 + 5);
  for (uint8_t byte : big.span()) ASSERT_EQ(byte, 0);
  std::memset(big.data(), 0x5A, big.size());
  EXPECT_EQ(big.data()[big.size() - 1], 0x5A);
}

TEST(SecretBytesTest, MemoryIsLockedWhenRunningAsRoot) {
  SecretBytes s(32);
  if (geteuid() == 0) {
    EXPECT_TRUE(s.locked());
  }
}

TEST(RandomTest, SecretsDiffer) {
  auto a = RandomSecret(32);
  auto b = RandomSecret(32);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(std::vector<uint8_t>(a->span().begin(), a->span().end()),
            std::vector<uint8_t>(b->span().begin(), b->span().end()));
}

}  // namespace
}  // namespace cadcanfs
