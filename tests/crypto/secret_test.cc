#include "cadcanfs/crypto/secret.h"

#include <gtest/gtest.h>
#include <unistd.h>

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
