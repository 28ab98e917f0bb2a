// StagingStore (issue 10 §2): random-access writes staged, encrypted, in a spill
// directory, and committed as whole objects at fsync or, after the last close, in the
// background with retries.
#include "cadcanfs/store/staging_store.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "cadcanfs/crypto/random.h"
#include "cadcanfs/store/memory_store.h"
#include "cadcanfs/store/remote_like_store.h"
#include "testing/forwarding_store.h"
#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

using testing::PatternBytes;
using testing::TempDir;

// Fails the first `failing_commits` commits (Sync of a writer) with kRetryLater, as a
// throttled OneDrive would, and counts what reaches it.
class FlakyStoreFile final : public testing::ForwardingStoreFile {
 public:
  FlakyStoreFile(std::unique_ptr<StoreFile> base, std::atomic<int>& failures,
                 std::atomic<int>& commits)
      : ForwardingStoreFile(std::move(base)), failures_(failures), commits_(commits) {}
  Result<ObjectInfo> Commit(std::optional<std::string> if_match_etag) override {
    if (failures_.fetch_sub(1) > 0) return Status::Error(Code::kRetryLater, "throttled");
    ++commits_;
    return base().Commit(std::move(if_match_etag));
  }

 private:
  std::atomic<int>& failures_;
  std::atomic<int>& commits_;
};

// Records the ranges a reader is asked to prefetch.
class PrefetchRecordingFile final : public testing::ForwardingStoreFile {
 public:
  PrefetchRecordingFile(std::unique_ptr<StoreFile> base,
                        std::vector<std::pair<uint64_t, uint64_t>>& ranges, std::mutex& mu)
      : ForwardingStoreFile(std::move(base)), ranges_(ranges), mu_(mu) {}
  void Prefetch(uint64_t offset, uint64_t length) override {
    std::lock_guard lock(mu_);
    ranges_.emplace_back(offset, length);
  }

 private:
  std::vector<std::pair<uint64_t, uint64_t>>& ranges_;
  std::mutex& mu_;
};

class FlakyStore final : public testing::ForwardingStore {
 public:
  explicit FlakyStore(Store& base) : ForwardingStore(base) {}
  Result<std::unique_ptr<StoreFile>> Open(std::string_view path,
                                          const OpenOptions& options) override {
    CADCANFS_ASSIGN_OR_RETURN(auto file, ForwardingStore::Open(path, options));
    if (!options.write) {
      return std::unique_ptr<StoreFile>(
          std::make_unique<PrefetchRecordingFile>(std::move(file), prefetched, prefetched_mu));
    }
    return std::unique_ptr<StoreFile>(
        std::make_unique<FlakyStoreFile>(std::move(file), failures, commits));
  }
  std::vector<std::pair<uint64_t, uint64_t>> Prefetched() {
    std::lock_guard lock(prefetched_mu);
    return prefetched;
  }
  std::atomic<int> failures{0};
  std::atomic<int> commits{0};
  std::mutex prefetched_mu;
  std::vector<std::pair<uint64_t, uint64_t>> prefetched;
};

class StagingStoreTest : public ::testing::Test {
 protected:
  StagingStoreTest() : memory_(NewMemoryStore()), key_(kStagingKeySize) {
    EXPECT_TRUE(FillRandom(key_).ok());
    Restart();
  }

  // A new staging store over the same store and spill directory, as the next mount
  // after a stop or a crash opens it.
  void Restart(const Bytes* key = nullptr) {
    staging_.reset();
    auto staging = OpenStaging(key != nullptr ? *key : key_);
    ASSERT_TRUE(staging.ok()) << staging.status().ToString();
    staging_ = std::move(staging).value();
  }

  Result<std::unique_ptr<StagingStore>> OpenStaging(const Bytes& key) {
    auto flaky = std::make_unique<FlakyStore>(*memory_);
    flaky_ = flaky.get();
    StagingOptions options{.spill_dir = spill_dir(),
                           .key = SecretBytes::CopyOf(key),
                           .first_retry = std::chrono::milliseconds(5),
                           .longest_retry = std::chrono::milliseconds(20)};
    return OpenStagingStore(std::move(flaky), std::move(options));
  }

  // The files in the spill directory and their contents.
  std::map<std::string, std::string> SpillFiles() {
    std::map<std::string, std::string> files;
    for (const auto& e : std::filesystem::directory_iterator(spill_dir())) {
      std::ifstream in(e.path(), std::ios::binary);
      files[e.path().filename()] = std::string((std::istreambuf_iterator<char>(in)), {});
    }
    return files;
  }

