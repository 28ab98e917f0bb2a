// Issue 12, item 3: a process that dies in the middle of a write, truncate or fallocate
// must never lose a byte that was durable before the operation began.
//
// A CrashStore lets the first N-1 changing store calls of one operation through and
// then stops: every later call fails without touching the store, as if the process had
// died right there. For every N up to the number of calls the operation makes, the
// file is then opened afresh from what the store holds and checked: the durable bytes
// read back exactly, and the size is the old one or the new one.
#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <string>

#include "cadcanfs/fs/encrypted_file.h"
#include "testing/forwarding_store.h"
#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

using testing::PatternBytes;
using testing::TempVault;

// Counts the calls that change stored bytes; from call `stop_at` on, all of them fail.
struct CrashPlan {
  uint64_t stop_at = 0;  // 0: never stop
  uint64_t calls = 0;
  bool only_one = false;  // fail just call `stop_at` (an I/O error the process survives)

  bool Allow() {
    ++calls;
    if (stop_at == 0 || calls < stop_at) return true;
    return only_one && calls > stop_at;
  }
};

Status Crashed() { return Status::Error(Code::kIoError, "simulated crash", EIO); }

class CrashFile final : public testing::ForwardingStoreFile {
 public:
  CrashFile(std::unique_ptr<StoreFile> base, CrashPlan& plan)
      : ForwardingStoreFile(std::move(base)), plan_(plan) {}
  Status WriteAt(uint64_t offset, ByteSpan data) override {
    return plan_.Allow() ? base().WriteAt(offset, data) : Crashed();
  }
  Status Truncate(uint64_t size) override {
    return plan_.Allow() ? base().Truncate(size) : Crashed();
  }
  Status Reserve(uint64_t offset, uint64_t length) override {
    return plan_.Allow() ? base().Reserve(offset, length) : Crashed();
  }
  Result<ObjectInfo> Commit(std::optional<std::string> if_match_etag) override {
    if (!plan_.Allow()) return Crashed();
    return base().Commit(std::move(if_match_etag));
  }

 private:
  CrashPlan& plan_;
};

class CrashStore final : public testing::ForwardingStore {
 public:
  CrashStore(Store& base, CrashPlan& plan) : ForwardingStore(base), plan_(plan) {}
  Result<std::unique_ptr<StoreFile>> Open(std::string_view path,
                                          const OpenOptions& options) override {
    CADCANFS_ASSIGN_OR_RETURN(auto file, ForwardingStore::Open(path, options));
    return std::unique_ptr<StoreFile>(std::make_unique<CrashFile>(std::move(file), plan_));
  }

 private:
  CrashPlan& plan_;
};

struct Operation {
  std::string name;
  // Runs on the file; returns the size the file has once the operation completed.
  std::function<uint64_t(EncryptedFile&, uint64_t old_size)> run;
  // Plaintext bytes [0, durable) must survive any crash unchanged.
  std::function<uint64_t(uint64_t old_size)> durable;
};

class CrashSafeResizeTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  CrashSafeResizeTest() : vault_(GetParam()) {}
  uint64_t block() const { return GetParam(); }

  std::vector<Operation> Operations() {
    const uint64_t b = block();
    auto write_at = [](uint64_t offset, uint64_t length, uint32_t seed) {
      return [=](EncryptedFile& f, uint64_t old_size) {
        (void)f.Write(offset, PatternBytes(length, seed));
        return std::max(old_size, offset + length);
      };
    };
    auto append = [](uint64_t length) {
      return [=](EncryptedFile& f, uint64_t old_size) {
        (void)f.Write(old_size, PatternBytes(length, 99));
        return old_size + length;
      };
    };
    auto truncate = [](uint64_t size) {
      return [=](EncryptedFile& f, uint64_t) {
        (void)f.Truncate(size);
        return size;
      };
    };
    auto all = [](uint64_t old_size) { return old_size; };
    return {
        {"append within the last block", append(10), all},
        {"append across a block edge", append(b), all},
        {"append many blocks", append(40 * b + 5), all},
        {"write far past the end", write_at(9 * b + 7, 100, 3), all},
        {"rewrite the last block's tail and grow", write_at(2 * b + b / 4, b, 4),
         [=](uint64_t) { return 2 * b + b / 4; }},
        {"rewrite inside the last block", write_at(2 * b + 1, 5, 5),
         [=](uint64_t) { return 2 * b + 1; }},
        {"shrink inside the last block", truncate(2 * b + 3), [=](uint64_t) { return 2 * b + 3; }},
        {"shrink to a block edge", truncate(2 * b), [=](uint64_t) { return 2 * b; }},
        {"shrink inside an earlier block", truncate(b / 3), [=](uint64_t) { return b / 3; }},
        {"shrink to empty", truncate(0), [](uint64_t) { return 0; }},
        {"grow by truncate", truncate(7 * b + 1), all},
        {"fallocate past the end",
         [=](EncryptedFile& f, uint64_t old_size) {
           (void)f.Allocate(old_size - 1, 3 * b, false);
           return old_size - 1 + 3 * b;
         },
         all},
    };
  }

  struct Death {
    bool completed = false;  // the operation made all its calls before the death
    uint64_t new_size = 0;   // the size it gives the file once complete
  };

  // Writes `content` as a durable file `name`, runs `op` on it and lets the process
  // "die" at the operation's store call `stop_at`. Returns the file's store path.
  std::string CrashDuring(const Operation& op, const Bytes& content, uint64_t stop_at,
                          Death& death) {
    const std::string path = vault_.CreateFile("f", content);
    {
      auto durable = vault_.vault().OpenFile(path, true);
      EXPECT_TRUE(durable.ok() && (*durable)->Sync().ok());
    }
    CrashPlan plan{.stop_at = stop_at};
    CrashStore crashing(vault_.vault().store(), plan);
    {
      auto file = EncryptedFile::Open(crashing, path, true, vault_.vault().masters(),
                                      vault_.vault().layout());
      EXPECT_TRUE(file.ok()) << file.status().ToString();
      if (!file.ok()) return path;
      plan.calls = 0;  // count only the operation's own calls
      death.new_size = op.run(**file, content.size());
    }  // the process "dies": nothing more reaches the store
    death.completed = plan.calls < stop_at;
    return path;
  }

  TempVault vault_;
};

TEST_P(CrashSafeResizeTest, DurableBytesSurviveADeathAfterEveryStoreCall) {
  const uint64_t old_sizes[] = {2 * block() + block() / 2, 3 * block()};
  for (const Operation& op : Operations()) {
    for (uint64_t old_size : old_sizes) {
      const Bytes content = PatternBytes(old_size, static_cast<uint32_t>(old_size));
      for (uint64_t stop_at = 1;; ++stop_at) {
        SCOPED_TRACE(op.name + ", old size " + std::to_string(old_size) + ", death at call " +
                     std::to_string(stop_at));
        Death death;
        const std::string path = CrashDuring(op, content, stop_at, death);
        const auto [completed, new_size] = death;

        auto reopened = vault_.vault().OpenFile(path, true);
        ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
        const uint64_t size = (*reopened)->size();
        EXPECT_TRUE(size == old_size || size == new_size)
            << "size " << size << " is neither " << old_size << " nor " << new_size;
        if (completed) {
          EXPECT_EQ(size, new_size);
        }
        const uint64_t keep = std::min(op.durable(old_size), size);
        Bytes back(keep);
        auto n = (*reopened)->Read(0, back);
        ASSERT_TRUE(n.ok()) << n.status().ToString();
        ASSERT_EQ(*n, keep);
        EXPECT_TRUE(std::equal(back.begin(), back.end(), content.begin()));
        // The file goes on working: a whole rewrite reads back.
        const Bytes fresh = PatternBytes(block() + 3, 42);
        ASSERT_TRUE((*reopened)->Truncate(0).ok());
        ASSERT_TRUE((*reopened)->Write(0, fresh).ok());
        reopened->reset();
        ASSERT_EQ(*vault_.ReadAll(path), fresh);
        ASSERT_TRUE(vault_.vault().store().Remove(path).ok());
        if (completed) break;
      }
    }
  }
}

