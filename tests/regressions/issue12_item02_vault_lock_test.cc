// Issue 12, item 2: a rekey under a live mount lost files, because nothing kept two
// writers off one vault. VaultLock is the single-writer lock; these tests pin down that
// a second holder in another process is refused with the holder's pid, that the lock
// dies with its holder (SIGKILL included) although the file stays, and that a lock
// file planted as a symlink, FIFO or hard link cannot be abused.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "cadcanfs/fs/vault_lock.h"
#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

using testing::ReadRaw;
using testing::TempDir;
using testing::WriteRaw;

std::string LockPath(const TempDir& dir) { return dir.path() + "/cadcanfs.lock"; }

std::string ReadAllFrom(int fd) {
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

// Tries the lock in a child process; returns "OK", or "<code name>: <message>".
std::string AcquireInChild(const std::string& root) {
  int fds[2];
  if (pipe(fds) != 0) return "pipe failed";
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    auto lock = VaultLock::Acquire(root);
    std::string out = lock.ok() ? "OK" : lock.status().ToString();
    (void)!write(fds[1], out.data(), out.size());
    _exit(0);
  }
  close(fds[1]);
  std::string out = ReadAllFrom(fds[0]);
  close(fds[0]);
  waitpid(pid, nullptr, 0);
  return out;
}

// A child that takes the lock and holds it until killed.
class Holder {
 public:
  explicit Holder(const std::string& root) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    pid_ = fork();
    if (pid_ == 0) {
      close(fds[0]);
      auto lock = VaultLock::Acquire(root);
      char state = lock.ok() ? 'L' : 'E';
      (void)!write(fds[1], &state, 1);
      close(fds[1]);
      for (;;) pause();
    }
    close(fds[1]);
    char state = 0;
    EXPECT_EQ(read(fds[0], &state, 1), 1);
    close(fds[0]);
    locked_ = state == 'L';
  }
  ~Holder() {
    if (pid_ > 0) Kill();
  }
  void Kill() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  pid_t pid() const { return pid_; }
  bool locked() const { return locked_; }

 private:
  pid_t pid_ = -1;
  bool locked_ = false;
};

std::string InUseBy(pid_t pid) {
  return std::string(CodeName(Code::kBusy)) + ": the vault is in use by pid " +
         std::to_string(pid) + ": unmount it first";
}

