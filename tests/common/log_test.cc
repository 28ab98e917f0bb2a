#include "cadcanfs/common/log.h"

#include <gtest/gtest.h>

namespace cadcanfs {
namespace {

TEST(RedactTest, PathsAndEncodedMaterialAreRemoved) {
  EXPECT_EQ(RedactForLog("open /home/ann/Smith_John/scan.stl failed"), "open <redacted> failed");
  EXPECT_EQ(RedactForLog("name mzxw6ytboimzxw6ytboimzxw6ytboi bad"), "name <redacted> bad");
  EXPECT_EQ(RedactForLog("key 00112233445566778899aabbccddeeff"), "key <redacted>");
}

TEST(RedactTest, FileIdsAndOrdinaryWordsSurvive) {
  EXPECT_EQ(RedactForLog("block 3 of fid:00112233445566778899aabbccddeeff failed"),
            "block 3 of fid:00112233445566778899aabbccddeeff failed");
  EXPECT_EQ(RedactForLog("mounted read-only in 12 ms"), "mounted read-only in 12 ms");
}

}  // namespace
}  // namespace cadcanfs