  std::string spill_dir() const { return dir_.path() + "/spill"; }

  // What the store below holds, bypassing the staging layer.
  Bytes Stored(const std::string& path) {
    auto file = memory_->Open(path, OpenOptions{});
    EXPECT_TRUE(file.ok()) << file.status().ToString();
    if (!file.ok()) return {};
    Bytes out(*(*file)->Size());
    EXPECT_TRUE((*file)->ReadAt(0, out).ok());
    return out;
  }

  Bytes ReadThroughStaging(const std::string& path) {
    auto file = staging_->Open(path, OpenOptions{});
    EXPECT_TRUE(file.ok());
    if (!file.ok()) return {};
    Bytes out(*(*file)->Size());
    auto n = (*file)->ReadAt(0, out);
    EXPECT_TRUE(n.ok());
    out.resize(n.ok() ? *n : 0);
    return out;
  }

  void PutInStore(const std::string& path, const Bytes& content) {
    auto file = memory_->Open(path, OpenOptions{.write = true, .create = true});
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->WriteAt(0, content).ok());
  }

  std::unique_ptr<StoreFile> OpenForWrite(const std::string& path, bool create = false) {
    auto file = staging_->Open(path, OpenOptions{.write = true, .create = create});
    EXPECT_TRUE(file.ok()) << file.status().ToString();
    return file.ok() ? std::move(file).value() : nullptr;
  }

  TempDir dir_;
  std::unique_ptr<Store> memory_;
  Bytes key_;
  FlakyStore* flaky_ = nullptr;
  std::unique_ptr<StagingStore> staging_;
};

TEST_F(StagingStoreTest, WritesReachTheStoreOnlyAtSync) {
  auto file = OpenForWrite("f", true);
  ASSERT_NE(file, nullptr);
  const Bytes content = PatternBytes(200000, 1);
  ASSERT_TRUE(file->WriteAt(0, content).ok());
  // Created at once, empty; the content is only staged.
  EXPECT_TRUE(Stored("f").empty());
  EXPECT_EQ(staging_->Stat("f")->size, content.size());
  EXPECT_EQ(ReadThroughStaging("f"), content);
  auto listed = staging_->List("");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  ASSERT_TRUE((*listed)[0].info.has_value());
  EXPECT_EQ((*listed)[0].info->size, content.size());
  ASSERT_TRUE(file->Commit({}).ok());
  EXPECT_EQ(Stored("f"), content);
  EXPECT_EQ(flaky_->commits.load(), 2);  // the empty creation, then the content
}

TEST_F(StagingStoreTest, ARewriteKeepsTheBytesItDidNotTouch) {
  const Bytes original = PatternBytes(300000, 2);
  PutInStore("scan.stl", original);
  auto file = OpenForWrite("scan.stl");
  ASSERT_TRUE(file->WriteAt(100000, PatternBytes(10, 3)).ok());
  ASSERT_TRUE(file->Commit({}).ok());
  Bytes expected = original;
  const Bytes patch = PatternBytes(10, 3);
  std::copy(patch.begin(), patch.end(), expected.begin() + 100000);
  EXPECT_EQ(Stored("scan.stl"), expected);
}

TEST_F(StagingStoreTest, BytesCutByATruncateReadAsZerosWhenTheFileGrowsAgain) {
  PutInStore("f", PatternBytes(200000, 4));
  auto file = OpenForWrite("f");
  ASSERT_TRUE(file->Truncate(70000).ok());
  ASSERT_TRUE(file->Truncate(150000).ok());
  ASSERT_TRUE(file->Commit({}).ok());
  Bytes expected = PatternBytes(200000, 4);
  expected.resize(70000);
  expected.resize(150000, 0);
  EXPECT_EQ(Stored("f"), expected);
}

TEST_F(StagingStoreTest, TheLastCloseCommitsInTheBackground) {
  auto file = OpenForWrite("f", true);
  auto second = OpenForWrite("f");
  ASSERT_TRUE(file->WriteAt(0, PatternBytes(5000, 5)).ok());
  file.reset();
  EXPECT_EQ(staging_->Drain(std::chrono::milliseconds(50)), 0u);
  EXPECT_TRUE(Stored("f").empty()) << "committed while a writer was still open";
  ASSERT_TRUE(second->WriteAt(5000, PatternBytes(10, 6)).ok());
  second.reset();
  EXPECT_EQ(staging_->Drain(std::chrono::seconds(10)), 0u);
  Bytes expected = PatternBytes(5000, 5);
  const Bytes tail = PatternBytes(10, 6);
  expected.insert(expected.end(), tail.begin(), tail.end());
  EXPECT_EQ(Stored("f"), expected);
}