TEST(Issue12Item02VaultLock, ASecondWriterInAnotherProcessIsRefusedWithTheHoldersPid) {
  TempDir vault;
  auto lock = VaultLock::Acquire(vault.path());
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  EXPECT_EQ(AcquireInChild(vault.path()), InUseBy(getpid()));
  // flock belongs to the open file: even this process cannot take it twice.
  auto again = VaultLock::Acquire(vault.path());
  EXPECT_EQ(again.status().code(), Code::kBusy);
  struct stat st;
  ASSERT_EQ(lstat(LockPath(vault).c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST(Issue12Item02VaultLock, ReleasedWhenTheOwnerGoesAway) {
  TempDir vault;
  {
    auto lock = VaultLock::Acquire(vault.path());
    ASSERT_TRUE(lock.ok());
    VaultLock moved = std::move(lock).value();
    EXPECT_NE(AcquireInChild(vault.path()), "OK");
  }
  EXPECT_EQ(AcquireInChild(vault.path()), "OK");
}

TEST(Issue12Item02VaultLock, AHolderKilledWithSigkillLeavesItsFileButNoLock) {
  TempDir vault;
  Holder holder(vault.path());
  ASSERT_TRUE(holder.locked());
  const pid_t dead = holder.pid();
  EXPECT_EQ(AcquireInChild(vault.path()), InUseBy(dead));
  holder.Kill();
  // The stale file still names the dead holder...
  Bytes stale = ReadRaw(LockPath(vault));
  EXPECT_EQ(std::string(stale.begin(), stale.end()), std::to_string(dead) + "\n");
  // ...and blocks nobody.
  auto lock = VaultLock::Acquire(vault.path());
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  Bytes now = ReadRaw(LockPath(vault));
  EXPECT_EQ(std::string(now.begin(), now.end()), std::to_string(getpid()) + "\n");
  EXPECT_EQ(AcquireInChild(vault.path()), InUseBy(getpid()));
}

// The lock also tells the next writer whether its predecessor let go cleanly: a writer
// that died holding it may have left resizes half done (Vault::SettleInterruptedWrites).
TEST(Issue12Item02VaultLock, ACleanReleaseLeavesNoMarkOfAnInterruptedSession) {
  TempDir vault;
  { ASSERT_TRUE(VaultLock::Acquire(vault.path()).ok()); }
  EXPECT_TRUE(ReadRaw(LockPath(vault)).empty());
  auto lock = VaultLock::Acquire(vault.path());
  ASSERT_TRUE(lock.ok());
  EXPECT_FALSE(lock->interrupted_session_start().has_value());
}

TEST(Issue12Item02VaultLock, AHolderKilledWithSigkillLeavesTheStartOfItsSession) {
  TempDir vault;
  Holder holder(vault.path());
  ASSERT_TRUE(holder.locked());
  struct stat before;
  ASSERT_EQ(stat(LockPath(vault).c_str(), &before), 0);
  holder.Kill();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a later clock reading
  {
    auto lock = VaultLock::Acquire(vault.path());
    ASSERT_TRUE(lock.ok());
    ASSERT_TRUE(lock->interrupted_session_start().has_value());
    EXPECT_EQ(lock->interrupted_session_start()->tv_sec, before.st_mtim.tv_sec);
    EXPECT_EQ(lock->interrupted_session_start()->tv_nsec, before.st_mtim.tv_nsec);
    // Not marked recovered (a read-only holder settles nothing): the mark must stay,
    // still dated from the dead session, for the next writer.
  }
  {
    auto lock = VaultLock::Acquire(vault.path());
    ASSERT_TRUE(lock.ok());
    ASSERT_TRUE(lock->interrupted_session_start().has_value());
    EXPECT_EQ(lock->interrupted_session_start()->tv_nsec, before.st_mtim.tv_nsec);
    lock->MarkRecovered();
    EXPECT_FALSE(lock->interrupted_session_start().has_value());
  }
  auto lock = VaultLock::Acquire(vault.path());
  ASSERT_TRUE(lock.ok());
  EXPECT_FALSE(lock->interrupted_session_start().has_value());
}

// `cadcanfs unmount` returns before the daemon has exited: a writer that follows at
// once waits for it rather than fail.
TEST(Issue12Item02VaultLock, PatienceOutlastsAHolderThatIsGoingAway) {
  TempDir vault;
  Holder holder(vault.path());
  ASSERT_TRUE(holder.locked());
  EXPECT_EQ(VaultLock::Acquire(vault.path(), std::chrono::milliseconds(100)).status().code(),
            Code::kBusy);
  std::thread killer([&holder] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    holder.Kill();
  });
  auto lock = VaultLock::Acquire(vault.path(), std::chrono::seconds(5));
  killer.join();
  EXPECT_TRUE(lock.ok()) << lock.status().ToString();
}

TEST(Issue12Item02VaultLock, TheFileContentDoesNotLock) {
  TempDir vault;
  // A lock file naming a live process (init) that does not hold the lock.
  WriteRaw(LockPath(vault), Bytes{'1', '\n'});
  auto lock = VaultLock::Acquire(vault.path());
  EXPECT_TRUE(lock.ok()) << lock.status().ToString();
}

TEST(Issue12Item02VaultLock, APlantedSymlinkIsNotFollowed) {
  TempDir vault;
  TempDir elsewhere;
  std::string target = elsewhere.path() + "/victim";
  ASSERT_EQ(symlink(target.c_str(), LockPath(vault).c_str()), 0);
  auto lock = VaultLock::Acquire(vault.path());
  EXPECT_FALSE(lock.ok());
  EXPECT_NE(lock.status().code(), Code::kBusy);
  struct stat st;
  EXPECT_NE(lstat(target.c_str(), &st), 0) << "the symlink was followed";
}

TEST(Issue12Item02VaultLock, APlantedFifoIsRefusedWithoutHanging) {
  TempDir vault;
  ASSERT_EQ(mkfifo(LockPath(vault).c_str(), 0600), 0);
  auto lock = VaultLock::Acquire(vault.path());
  EXPECT_FALSE(lock.ok());
  EXPECT_EQ(lock.status().code(), Code::kCorrupt);
}

TEST(Issue12Item02VaultLock, AHardLinkedLockFileLocksButIsNotWritten) {
  TempDir vault;
  TempDir elsewhere;
  std::string victim = elsewhere.path() + "/victim";
  Bytes precious = {'p', 'r', 'e', 'c', 'i', 'o', 'u', 's'};
  WriteRaw(victim, precious);
  ASSERT_EQ(link(victim.c_str(), LockPath(vault).c_str()), 0);
  auto lock = VaultLock::Acquire(vault.path());
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  EXPECT_EQ(ReadRaw(victim), precious);
  EXPECT_NE(AcquireInChild(vault.path()), "OK");
}

}  // namespace
}  // namespace cadcanfs