// After a death, the length of the stored object may imply a size the file does not
// hold together at (a growing write dies before it re-seals the old last block). A
// stat derives the size from that length, so until the file is settled, `ls -l` says
// one size and reads deliver another. The next writer settles every such file first
// (the vault lock tells it the last one died); from then on the two agree.
TEST_P(CrashSafeResizeTest, AfterSettlingTheStoredLengthGivesTheSizeReadsDeliver) {
  const uint64_t old_size = 2 * block() + block() / 2;
  const Bytes content = PatternBytes(old_size, 5);
  const BlockLayout layout = vault_.vault().layout();
  auto size_by_length = [&](const std::string& path) -> std::optional<uint64_t> {
    auto info = vault_.vault().store().Stat(path);
    if (!info.ok()) return std::nullopt;
    auto size = layout.PlainSizeOfCipherSize(info->size);
    return size.ok() ? std::optional<uint64_t>(*size) : std::nullopt;
  };
  auto size_by_reading = [&](const std::string& path) -> uint64_t {
    auto file = vault_.vault().OpenFile(path, false);
    return file.ok() ? (*file)->size() : ~uint64_t{0};
  };
  uint64_t disagreed_before = 0;
  for (const Operation& op : Operations()) {
    for (uint64_t stop_at = 1;; ++stop_at) {
      SCOPED_TRACE(op.name + ", death at call " + std::to_string(stop_at));
      Death death;
      const std::string path = CrashDuring(op, content, stop_at, death);
      if (size_by_length(path) != size_by_reading(path)) ++disagreed_before;
      ASSERT_TRUE(vault_.vault().SettleInterruptedWrites(timespec{}).ok());
      EXPECT_EQ(size_by_length(path), size_by_reading(path));
      ASSERT_TRUE(vault_.vault().store().Remove(path).ok());
      if (death.completed) break;
    }
  }
  // The sweep does reach the states this is about.
  EXPECT_GT(disagreed_before, 0u);
}

// Files changed before the dead session began are not even opened.
TEST_P(CrashSafeResizeTest, SettlingLooksOnlyAtFilesChangedSinceTheSessionBegan) {
  const Bytes content = PatternBytes(2 * block() + 7, 6);
  Death death;
  const std::string path =
      CrashDuring(Operations().front(), content, /*stop_at=*/3, death);  // torn append
  ASSERT_FALSE(death.completed);
  const uint64_t before = vault_.vault().store().Stat(path)->size;
  timespec future{};
  future.tv_sec = time(nullptr) + 2 * 24 * 3600;
  auto settled = vault_.vault().SettleInterruptedWrites(future);
  ASSERT_TRUE(settled.ok());
  EXPECT_EQ(*settled, 0u);
  EXPECT_EQ(vault_.vault().store().Stat(path)->size, before);
  settled = vault_.vault().SettleInterruptedWrites(timespec{});
  ASSERT_TRUE(settled.ok());
  EXPECT_EQ(*settled, 1u);
}

// An I/O error the process survives, at every call: the operation reports it, the
// file object keeps its old size, and a reopen reads the old content exactly.
TEST_P(CrashSafeResizeTest, AFailedCallLeavesTheOldFile) {
  const uint64_t old_size = 2 * block() + block() / 2;
  const Bytes content = PatternBytes(old_size, 11);
  for (const Operation& op : Operations()) {
    for (uint64_t fail_at = 1;; ++fail_at) {
      SCOPED_TRACE(op.name + ", failure at call " + std::to_string(fail_at));
      const std::string path = vault_.CreateFile("g", content);
      CrashPlan plan{.stop_at = fail_at, .only_one = true};
      CrashStore failing(vault_.vault().store(), plan);
      auto file = EncryptedFile::Open(failing, path, true, vault_.vault().masters(),
                                      vault_.vault().layout());
      ASSERT_TRUE(file.ok());
      plan.calls = 0;
      const uint64_t new_size = op.run(**file, old_size);
      const bool completed = plan.calls < fail_at;
      const uint64_t size = (*file)->size();
      EXPECT_TRUE(size == old_size || size == new_size);
      file->reset();
      auto back = vault_.ReadAll(path);
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      const uint64_t keep = std::min(op.durable(old_size), back->size());
      EXPECT_TRUE(std::equal(back->begin(), back->begin() + keep, content.begin()));
      ASSERT_TRUE(vault_.vault().store().Remove(path).ok());
      if (completed) break;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, CrashSafeResizeTest, ::testing::Values(4096u, 32768u));

}  // namespace
}  // namespace cadcanfs