TEST_F(StagingStoreTest, AFailingCommitIsRetriedUntilItLands) {
  auto file = OpenForWrite("f", true);
  flaky_->failures = 3;
  ASSERT_TRUE(file->WriteAt(0, PatternBytes(1000, 7)).ok());
  EXPECT_EQ(file->Commit({}).status().code(),
            Code::kRetryLater);  // fsync reports the failure itself
  file.reset();
  EXPECT_EQ(staging_->Drain(std::chrono::seconds(10)), 0u);
  EXPECT_EQ(Stored("f"), PatternBytes(1000, 7));
  const StagingStatus status = staging_->status();
  EXPECT_EQ(status.pending_commits, 0u);
  EXPECT_EQ(status.failed_attempts, 2u);  // the fsync's failure was reported, not queued
  EXPECT_EQ(status.last_error, "throttled");
}

TEST_F(StagingStoreTest, StatusCountsPendingCommitsWithoutNames) {
  auto file = OpenForWrite("Doe_Jane_scan", true);
  flaky_->failures = 1000000;
  ASSERT_TRUE(file->WriteAt(0, PatternBytes(4096, 8)).ok());
  file.reset();
  EXPECT_EQ(staging_->Drain(std::chrono::milliseconds(100)), 1u);
  const StagingStatus status = staging_->status();
  EXPECT_EQ(status.pending_commits, 1u);
  EXPECT_EQ(status.pending_bytes, 4096u);
  EXPECT_GT(status.failed_attempts, 0u);
  EXPECT_EQ(status.last_error.find("Doe"), std::string::npos);
  flaky_->failures = 0;
  EXPECT_EQ(staging_->Drain(std::chrono::seconds(10)), 0u);
}

TEST_F(StagingStoreTest, AStagedFileFollowsItsRename) {
  ASSERT_TRUE(staging_->MakeDir("a", 0755).ok());
  ASSERT_TRUE(staging_->MakeDir("b", 0755).ok());
  auto file = OpenForWrite("a/f", true);
  ASSERT_TRUE(file->WriteAt(0, PatternBytes(3000, 9)).ok());
  ASSERT_TRUE(staging_->Rename("a", "c", RenameMode::kNoReplace).ok());
  EXPECT_EQ(ReadThroughStaging("c/f"), PatternBytes(3000, 9));
  file.reset();
  EXPECT_EQ(staging_->Drain(std::chrono::seconds(10)), 0u);
  EXPECT_EQ(Stored("c/f"), PatternBytes(3000, 9));
  EXPECT_EQ(memory_->Stat("a/f").status().code(), Code::kNotFound);
}

TEST_F(StagingStoreTest, ARemovedFileIsNotCommittedBack) {
  auto file = OpenForWrite("f", true);
  ASSERT_TRUE(file->WriteAt(0, PatternBytes(3000, 10)).ok());
  ASSERT_TRUE(staging_->Remove("f").ok());
  file.reset();
  EXPECT_EQ(staging_->Drain(std::chrono::seconds(10)), 0u);
  EXPECT_EQ(memory_->Stat("f").status().code(), Code::kNotFound);
}

TEST_F(StagingStoreTest, RandomWritesAndTruncatesMatchAModel) {
  PutInStore("f", PatternBytes(100000, 11));
  Bytes model = PatternBytes(100000, 11);
  auto file = OpenForWrite("f");
  std::mt19937 rng(12);
  for (int step = 0; step < 300; ++step) {
    const uint64_t offset = rng() % 400000;
    if (step % 17 == 16) {
      ASSERT_TRUE(file->Truncate(offset).ok());
      model.resize(offset, 0);
    } else {
      const Bytes data = PatternBytes(1 + rng() % 100000, static_cast<uint32_t>(step));
      ASSERT_TRUE(file->WriteAt(offset, data).ok());
      if (model.size() < offset + data.size()) model.resize(offset + data.size(), 0);
      std::copy(data.begin(), data.end(), model.begin() + static_cast<ptrdiff_t>(offset));
    }
    if (step % 50 == 49) {
      ASSERT_TRUE(file->Commit({}).ok());
    }
  }
  EXPECT_EQ(ReadThroughStaging("f"), model);
  ASSERT_TRUE(file->Commit({}).ok());
  EXPECT_EQ(Stored("f"), model);
}

