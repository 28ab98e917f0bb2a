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
