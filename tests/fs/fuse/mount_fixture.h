// A real FUSE mount for tests: a fresh vault and key, `cadcanfs mount -f --debug`
// in a child process whose log goes to a file, readiness detected in
// /proc/self/mountinfo, and an unmount plus a wait for the daemon at the end.
#ifndef CADCANFS_TESTS_FS_FUSE_MOUNT_FIXTURE_H_
#define CADCANFS_TESTS_FS_FUSE_MOUNT_FIXTURE_H_

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "testing/temp_vault.h"

namespace cadcanfs::testing {

inline bool IsMountedAt(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, mountpoint;
    fields >> id >> parent >> devno >> root >> mountpoint;
    if (mountpoint == path) return true;
  }
  return false;
}

// The format a Mount serves: the encrypted vault, or with CADCANFS_TEST_FORMAT=plain a
// plain directory (`cadcanfs mount --plain`), so that one test binary runs the whole
// suite over both formats (ctest registers it once per format).
inline bool PlainFormatRequested() {
  const char* format = getenv("CADCANFS_TEST_FORMAT");
  return format != nullptr && std::string(format) == "plain";
}

class Mount {
 public:
  // `extra` are further `cadcanfs mount` arguments (e.g. "--writeback-cache").
  explicit Mount(uint32_t block_size = 32768, std::vector<std::string> extra = {})
      : vault_(block_size), extra_(std::move(extra)) {
    mountpoint_ = vault_.dir().path() + "/mnt";
    log_path_ = vault_.dir().path() + "/daemon.log";
    plain_root_ = vault_.dir().path() + "/plain";
    mkdir(mountpoint_.c_str(), 0755);
    if (plain_) mkdir(plain_root_.c_str(), 0755);
    Start();
  }
  ~Mount() { Unmount(); }

  void Unmount() {
    if (pid_ <= 0) return;
    if (IsMountedAt(mountpoint_)) umount2(mountpoint_.c_str(), MNT_DETACH);
    int status = 0;
    for (int i = 0; i < 500; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  // Unmounts and mounts the same vault again with a fresh daemon, so that nothing is
  // answered from the kernel's or the daemon's caches.
  void Remount() {
    Unmount();
    Start();
  }

  bool mounted() const { return mounted_; }
  std::string path(const std::string& rel) const { return mountpoint_ + "/" + rel; }
  const std::string& mountpoint() const { return mountpoint_; }
  const std::string& log_path() const { return log_path_; }
  TempVault& vault() { return vault_; }
  bool plain() const { return plain_; }
  std::string Log() const {
    std::ifstream in(log_path_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  void Start() {
    pid_ = fork();
    if (pid_ == 0) {
      int log = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      dup2(log, STDERR_FILENO);
      dup2(log, STDOUT_FILENO);
      std::vector<std::string> args = {"cadcanfs",   "mount",           vault_.root(), mountpoint_,
                                       "--key-file", vault_.key_file(), "-f",          "--debug"};
      if (plain_)
        args = {"cadcanfs", "mount", "--plain", plain_root_, mountpoint_, "-f", "--debug"};
      args.insert(args.end(), extra_.begin(), extra_.end());
      std::vector<char*> argv;
      for (std::string& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      execv(CADCANFS_BINARY, argv.data());
      _exit(127);
    }
    for (int i = 0; i < 500 && !IsMountedAt(mountpoint_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    mounted_ = IsMountedAt(mountpoint_);
  }

  TempVault vault_;
  const bool plain_ = PlainFormatRequested();
  std::string plain_root_;
  std::vector<std::string> extra_;
  std::string mountpoint_;
  std::string log_path_;
  pid_t pid_ = -1;
  bool mounted_ = false;
};

}  // namespace cadcanfs::testing

#endif  // CADCANFS_TESTS_FS_FUSE_MOUNT_FIXTURE_H_