// What is staged is ciphertext, and so is the journal, which holds the store path: a
// distinctive plaintext and name are nowhere in the spill directory.
TEST_F(StagingStoreTest, TheSpillAndTheJournalHoldNoPlaintext) {
  const std::string marker = "PATIENT-MARKER-7f3a9q";
  const std::string name = "Smith_Jane_2026-03-01.stl";
  Bytes content;
  for (int i = 0; i < 2000; ++i) content.insert(content.end(), marker.begin(), marker.end());
  auto file = OpenForWrite(name, true);
  flaky_->failures = 1000000;  // keep it staged
  ASSERT_TRUE(file->WriteAt(0, content).ok());
  file.reset();
  const auto files = SpillFiles();
  int spills = 0, journals = 0;
  for (const auto& [file_name, bytes] : files) {
    spills += file_name.ends_with(".spill");
    journals += file_name.ends_with(".journal");
    EXPECT_EQ(file_name.find("Smith"), std::string::npos);
    EXPECT_EQ(bytes.find(marker), std::string::npos) << file_name;
    EXPECT_EQ(bytes.find("Smith"), std::string::npos) << file_name;
  }
  EXPECT_EQ(spills, 1);
  EXPECT_EQ(journals, 1);
  flaky_->failures = 0;
  EXPECT_EQ(staging_->Drain(std::chrono::seconds(10)), 0u);
  EXPECT_TRUE(SpillFiles().empty()) << "a committed stage leaves nothing behind";
}

// A stop (or crash) with a commit still owed: the next start with the key finds it,
// serves the staged version at once and commits it.
TEST_F(StagingStoreTest, APendingCommitSurvivesARestart) {
  PutInStore("f", PatternBytes(150000, 13));
  auto file = OpenForWrite("f");
  flaky_->failures = 1000000;
  ASSERT_TRUE(file->WriteAt(70000, PatternBytes(5, 14)).ok());
  ASSERT_TRUE(file->Truncate(140000).ok());
  file.reset();
  Restart();  // this one commits
  Bytes expected = PatternBytes(150000, 13);
  const Bytes patch = PatternBytes(5, 14);
  std::copy(patch.begin(), patch.end(), expected.begin() + 70000);
  expected.resize(140000);
  EXPECT_EQ(ReadThroughStaging("f"), expected);
  EXPECT_EQ(staging_->Drain(std::chrono::seconds(10)), 0u);
  EXPECT_EQ(Stored("f"), expected);
  EXPECT_TRUE(SpillFiles().empty());
}

// A file still open at the crash had promised nothing: its stage is dropped.
TEST_F(StagingStoreTest, AStageStillOpenAtACrashIsDropped) {
  PutInStore("f", PatternBytes(1000, 15));
  auto file = OpenForWrite("f");
  ASSERT_TRUE(file->WriteAt(0, PatternBytes(10, 16)).ok());
  // The "crash": a second store opens the spill directory while this one still runs.
  auto next = OpenStaging(key_);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ((*next)->Drain(std::chrono::seconds(5)), 0u);
  EXPECT_EQ(Stored("f"), PatternBytes(1000, 15));
  next->reset();
  file.reset();  // now it is journalled for real
  EXPECT_EQ(staging_->Drain(std::chrono::seconds(10)), 0u);
}

TEST_F(StagingStoreTest, AJournalOpensOnlyWithItsKey) {
  auto file = OpenForWrite("f", true);
  flaky_->failures = 1000000;
  ASSERT_TRUE(file->WriteAt(0, PatternBytes(100, 17)).ok());
  file.reset();
  staging_.reset();
  Bytes other(kStagingKeySize, 1);
  auto wrong = OpenStaging(other);
  EXPECT_EQ(wrong.status().code(), Code::kAuthenticationFailed);
  Restart();
  EXPECT_EQ(staging_->Drain(std::chrono::seconds(10)), 0u);
  EXPECT_EQ(Stored("f"), PatternBytes(100, 17));
}

