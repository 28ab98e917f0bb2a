#include "cadcanfs/store/open_store.h"

#include <gtest/gtest.h>

#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

TEST(OpenStoreTest, PathsAndFileUrisNameLocalDirectories) {
  EXPECT_EQ(**LocalPathOfStore("/srv/vault"), "/srv/vault");
  EXPECT_EQ(**LocalPathOfStore("relative/vault"), "relative/vault");
  EXPECT_EQ(**LocalPathOfStore("file:///srv/vault"), "/srv/vault");
  // A colon in a path is just a character.
  EXPECT_EQ(**LocalPathOfStore("scans/2026:03"), "scans/2026:03");
  EXPECT_EQ(**LocalPathOfStore("odd/dir://x"), "odd/dir://x");
}

TEST(OpenStoreTest, RemoteAndUnknownLocations) {
  EXPECT_FALSE(LocalPathOfStore("onedrive:/Vaults/Office")->has_value());
  EXPECT_EQ(LocalPathOfStore("s3://bucket/x").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(LocalPathOfStore("file://relative").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(OpenStore("onedrive:/Vaults/Office").status().code(), Code::kUnsupported);
}

TEST(OpenStoreTest, OpensALocalDirectory) {
  testing::TempDir dir;
  auto store = OpenStore("file://" + dir.path());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_TRUE((*store)->WriteAtomic("x", AsBytes("1")).ok());
  EXPECT_EQ(OpenStore(dir.path() + "/missing").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace cadcanfs
