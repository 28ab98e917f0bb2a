#include "cadcanfs/fs/change_poller.h"

#include <spdlog/spdlog.h>

namespace cadcanfs {

ChangePoller::ChangePoller(FileSystem& fs, std::chrono::milliseconds interval)
    : fs_(fs), interval_(interval), worker_([this] { Run(); }) {}

ChangePoller::~ChangePoller() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  worker_.join();
}

bool ChangePoller::polling() const {
  std::lock_guard lock(mu_);
  return polling_;
}

void ChangePoller::Run() {
  // The first poll starts the feed's tracking (it reports nothing), so that changes
  // made from now on are the ones reported.
  while (true) {
    Result<size_t> changed = fs_.PollStoreChanges();
    if (!changed.ok() && changed.status().code() == Code::kUnsupported) {
      std::lock_guard lock(mu_);
      polling_ = false;
      return;
    }
    if (!changed.ok()) {
      spdlog::warn("asking the store for other writers' changes failed (retried in {} s): {}",
                   interval_.count() / 1000.0, changed.status().message());
    } else if (*changed > 0) {
      spdlog::debug("the store reported {} changed objects", *changed);
    }
    std::unique_lock lock(mu_);
    if (wake_.wait_for(lock, interval_, [this] { return stopping_; })) return;
  }
}

}  // namespace cadcanfs