// Someone else changed the object after staging began: ours lands as a conflict
// copy beside it, and theirs stays.
TEST_F(StagingStoreTest, AConcurrentChangeGetsAConflictCopy) {
  ASSERT_TRUE(staging_->MakeDir("case", 0755).ok());
  PutInStore("case/scan.stl", PatternBytes(1000, 18));
  auto file = OpenForWrite("case/scan.stl");
  ASSERT_TRUE(file->WriteAt(0, PatternBytes(10, 19)).ok());
  PutInStore("case/scan.stl", PatternBytes(2000, 20));  // the other writer
  ASSERT_TRUE(file->Commit({}).ok());
  EXPECT_EQ(Stored("case/scan.stl"), PatternBytes(2000, 20));
  auto listed = memory_->List("case");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  std::string copy;
  for (const DirEntry& e : *listed) {
    if (e.name != "scan.stl") copy = e.name;
  }
  EXPECT_TRUE(copy.starts_with("scan (conflicted copy ")) << copy;
  EXPECT_TRUE(copy.ends_with(").stl")) << copy;
  Bytes ours = PatternBytes(1000, 18);
  const Bytes patch = PatternBytes(10, 19);
  std::copy(patch.begin(), patch.end(), ours.begin());
  EXPECT_EQ(Stored("case/" + copy), ours);
}

// close(2) checkpoints a staged file (FUSE flush): a crash before its last release
// (kill -9 between close and RELEASE) no longer loses it.
TEST_F(StagingStoreTest, ACheckpointedFileSurvivesACrashBeforeItsRelease) {
  PutInStore("f", PatternBytes(150000, 30));
  auto file = OpenForWrite("f");
  ASSERT_TRUE(file->WriteAt(65000, PatternBytes(2000, 31)).ok());
  ASSERT_TRUE(file->Checkpoint().ok());
  // The "crash": the next store opens the spill directory; this one never releases.
  auto next = OpenStaging(key_);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ((*next)->Drain(std::chrono::seconds(10)), 0u);
  Bytes expected = PatternBytes(150000, 30);
  const Bytes patch = PatternBytes(2000, 31);
  std::copy(patch.begin(), patch.end(), expected.begin() + 65000);
  EXPECT_EQ(Stored("f"), expected);
  next->reset();
  ASSERT_TRUE(file->Abort().ok());  // the crashed process's handle: nothing more to commit
  file.reset();
  EXPECT_EQ(staging_->Drain(std::chrono::seconds(10)), 0u);
  EXPECT_EQ(Stored("f"), expected);
}

TEST_F(StagingStoreTest, AbortDropsTheStagedBlocks) {
  PutInStore("f", PatternBytes(100000, 32));
  auto file = OpenForWrite("f");
  ASSERT_TRUE(file->WriteAt(10, PatternBytes(70000, 33)).ok());
  ASSERT_TRUE(file->Truncate(90000).ok());
  ASSERT_TRUE(file->Abort().ok());
  EXPECT_EQ(*file->Size(), 100000u);
  EXPECT_EQ(ReadThroughStaging("f"), PatternBytes(100000, 32));
  const int commits = flaky_->commits.load();
  file.reset();
  EXPECT_EQ(staging_->Drain(std::chrono::seconds(10)), 0u);
  EXPECT_EQ(flaky_->commits.load(), commits) << "nothing was left to commit";
  EXPECT_EQ(Stored("f"), PatternBytes(100000, 32));
  EXPECT_TRUE(SpillFiles().empty());
}

// Read-ahead of a staged file reaches the object below for what is not staged.
TEST_F(StagingStoreTest, PrefetchPassesOnTheRangesThatAreNotStaged) {
  PutInStore("f", PatternBytes(400000, 34));
  auto file = OpenForWrite("f");
  ASSERT_TRUE(file->WriteAt(70000, PatternBytes(10, 35)).ok());  // stages block 1
  file->Prefetch(0, 300000);
  const auto ranges = flaky_->Prefetched();
  using Range = std::pair<uint64_t, uint64_t>;
  EXPECT_EQ(ranges, (std::vector<Range>{{0, 65536}, {131072, 300000 - 131072}}));
}

