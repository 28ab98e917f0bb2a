#include "kernel_notifier.h"

namespace cadcanfs {

KernelNotifier::KernelNotifier(fuse_session* session)
    : session_(session), worker_([this] { Run(); }) {}

KernelNotifier::~KernelNotifier() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  worker_.join();
}

void KernelNotifier::InvalidateInode(fuse_ino_t ino) { Enqueue(Notice{ino, {}}); }

void KernelNotifier::InvalidateEntry(fuse_ino_t parent, std::string name) {
  Enqueue(Notice{parent, std::move(name)});
}

void KernelNotifier::Enqueue(Notice notice) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    queue_.push_back(std::move(notice));
  }
  wake_.notify_one();
}

void KernelNotifier::Run() {
  std::unique_lock lock(mu_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything was sent
    Notice notice = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    // ENOENT means the kernel holds nothing for it: nothing to drop.
    if (notice.name.empty()) {
      (void)fuse_lowlevel_notify_inval_inode(session_, notice.ino, 0, 0);
    } else {
      (void)fuse_lowlevel_notify_inval_entry(session_, notice.ino, notice.name.c_str(),
                                             notice.name.size());
    }
    lock.lock();
  }
}

}  // namespace cadcanfs
