#include "cadcanfs/common/status.h"

#include <gtest/gtest.h>

namespace cadcanfs {
namespace {

TEST(StatusTest, OkIsDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Code::kOk);
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, ErrorCarriesCodeMessageAndErrno) {
  Status s = Status::FromErrno(ENOSPC, "write block");
  EXPECT_EQ(s.code(), Code::kNoSpace);
  EXPECT_EQ(s.sys_errno(), ENOSPC);
  EXPECT_NE(s.message().find("write block"), std::string::npos);
  Status copy = s;
  EXPECT_EQ(copy.code(), Code::kNoSpace);
  EXPECT_EQ(s.WithContext("flush").message().substr(0, 7), "flush: ");
}

Result<int> Half(int x) {
  if (x % 2) return Status::Error(Code::kInvalidArgument, "odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  CADCANFS_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(ResultTest, PropagatesValuesAndErrors) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace cadcanfs