// Over a OneDrive-like store the commit is one conditional upload: no Stat to compare
// eTags first, and the If-Match refusal becomes the conflict copy.
TEST(StagingOverRemoteTest, CommitsAreConditionalUploadsAndARefusalIsAConflictCopy) {
  TempDir dir;
  auto remote = NewRemoteLikeStore(NewMemoryStore());
  RemoteLikeStore* below = remote.get();
  std::shared_ptr<RemoteLikeControls> controls = below->controls();
  SecretBytes key(kStagingKeySize);
  ASSERT_TRUE(FillRandom(std::span<uint8_t>(key.data(), key.size())).ok());
  auto opened = OpenStagingStore(
      std::move(remote), StagingOptions{.spill_dir = dir.path() + "/spill", .key = std::move(key)});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  StagingStore& staging = **opened;
  {
    auto file = staging.Open("a.stl", OpenOptions{.write = true, .create = true});
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->WriteAt(0, PatternBytes(5000, 36)).ok());
    controls->ResetCalls();
    ASSERT_TRUE((*file)->Commit({}).ok());
    EXPECT_EQ(controls->Calls(RemoteCall::kCommit), 1u);
    EXPECT_EQ(controls->Calls(RemoteCall::kStat), 0u) << "the eTag is checked by the upload";
    EXPECT_EQ(controls->Calls(RemoteCall::kDownload), 0u) << "a whole rewrite downloads nothing";

    ASSERT_TRUE((*file)->WriteAt(0, PatternBytes(10, 37)).ok());
    // Someone else uploads a new version meanwhile.
    ASSERT_TRUE(below->WriteAtomic("a.stl", PatternBytes(300, 38)).ok());
    ASSERT_TRUE((*file)->Commit({}).ok());
  }
  auto listed = below->List("");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ(*below->ReadSmall("a.stl", 1000), PatternBytes(300, 38)) << "theirs stays";
  std::string copy;
  for (const DirEntry& e : *listed) {
    if (e.name != "a.stl") copy = e.name;
  }
  EXPECT_TRUE(copy.starts_with("a (conflicted copy ")) << copy;
  Bytes ours = PatternBytes(5000, 36);
  const Bytes patch = PatternBytes(10, 37);
  std::copy(patch.begin(), patch.end(), ours.begin());
  EXPECT_EQ(*below->ReadSmall(copy, 10000), ours);
  EXPECT_EQ(staging.Drain(std::chrono::seconds(10)), 0u);
}

// cp -a sets the mtime after writing, before the upload that replaces the object: the
// times wait for the commit and go with it, through a handle or by path.
TEST(StagingOverRemoteTest, TimesSetWhileStagedGoWithTheCommit) {
  TempDir dir;
  auto remote = NewRemoteLikeStore(NewMemoryStore());
  RemoteLikeStore* below = remote.get();
  SecretBytes key(kStagingKeySize);
  ASSERT_TRUE(FillRandom(std::span<uint8_t>(key.data(), key.size())).ok());
  auto opened = OpenStagingStore(
      std::move(remote), StagingOptions{.spill_dir = dir.path() + "/spill", .key = std::move(key)});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  StagingStore& staging = **opened;
  const struct timespec by_handle[2] = {{0, UTIME_OMIT}, {1577934245, 0}};
  const struct timespec by_path[2] = {{0, UTIME_OMIT}, {1262304000, 0}};
  {
    auto file = staging.Open("a.stl", OpenOptions{.write = true, .create = true});
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->WriteAt(0, PatternBytes(5000, 40)).ok());
    ASSERT_TRUE((*file)->SetTimes(by_handle).ok());
    auto shown = staging.Stat("a.stl");
    ASSERT_TRUE(shown.ok());
    EXPECT_EQ(shown->mtime.tv_sec, 1577934245) << "the staged object shows the held mtime";
    ASSERT_TRUE((*file)->Commit({}).ok());
  }
  EXPECT_EQ(below->Stat("a.stl")->mtime.tv_sec, 1577934245);
  {
    auto file = staging.Open("b.stl", OpenOptions{.write = true, .create = true});
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->WriteAt(0, PatternBytes(5000, 41)).ok());
  }  // the last close queues the commit
  ASSERT_TRUE(staging.SetTimes("b.stl", by_path).ok());
  EXPECT_EQ(staging.Drain(std::chrono::seconds(10)), 0u);
  EXPECT_EQ(below->Stat("b.stl")->mtime.tv_sec, 1262304000);
}

TEST_F(StagingStoreTest, HeldTimesSurviveARestart) {
  auto file = OpenForWrite("f", /*create=*/true);
  flaky_->failures = 1000000;
  ASSERT_TRUE(file->WriteAt(0, PatternBytes(1000, 42)).ok());
  file.reset();  // journalled; its commit keeps failing
  const struct timespec times[2] = {{1262304000, 5}, {1577934245, 7}};
  ASSERT_TRUE(staging_->SetTimes("f", times).ok());
  Restart();  // this one commits
  EXPECT_EQ(staging_->Drain(std::chrono::seconds(10)), 0u);
  auto stored = memory_->Stat("f");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->mtime.tv_sec, 1577934245);
  EXPECT_EQ(stored->mtime.tv_nsec, 7);
  EXPECT_EQ(Stored("f"), PatternBytes(1000, 42));
}

