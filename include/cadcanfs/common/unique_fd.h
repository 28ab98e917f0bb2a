// UniqueFd: owns one file descriptor and closes it when it goes.
//
// Thread safety: a plain value; one owner at a time.
#ifndef CADCANFS_COMMON_UNIQUE_FD_H_
#define CADCANFS_COMMON_UNIQUE_FD_H_

#include <unistd.h>

namespace cadcanfs {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership (for APIs such as fdopendir that take the descriptor over).
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  int fd_ = -1;
};

}  // namespace cadcanfs

#endif  // CADCANFS_COMMON_UNIQUE_FD_H_
