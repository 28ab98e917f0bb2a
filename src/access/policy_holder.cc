#include "cadcanfs/access/policy_holder.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

namespace cadcanfs::access {

namespace {

// After a change in the directory, wait this long for the writer to finish before
// reading, so a save in several writes is read once, whole.
constexpr int kSettleMillis = 50;

}  // namespace

bool PolicyHolder::FileStamp::operator==(const FileStamp& o) const {
  return dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
         mtime.tv_nsec == o.mtime.tv_nsec && ctime.tv_sec == o.ctime.tv_sec &&
         ctime.tv_nsec == o.ctime.tv_nsec;
}

Result<std::unique_ptr<PolicyHolder>> PolicyHolder::Load(std::string path, IdLookup ids) {
  std::unique_ptr<PolicyHolder> holder(new PolicyHolder(std::move(path), std::move(ids)));
  CADCANFS_RETURN_IF_ERROR(holder->Reload());
  return holder;
}

PolicyHolder::FileStamp PolicyHolder::StampNow() const {
  FileStamp stamp;
  struct stat st;
  if (stat(path_.c_str(), &st) == 0) {
    stamp = FileStamp{st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim};
  }
  return stamp;
}

Status PolicyHolder::Reload() {
  std::lock_guard<std::mutex> lock(reload_mutex_);
  return ReloadLocked();
}

Status PolicyHolder::ReloadIfChanged() {
  std::lock_guard<std::mutex> lock(reload_mutex_);
  if (StampNow() == last_attempt_) return Status::Ok();
  return ReloadLocked();
}

Status PolicyHolder::ReloadLocked() {
  last_attempt_ = StampNow();
  auto policy = Policy::LoadFile(path_, ids_);
  if (!policy.ok()) return policy.status();
  current_.store(std::make_shared<const Policy>(std::move(policy).value()));
  generation_.fetch_add(1);
  return Status::Ok();
}

Result<std::unique_ptr<PolicyWatcher>> PolicyWatcher::Start(PolicyHolder& holder,
                                                            const std::string& policy_path,
                                                            ReloadReport report,
                                                            std::chrono::milliseconds poll) {
  std::unique_ptr<PolicyWatcher> watcher(new PolicyWatcher(holder, std::move(report), poll));
  watcher->wake_ = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!watcher->wake_.valid()) return Status::FromErrno(errno, "creating the policy watcher");
  watcher->inotify_ = UniqueFd(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!watcher->inotify_.valid()) return Status::FromErrno(errno, "creating the policy watcher");
  const std::filesystem::path parent = std::filesystem::path(policy_path).parent_path();
  const std::filesystem::path dir = parent.empty() ? std::filesystem::path(".") : parent;
  if (inotify_add_watch(watcher->inotify_.get(), dir.c_str(),
                        IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB) < 0) {
    return Status::FromErrno(errno, "watching the policy file's directory");
  }
  watcher->thread_ = std::thread([w = watcher.get()] { w->Run(); });
  return watcher;
}

PolicyWatcher::~PolicyWatcher() {
  stopping_.store(true);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
}

void PolicyWatcher::RequestReload() noexcept {
  reload_requested_.store(true);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_.get(), &one, sizeof(one));
}

void PolicyWatcher::Run() {
  alignas(inotify_event) char events[4096];
  while (!stopping_.load()) {
    pollfd fds[2] = {{wake_.get(), POLLIN, 0}, {inotify_.get(), POLLIN, 0}};
    int ready = poll(fds, 2, static_cast<int>(poll_interval_.count()));
    if (ready < 0 && errno != EINTR) return;
    if (stopping_.load()) return;
    uint64_t count = 0;
    [[maybe_unused]] ssize_t n = read(wake_.get(), &count, sizeof(count));
    if (fds[1].revents & POLLIN) {
      poll(nullptr, 0, kSettleMillis);
      while (read(inotify_.get(), events, sizeof(events)) > 0) {
      }
    }
    Status result;
    bool attempted = true;
    if (reload_requested_.exchange(false)) {
      result = holder_.Reload();
    } else {
      uint64_t before = holder_.generation();
      result = holder_.ReloadIfChanged();
      attempted = !result.ok() || holder_.generation() != before;
    }
    if (attempted && report_) report_(result);
  }
}

}  // namespace cadcanfs::access