// A store whose uploads resume as OneDrive's sessions do: the "service" keeps what each
// session received, a writer says where its upload stands (ResumeState), and a writer
// given that state continues it. A writer fails once when it reaches `fail_at`, keeping
// its session, as a dropped connection leaves one.
class ResumableUploadStore final : public testing::ForwardingStore {
 public:
  explicit ResumableUploadStore(Store& base) : ForwardingStore(base) {}

  StoreCapabilities capabilities() const override {
    StoreCapabilities caps = base().capabilities();
    caps.partial_writes = false;
    return caps;
  }
  Result<std::unique_ptr<StoreFile>> Open(std::string_view path,
                                          const OpenOptions& options) override {
    if (!options.write) return ForwardingStore::Open(path, options);
    if (open_failures > 0) {
      --open_failures;
      return Status::Error(Code::kRetryLater, "the service is away");
    }
    return std::unique_ptr<StoreFile>(std::make_unique<Writer>(*this, std::string(path)));
  }

  std::mutex mu;
  std::map<std::string, Bytes> sessions;  // GUARDED_BY(mu): what each session received
  uint64_t fail_at = UINT64_MAX;          // GUARDED_BY(mu)
  std::vector<uint64_t> resumed_from;     // GUARDED_BY(mu): where writers resumed
  int next_session = 0;                   // GUARDED_BY(mu)
  bool away_after_drop = false;           // GUARDED_BY(mu): the drop also makes Open fail
  std::atomic<int> open_failures{0};

 private:
  class Writer final : public WholeObjectFile {
   public:
    Writer(ResumableUploadStore& store, std::string path) : store_(store), path_(std::move(path)) {}
    Result<size_t> ReadAt(uint64_t, MutableByteSpan) override {
      return Status::Error(Code::kUnsupported, "an upload cannot be read back");
    }
    Status Truncate(uint64_t size) override {
      size_ = size;
      return Status::Ok();
    }
    Status WriteAt(uint64_t offset, ByteSpan data) override {
      std::lock_guard lock(store_.mu);
      if (session_.empty()) session_ = "s" + std::to_string(store_.next_session++);
      Bytes& received = store_.sessions[session_];
      if (offset != received.size()) return Status::Error(Code::kUnsupported, "out of order");
      if (offset + data.size() > store_.fail_at) {
        store_.fail_at = UINT64_MAX;
        if (store_.away_after_drop) store_.open_failures = 1000000;
        return Status::Error(Code::kIoError, "the connection dropped");
      }
      received.insert(received.end(), data.begin(), data.end());
      return Status::Ok();
    }
    std::string ResumeState() override {
      std::lock_guard lock(store_.mu);
      return session_.empty() ? "" : session_ + ":" + std::to_string(size_);
    }
    uint64_t ResumeUpload(std::string_view state) override {
      std::lock_guard lock(store_.mu);
      const size_t colon = state.find(':');
      const std::string id(state.substr(0, colon));
      auto it = store_.sessions.find(id);
      if (it == store_.sessions.end() || state.substr(colon + 1) != std::to_string(size_)) {
        return 0;
      }
      session_ = id;
      store_.resumed_from.push_back(it->second.size());
      return it->second.size();
    }
    Result<ObjectInfo> Commit(std::optional<std::string>) override {
      Bytes received;
      {
        std::lock_guard lock(store_.mu);
        received = std::move(store_.sessions[session_]);
        store_.sessions.erase(session_);
      }
      if (received.size() != size_) return Status::Error(Code::kIoError, "the upload is short");
      CADCANFS_RETURN_IF_ERROR(store_.base().WriteAtomic(path_, received));
      return store_.base().Stat(path_);
    }
    Status Checkpoint() override { return Status::Ok(); }
    Status Abort() override { return Status::Ok(); }
    Result<uint64_t> Size() override { return size_; }
    Result<ObjectInfo> Stat() override { return store_.base().Stat(path_); }
    Status SetTimes(const struct timespec[2]) override { return Status::Ok(); }

   private:
    ResumableUploadStore& store_;
    const std::string path_;
    uint64_t size_ = 0;
    std::string session_;
  };
};

