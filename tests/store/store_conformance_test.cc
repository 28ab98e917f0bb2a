// A typed conformance suite every Store implementation must pass. Each backend
// instantiates it with a factory (OneDrive will add its own against the emulator).
#include <gtest/gtest.h>

#include "cadcanfs/store/local_store.h"
#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

struct LocalStoreFactory {
  testing::TempDir dir;
  std::unique_ptr<Store> Make() { return std::move(OpenLocalStore(dir.path())).value(); }
};

template <typename Factory>
class StoreConformanceTest : public ::testing::Test {
 protected:
  StoreConformanceTest() : store_(factory_.Make()) {}
  Factory factory_;
  std::unique_ptr<Store> store_;
};

TYPED_TEST_SUITE_P(StoreConformanceTest);

TYPED_TEST_P(StoreConformanceTest, WriteAtomicThenReadSmall) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.WriteAtomic("obj", AsBytes("hello")).ok());
  EXPECT_EQ(AsChars(*s.ReadSmall("obj", 100)), "hello");
  ASSERT_TRUE(s.WriteAtomic("obj", AsBytes("bye")).ok());
  EXPECT_EQ(AsChars(*s.ReadSmall("obj", 100)), "bye");
  EXPECT_EQ(s.WriteAtomic("obj", AsBytes("x"), true).code(), Code::kAlreadyExists);
  EXPECT_EQ(s.ReadSmall("obj", 2).status().code(), Code::kCorrupt);
  // No temporary files are left behind.
  EXPECT_EQ(s.List("")->size(), 1u);
}

TYPED_TEST_P(StoreConformanceTest, RangedReadsAndWrites) {
  Store& s = *this->store_;
  auto f = s.Open("f", OpenOptions{.write = true, .create = true, .exclusive = true});
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->WriteAt(0, AsBytes("0123456789")).ok());
  ASSERT_TRUE((*f)->WriteAt(4, AsBytes("ab")).ok());
  ASSERT_TRUE((*f)->Sync().ok());
  Bytes out(20);
  EXPECT_EQ(*(*f)->ReadAt(2, out), 8u);
  EXPECT_EQ(AsChars(ByteSpan(out.data(), 8)), "23ab6789");
  ASSERT_TRUE((*f)->Truncate(3).ok());
  EXPECT_EQ(*(*f)->Size(), 3u);
  EXPECT_EQ(
      s.Open("f", OpenOptions{.write = true, .create = true, .exclusive = true}).status().code(),
      Code::kAlreadyExists);
}

TYPED_TEST_P(StoreConformanceTest, DirectoriesRenameAndRemove) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.MakeDir("d", 0700).ok());
  EXPECT_EQ(s.MakeDir("d", 0700).code(), Code::kAlreadyExists);
  ASSERT_TRUE(s.WriteAtomic("d/x", AsBytes("1")).ok());
  EXPECT_EQ(s.RemoveDir("d").code(), Code::kNotEmpty);
  ASSERT_TRUE(s.WriteAtomic("y", AsBytes("2")).ok());
  EXPECT_EQ(s.Rename("y", "d/x", RenameMode::kNoReplace).code(), Code::kAlreadyExists);
  ASSERT_TRUE(s.Rename("y", "d/x", RenameMode::kReplace).ok());
  EXPECT_EQ(AsChars(*s.ReadSmall("d/x", 10)), "2");
  EXPECT_EQ(s.Stat("y").status().code(), Code::kNotFound);
  ASSERT_TRUE(s.Remove("d/x").ok());
  ASSERT_TRUE(s.RemoveDir("d").ok());
  EXPECT_EQ(s.Stat("d").status().code(), Code::kNotFound);
}

TYPED_TEST_P(StoreConformanceTest, MalformedPathsAreRefused) {
  Store& s = *this->store_;
  EXPECT_EQ(s.Stat("../etc").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(s.Stat("a//b").status().code(), Code::kInvalidArgument);
}

REGISTER_TYPED_TEST_SUITE_P(StoreConformanceTest, WriteAtomicThenReadSmall, RangedReadsAndWrites,
                            DirectoriesRenameAndRemove, MalformedPathsAreRefused);

using StoreFactories = ::testing::Types<LocalStoreFactory>;
INSTANTIATE_TYPED_TEST_SUITE_P(All, StoreConformanceTest, StoreFactories);

TEST(LocalStoreSpecificTest, SymlinksInsideTheVaultAreNeverFollowed) {
  testing::TempDir dir;
  ASSERT_EQ(symlink("/etc", (dir.path() + "/escape").c_str()), 0);
  auto store = OpenLocalStore(dir.path());
  EXPECT_FALSE((*store)->ReadSmall("escape/hostname", 1000).ok());
  EXPECT_FALSE((*store)->List("escape").ok());
}

}  // namespace
}  // namespace cadcanfs
