// Issue 12, item 6: ReadSmall (config, directory ids, sidecars) opened without
// O_NONBLOCK and without checking the type, so a FIFO planted in the vault hung `info`,
// `fsck` and mount workers forever. Each call here runs with a deadline: on a hang the
// test opens the FIFO's other end to release the call, and fails instead of hanging.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <future>

#include "cadcanfs/fs/offline.h"
#include "cadcanfs/store/local_store.h"
#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

using testing::TempVault;

// Runs `call` and returns its status, or fails the test if it does not return within
// a few seconds (then unblocks it by opening `fifo` for writing).
Status WithDeadline(const std::string& fifo, std::function<Status()> call) {
  auto future = std::async(std::launch::async, std::move(call));
  if (future.wait_for(std::chrono::seconds(5)) == std::future_status::ready) return future.get();
  ADD_FAILURE() << "the call blocked on a FIFO";
  for (int i = 0; i < 100; ++i) {
    int fd = open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) {
      close(fd);
      break;
    }
    usleep(10000);
  }
  future.wait();
  return Status::Error(Code::kInternal, "hung");
}

void ReplaceWithFifo(const std::string& path) {
  ASSERT_EQ(unlink(path.c_str()), 0);
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
}

void ExpectNotRegular(const Status& s) {
  EXPECT_EQ(s.code(), Code::kCorrupt) << s.ToString();
  EXPECT_NE(s.message().find("not a regular file"), std::string::npos) << s.ToString();
}

TEST(Issue12Item06Test, FifoInPlaceOfTheConfig) {
  TempVault tv;
  std::string fifo = tv.root() + "/" + kConfigFileName;
  ReplaceWithFifo(fifo);
  auto store = OpenLocalStore(tv.root());
  ASSERT_TRUE(store.ok());
  ExpectNotRegular(WithDeadline(fifo, [&] { return Vault::ReadConfig(**store).status(); }));
}

TEST(Issue12Item06Test, FifoInPlaceOfADirectoryId) {
  TempVault tv;
  auto root = tv.vault().ReadDirId("");
  auto name = tv.vault().EncryptName(*root, "Doe, Jane");
  ASSERT_TRUE(tv.vault().MakeDirectory(name->stored, 0700).ok());
  std::string fifo = tv.root() + "/" + name->stored + "/" + kDirIdFileName;
  ReplaceWithFifo(fifo);
  ExpectNotRegular(WithDeadline(fifo, [&] { return tv.vault().ReadDirId(name->stored).status(); }));
  // fsck reports it as damage and goes on.
  FsckReport report;
  Status s = WithDeadline(fifo, [&] {
    report = CheckVault(tv.vault());
    return Status::Ok();
  });
  EXPECT_TRUE(s.ok());
  ASSERT_EQ(report.problems.size(), 1u);
  ExpectNotRegular(report.problems[0].status);
}

TEST(Issue12Item06Test, FifoInPlaceOfALongNameSidecar) {
  TempVault tv;
  std::string stored = tv.CreateFile(std::string(200, 'L'), testing::PatternBytes(10, 1));
  std::string fifo = tv.root() + "/" + SidecarName(stored);
  ReplaceWithFifo(fifo);
  auto root = tv.vault().ReadDirId("");
  Status s =
      WithDeadline(fifo, [&] { return tv.vault().DecryptStoredName("", *root, stored).status(); });
  EXPECT_FALSE(s.ok());
  auto direct = WithDeadline(
      fifo, [&] { return tv.vault().store().ReadSmall(SidecarName(stored), 4096).status(); });
  ExpectNotRegular(direct);
}

TEST(Issue12Item06Test, OpeningAFifoAsAFileDoesNotBlock) {
  TempVault tv;
  std::string stored = tv.CreateFile("scan.stl", testing::PatternBytes(10, 1));
  std::string fifo = tv.root() + "/" + stored;
  ReplaceWithFifo(fifo);
  ExpectNotRegular(WithDeadline(fifo, [&] { return tv.vault().OpenFile(stored, false).status(); }));
  ExpectNotRegular(WithDeadline(fifo, [&] {
    return tv.vault().store().Open(stored, OpenOptions{.write = true, .create = true}).status();
  }));
}

}  // namespace
}  // namespace cadcanfs