class ResumedUploadTest : public ::testing::Test {
 protected:
  ResumedUploadTest() : memory_(NewMemoryStore()), uploads_(*memory_), key_(kStagingKeySize) {
    EXPECT_TRUE(FillRandom(key_).ok());
    Restart();
  }
  void Restart() {
    staging_.reset();
    auto opened =
        OpenStagingStore(std::make_unique<testing::ForwardingStore>(static_cast<Store&>(uploads_)),
                         StagingOptions{.spill_dir = dir_.path() + "/spill",
                                        .key = SecretBytes::CopyOf(key_),
                                        .first_retry = std::chrono::milliseconds(5),
                                        .longest_retry = std::chrono::milliseconds(20)});
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    staging_ = std::move(opened).value();
  }
  void WriteAndClose(const std::string& path, const Bytes& content) {
    auto file = staging_->Open(path, OpenOptions{.write = true, .create = true});
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->WriteAt(0, content).ok());
  }
  std::vector<uint64_t> ResumedFrom() {
    std::lock_guard lock(uploads_.mu);
    return uploads_.resumed_from;
  }

  TempDir dir_;
  std::unique_ptr<Store> memory_;
  ResumableUploadStore uploads_;
  Bytes key_;
  std::unique_ptr<StagingStore> staging_;
};

TEST_F(ResumedUploadTest, ADroppedUploadContinuesWhereItStopped) {
  const Bytes content = PatternBytes(3 << 20, 50);
  {
    std::lock_guard lock(uploads_.mu);
    uploads_.fail_at = 1500000;
  }
  WriteAndClose("scan.stl", content);
  EXPECT_EQ(staging_->Drain(std::chrono::seconds(10)), 0u);
  EXPECT_EQ(*memory_->ReadSmall("scan.stl", 4 << 20), content);
  const std::vector<uint64_t> resumed = ResumedFrom();
  ASSERT_EQ(resumed.size(), 1u) << "the retry resumed the upload";
  EXPECT_GT(resumed[0], 1000000u);
  EXPECT_LE(resumed[0], 1500000u);
}

TEST_F(ResumedUploadTest, AJournalledUploadResumesAfterARestart) {
  const Bytes content = PatternBytes(3 << 20, 51);
  {
    // The first attempt stops at 2 MB; every later one finds the service away, until
    // the process is gone.
    std::lock_guard lock(uploads_.mu);
    uploads_.fail_at = 2000000;
    uploads_.away_after_drop = true;
  }
  WriteAndClose("scan.stl", content);  // the last close journals and queues the commit
  for (int i = 0; i < 5000 && uploads_.open_failures == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_GT(uploads_.open_failures, 0) << "the first attempt dropped";
  EXPECT_EQ(staging_->Drain(std::chrono::milliseconds(50)), 1u);
  Restart();  // the journal says where the upload stood
  uploads_.open_failures = 0;
  EXPECT_EQ(staging_->Drain(std::chrono::seconds(10)), 0u);
  EXPECT_EQ(*memory_->ReadSmall("scan.stl", 4 << 20), content);
  const std::vector<uint64_t> resumed = ResumedFrom();
  ASSERT_FALSE(resumed.empty());
  EXPECT_GT(resumed.back(), 1000000u) << "the restart resumed the upload";
}

TEST_F(StagingStoreTest, TruncateOnOpenStagesAnEmptyObject) {
  PutInStore("f", PatternBytes(200000, 39));
  auto file = staging_->Open("f", OpenOptions{.write = true, .truncate = true});
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(*(*file)->Size(), 0u);
  EXPECT_EQ(staging_->Stat("f")->size, 0u);
  ASSERT_TRUE((*file)->WriteAt(0, PatternBytes(100, 40)).ok());
  ASSERT_TRUE((*file)->Commit({}).ok());
  EXPECT_EQ(Stored("f"), PatternBytes(100, 40));
}

TEST(PlainConflictNameTest, KeepsTheExtensionAndTheDirectory) {
  const std::string name = PlainConflictName("a/b/report.final.pdf");
  EXPECT_TRUE(name.starts_with("a/b/report.final (conflicted copy 20")) << name;
  EXPECT_TRUE(name.ends_with(").pdf")) << name;
  EXPECT_TRUE(PlainConflictName(".bashrc").starts_with(".bashrc (conflicted copy "));
}

TEST(StagingStoreOpenTest, TheSpillDirectoryMustBePrivate) {
  TempDir dir;
  const std::string spill = dir.path() + "/spill";
  ASSERT_EQ(mkdir(spill.c_str(), 0755), 0);
  SecretBytes key(kStagingKeySize);
  auto opened =
      OpenStagingStore(NewMemoryStore(), StagingOptions{.spill_dir = spill, .key = std::move(key)});
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Code::kPermissionDenied);
  SecretBytes short_key(16);
  opened = OpenStagingStore(NewMemoryStore(), StagingOptions{.spill_dir = dir.path() + "/other",
                                                             .key = std::move(short_key)});
  EXPECT_EQ(opened.status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace cadcanfs
