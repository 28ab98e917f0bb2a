#include "cadcanfs/fs/vault_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "cadcanfs/vault/names.h"

namespace cadcanfs {

namespace {

// Closes a descriptor on every early return.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

constexpr int kPidReadAttempts = 50;
constexpr long kPidRetryNanos = 10 * 1000 * 1000;  // 10 ms, so at most half a second
constexpr long kLockRetryNanos = 50 * 1000 * 1000;

Status NotARegularFile() {
  return Status::Error(Code::kCorrupt,
                       "the vault lock file is not a regular file: remove cadcanfs.lock from "
                       "the vault root while nothing uses the vault");
}

// The pid recorded in the lock file, if it is a complete line ("123\n") naming a live
// process. An older holder's longer pid may follow the first newline; it is ignored.
std::optional<pid_t> ReadLivePid(int fd) {
  char buf[32];
  ssize_t n = pread(fd, buf, sizeof(buf), 0);
  if (n <= 0) return std::nullopt;
  long long pid = 0;
  ssize_t i = 0;
  for (; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) {
    pid = pid * 10 + (buf[i] - '0');
    if (pid > 0x7fffffff) return std::nullopt;
  }
  if (i == 0 || i == n || buf[i] != '\n' || pid <= 0) return std::nullopt;
  if (kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM) return std::nullopt;
  return static_cast<pid_t>(pid);
}

// The holder writes its pid just after it locks, so a writer refused in between
// finds the file empty or naming a dead earlier holder: it waits briefly for the
// real pid, and names no pid rather than a wrong one.
Status InUse(int fd) {
  for (int attempt = 0; attempt < kPidReadAttempts; ++attempt) {
    if (std::optional<pid_t> pid = ReadLivePid(fd)) {
      return Status::Error(
          Code::kBusy, "the vault is in use by pid " + std::to_string(*pid) + ": unmount it first");
    }
    struct timespec pause = {0, kPidRetryNanos};
    nanosleep(&pause, nullptr);
  }
  return Status::Error(Code::kBusy, "the vault is in use by another process: unmount it first");
}

// Best effort: the pid improves the refusal message and marks the session open (see
// the header), so it is made durable; a failed write only costs those two.
void RecordPid(int fd) {
  std::string line = std::to_string(getpid()) + "\n";
  if (pwrite(fd, line.data(), line.size(), 0) == static_cast<ssize_t>(line.size())) {
    (void)!ftruncate(fd, static_cast<off_t>(line.size()));
    (void)fdatasync(fd);
  }
}

// Called with the lock held, before our own pid goes in: a non-empty file is the mark
// of a holder that never released the lock cleanly.
std::optional<struct timespec> InterruptedSessionStart(const struct stat& lock_file) {
  if (lock_file.st_size == 0) return std::nullopt;
  return lock_file.st_mtim;
}

// The local lock: an flock held through an open descriptor of the lock file.
class FlockHolder : public VaultLock::Holder {
 public:
  FlockHolder(int fd, bool writable) : fd_(fd), writable_(writable) {}
  ~FlockHolder() override {
    if (fd_ >= 0) close(fd_);
  }
  FlockHolder(const FlockHolder&) = delete;
  FlockHolder& operator=(const FlockHolder&) = delete;

  // Should this session die too, only what it changes needs settling.
  void MarkRecovered() override {
    if (fd_ >= 0 && writable_) (void)futimens(fd_, nullptr);
  }

  // Emptying the file marks the release clean; closing the last descriptor of the
  // open file description releases the flock.
  void Release(bool clean) override {
    if (fd_ < 0) return;
    if (writable_ && clean) (void)!ftruncate(fd_, 0);
    close(std::exchange(fd_, -1));
  }

 private:
  int fd_;
  bool writable_;
};

}  // namespace

Result<VaultLock> VaultLock::Acquire(const std::string& vault_root,
                                     std::chrono::milliseconds patience) {
  ScopedFd dir(open(vault_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0) return Status::FromErrno(errno, "cannot open the vault directory");
  // Refuse a planted FIFO or device before opening it: opening a device can have
  // side effects. O_NOFOLLOW and the fstat below close the remaining race.
  struct stat st;
  if (fstatat(dir.get(), kLockFileName, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode)) {
    return NotARegularFile();
  }
  bool writable = true;
  int fd = openat(dir.get(), kLockFileName, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK,
                  0600);
  if (fd < 0 && (errno == EROFS || errno == EACCES)) {
    // flock needs no write access: an existing lock file on a read-only filesystem,
    // or one created by another user, still locks; it just cannot name us.
    int saved = errno;
    fd = openat(dir.get(), kLockFileName, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) errno = saved;
    writable = false;
  }
  if (fd < 0) {
    if (errno == ELOOP) return NotARegularFile();
    return Status::FromErrno(errno, "cannot open the vault lock file");
  }
  ScopedFd file(fd);
  if (fstat(file.get(), &st) != 0)
    return Status::FromErrno(errno, "cannot stat the vault lock file");
  if (!S_ISREG(st.st_mode)) return NotARegularFile();
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (flock(file.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return Status::FromErrno(errno, "cannot lock the vault");
    if (std::chrono::steady_clock::now() >= deadline) return InUse(file.get());
    struct timespec pause = {0, kLockRetryNanos};
    nanosleep(&pause, nullptr);
  }
  // The state as the previous holder left it, now that it cannot change under us.
  if (fstat(file.get(), &st) != 0)
    return Status::FromErrno(errno, "cannot stat the vault lock file");
  std::optional<struct timespec> interrupted = InterruptedSessionStart(st);
  // A lock file with other links may be a hard link planted to a file elsewhere;
  // locking it is harmless, writing into it is not.
  writable = writable && st.st_nlink == 1;
  if (writable) {
    RecordPid(file.get());
    // Keep the interrupted session's start: it bounds what needs settling.
    if (interrupted) {
      const struct timespec times[2] = {{0, UTIME_OMIT}, *interrupted};
      (void)futimens(file.get(), times);
    }
  }
  return VaultLock(std::make_unique<FlockHolder>(file.release(), writable), interrupted);
}

VaultLock::VaultLock(VaultLock&& other) noexcept
    : holder_(std::move(other.holder_)),
      interrupted_session_start_(other.interrupted_session_start_) {}

VaultLock& VaultLock::operator=(VaultLock&& other) noexcept {
  if (this != &other) {
    Release();
    holder_ = std::move(other.holder_);
    interrupted_session_start_ = other.interrupted_session_start_;
  }
  return *this;
}

VaultLock::~VaultLock() { Release(); }

void VaultLock::MarkRecovered() {
  interrupted_session_start_.reset();
  if (holder_) holder_->MarkRecovered();
}

void VaultLock::Release() {
  if (!holder_) return;
  holder_->Release(/*clean=*/!interrupted_session_start_);
  holder_.reset();
}

}  // namespace cadcanfs
