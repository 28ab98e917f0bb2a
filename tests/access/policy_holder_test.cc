#include "cadcanfs/access/policy_holder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "access/access_test_util.h"

namespace cadcanfs::access {
namespace {

using testing::FakeIds;
using testing::kExamplePolicy;
using testing::TempDir;
using testing::WriteFile;

const Caller kBob{1002, 100, {}};
const std::vector<std::string> kBobsCase = {"SmithDental", "Doe_Jane_2026-03-01"};
const std::vector<std::string> kOtherCase = {"SmithDental", "Roe_Rick_2026-01-02"};

// The example policy with bob's first assignment moved to another case.
std::string Reassigned() {
  const std::string needle = R"("case": "Doe_Jane_2026-03-01", "access": "write")";
  std::string text = kExamplePolicy;
  text.replace(text.find(needle), needle.size(),
               R"("case": "Roe_Rick_2026-01-02", "access": "write")");
  return text;
}

// Atomically replaces `path`, as editors do.
void ReplaceFile(const std::string& path, const std::string& text) {
  WriteFile(path + ".tmp", text);
  ASSERT_EQ(rename((path + ".tmp").c_str(), path.c_str()), 0);
}

class PolicyHolderTest : public ::testing::Test {
 protected:
  void SetUp() override { WriteFile(path_, kExamplePolicy); }

  std::unique_ptr<PolicyHolder> Load() {
    auto holder = PolicyHolder::Load(path_, FakeIds());
    EXPECT_TRUE(holder.ok()) << holder.status().ToString();
    return std::move(holder).value();
  }

  bool BobSees(const PolicyHolder& holder, const std::vector<std::string>& path) {
    return holder.Current()->Decide(kBob, path, EntryKind::kDirectory).visible();
  }

  TempDir dir_;
  std::string path_ = dir_.path() + "/policy.json";
};

TEST_F(PolicyHolderTest, ABrokenPolicyIsRefusedAtStartup) {
  WriteFile(path_, "{\"version\": 1}");
  auto holder = PolicyHolder::Load(path_, FakeIds());
  ASSERT_FALSE(holder.ok());
  EXPECT_EQ(holder.status().code(), Code::kCorrupt);
}

TEST_F(PolicyHolderTest, ReloadSwapsThePolicyAndKeepsOldSnapshotsValid) {
  auto holder = Load();
  std::shared_ptr<const Policy> before = holder->Current();
  EXPECT_EQ(holder->generation(), 1u);
  ReplaceFile(path_, Reassigned());
  ASSERT_TRUE(holder->Reload().ok());
  EXPECT_EQ(holder->generation(), 2u);
  EXPECT_FALSE(BobSees(*holder, kBobsCase));
  EXPECT_TRUE(BobSees(*holder, kOtherCase));
  // A request that took its snapshot before the reload finishes with the old policy.
  EXPECT_TRUE(before->Decide(kBob, kBobsCase, EntryKind::kDirectory).visible());
}

TEST_F(PolicyHolderTest, ABrokenReloadKeepsTheOldPolicy) {
  auto holder = Load();
  ReplaceFile(path_, "{ not json");
  Status failed = holder->Reload();
  EXPECT_EQ(failed.code(), Code::kCorrupt);
  EXPECT_EQ(holder->generation(), 1u);
  EXPECT_TRUE(BobSees(*holder, kBobsCase));
  unlink(path_.c_str());
  EXPECT_FALSE(holder->Reload().ok());
  EXPECT_TRUE(BobSees(*holder, kBobsCase));
}

TEST_F(PolicyHolderTest, ReloadIfChangedReadsOnlyAChangedFile) {
  auto holder = Load();
  ASSERT_TRUE(holder->ReloadIfChanged().ok());
  EXPECT_EQ(holder->generation(), 1u);
  ReplaceFile(path_, "[]");
  EXPECT_FALSE(holder->ReloadIfChanged().ok());
  EXPECT_TRUE(holder->ReloadIfChanged().ok()) << "a broken file is reported once";
  ReplaceFile(path_, Reassigned());
  ASSERT_TRUE(holder->ReloadIfChanged().ok());
  EXPECT_EQ(holder->generation(), 2u);
  EXPECT_TRUE(BobSees(*holder, kOtherCase));
}

// Collects the watcher's reports.
class Reports {
 public:
  PolicyWatcher::ReloadReport Sink() {
    return [this](const Status& s) {
      std::lock_guard<std::mutex> lock(mutex_);
      results_.push_back(s.code());
      changed_.notify_all();
    };
  }
  // Waits up to 5 s for the `n`th report and returns its code.
  std::optional<Code> Nth(size_t n) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!changed_.wait_for(lock, std::chrono::seconds(5), [&] { return results_.size() >= n; })) {
      return std::nullopt;
    }
    return results_[n - 1];
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Code> results_;
};

TEST_F(PolicyHolderTest, TheWatcherReloadsOnChangeAndKeepsTheOldOnError) {
  auto holder = Load();
  Reports reports;
  // A long poll interval: the changes below must be seen through inotify.
  auto watcher = PolicyWatcher::Start(*holder, path_, reports.Sink(), std::chrono::seconds(60));
  ASSERT_TRUE(watcher.ok()) << watcher.status().ToString();
  ReplaceFile(path_, "{ broken");
  EXPECT_EQ(reports.Nth(1), Code::kCorrupt);
  EXPECT_TRUE(BobSees(*holder, kBobsCase));
  WriteFile(path_, Reassigned());  // rewritten in place this time
  EXPECT_EQ(reports.Nth(2), Code::kOk);
  EXPECT_TRUE(BobSees(*holder, kOtherCase));
  EXPECT_FALSE(BobSees(*holder, kBobsCase));
}

TEST_F(PolicyHolderTest, ARequestedReloadRereadsAnUnchangedFile) {
  auto holder = Load();
  Reports reports;
  auto watcher = PolicyWatcher::Start(*holder, path_, reports.Sink(), std::chrono::seconds(60));
  ASSERT_TRUE(watcher.ok());
  (*watcher)->RequestReload();  // what the SIGHUP handler calls
  EXPECT_EQ(reports.Nth(1), Code::kOk);
  EXPECT_EQ(holder->generation(), 2u);
}

TEST_F(PolicyHolderTest, APolicyFileMadeWritableByOthersIsRefusedOnReload) {
  auto holder = Load();
  Reports reports;
  auto watcher =
      PolicyWatcher::Start(*holder, path_, reports.Sink(), std::chrono::milliseconds(100));
  ASSERT_TRUE(watcher.ok());
  chmod(path_.c_str(), 0620);  // now anyone in the group could grant themselves access
  EXPECT_EQ(reports.Nth(1), Code::kPermissionDenied);
  EXPECT_TRUE(BobSees(*holder, kBobsCase));
}

}  // namespace
}  // namespace cadcanfs::access
