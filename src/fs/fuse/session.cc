// Session setup and the main loop: options → session → signal handlers → mount →
// multithreaded loop → sync → unmount, as in libfuse's passthrough_hp.
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "fuse_ops.h"
#include "kernel_notifier.h"

namespace cadcanfs {

namespace {

using namespace fuse_ops;

void OnInit(void* userdata, fuse_conn_info* conn) {
  auto* ctx = static_cast<Context*>(userdata);
  // Our bytes pass through memory for crypto anyway; splice only adds a pipe copy.
  conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
  // Request only what the kernel offers: libfuse 3.14 fails the mount otherwise.
  auto want = [conn](unsigned cap) {
    if (conn->capable & cap) conn->want |= cap;
  };
  want(FUSE_CAP_ASYNC_READ);
  want(FUSE_CAP_ASYNC_DIO);
  want(FUSE_CAP_PARALLEL_DIROPS);
  want(FUSE_CAP_CACHE_SYMLINKS);
  // File handles (name_to_handle_at, NFS re-export) resolve through LOOKUP of ".".
  want(FUSE_CAP_EXPORT_SUPPORT);
  // The kernel works out which setuid and setgid bits a write, truncate or chown clears
  // and sends them as a mode change (libfuse would otherwise leave that to us, and a
  // write tells us neither who wrote nor whether they hold CAP_FSETID).
  conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
  if (ctx->options->writeback_cache) want(FUSE_CAP_WRITEBACK_CACHE);
  ctx->writeback = (conn->want & FUSE_CAP_WRITEBACK_CACHE) != 0;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  conn->time_gran = 1;
}

fuse_lowlevel_ops FillOps() {
  fuse_lowlevel_ops ops{};
  ops.init = OnInit;
  ops.lookup = Lookup;
  ops.forget = Forget;
  ops.forget_multi = ForgetMulti;
  ops.getattr = GetAttr;
  ops.setattr = SetAttr;
  ops.readlink = ReadLink;
  ops.mkdir = MkDir;
  ops.mknod = MkNod;
  ops.unlink = Unlink;
  ops.rmdir = RmDir;
  ops.symlink = Symlink;
  ops.rename = Rename;
  ops.link = Link;
  ops.statfs = StatFs;
  ops.setxattr = SetXattr;
  ops.getxattr = GetXattr;
  ops.listxattr = ListXattr;
  ops.removexattr = RemoveXattr;
  ops.open = Open;
  ops.create = Create;
  ops.read = Read;
  ops.write = Write;
  ops.flush = Flush;
  ops.release = Release;
  ops.fsync = Fsync;
  ops.fallocate = Fallocate;
  ops.opendir = OpenDir;
  ops.readdir = ReadDir;
  ops.readdirplus = ReadDirPlus;
  ops.releasedir = ReleaseDir;
  ops.fsyncdir = FsyncDir;
  // No lock/flock handlers: the kernel then keeps POSIX and flock locks itself.
  return ops;
}

// libfuse's own messages may name the mountpoint; keep them at debug level.
void LibfuseLog(enum fuse_log_level level, const char* fmt, va_list ap) {
  char line[512];
  vsnprintf(line, sizeof(line), fmt, ap);
  if (level <= FUSE_LOG_ERR) {
    spdlog::debug("libfuse: {}", line);
  } else {
    spdlog::trace("libfuse: {}", line);
  }
}

std::string MountOptionString(const MountOptions& options) {
  std::string opts = "fsname=cadcanfs,subtype=cadcanfs,default_permissions";
  if (options.allow_other) opts += ",allow_other";
  if (options.read_only) opts += ",ro";
  for (const std::string& o : options.fuse_options) opts += "," + o;
  return opts;
}

// Tells the service manager about the daemon's state (systemd Type=notify): one
// datagram to the AF_UNIX socket named by $NOTIFY_SOCKET, as sd_notify(3) documents.
// Spoken directly rather than through libsystemd: the protocol is stable and this
// small, and the FUSE frontend (and the package) needs no extra library for it.
// Does nothing outside such a service. Messages carry no path or name.
void NotifyServiceManager(const std::string& state) {
  const char* socket_path = std::getenv("NOTIFY_SOCKET");
  if (socket_path == nullptr || (socket_path[0] != '/' && socket_path[0] != '@')) return;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  size_t length = std::strlen(socket_path);
  if (length >= sizeof(address.sun_path)) return;
  std::memcpy(address.sun_path, socket_path, length);
  if (address.sun_path[0] == '@') address.sun_path[0] = '\0';  // abstract namespace
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  if (sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&address),
             static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length)) < 0) {
    spdlog::debug("could not notify the service manager");
  }
  close(fd);
}

// The STATUS= line `systemctl status` shows while serving: the mode only, no path.
std::string ServingStatus(const MountOptions& options) {
  std::string status = "STATUS=Serving the vault (";
  status += options.read_only ? "read-only" : "read-write";
  status += options.writeback_cache ? ", writeback cache" : ", write-through";
  if (options.allow_other) status += ", all users";
  return status + ")";
}

// The objects the access signals reach. Handlers may only make async-signal-safe
// calls: RequestReload and RequestRotate set a flag (and write an eventfd).
std::atomic<access::PolicyWatcher*> signalled_watcher{nullptr};
std::atomic<access::AuditLog*> signalled_audit{nullptr};

void OnReloadSignal(int) {
  if (access::PolicyWatcher* watcher = signalled_watcher.load()) watcher->RequestReload();
}

void OnRotateSignal(int) {
  if (access::AuditLog* audit = signalled_audit.load()) audit->RequestRotate();
}

bool InstallHandler(int signal, void (*handler)(int)) {
  struct sigaction action {};
  action.sa_handler = handler;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  return sigaction(signal, &action, nullptr) == 0;
}

// Replaces libfuse's SIGHUP (unmount) with a policy reload, and adds SIGUSR1 for
// rotating the audit log, for the mount's life.
class AccessSignals {
 public:
  explicit AccessSignals(const MountOptions& options) {
    if (options.policy_watcher != nullptr) {
      signalled_watcher.store(options.policy_watcher);
      ok_ = InstallHandler(SIGHUP, OnReloadSignal);
    }
    if (options.audit_log != nullptr) {
      signalled_audit.store(options.audit_log);
      ok_ = InstallHandler(SIGUSR1, OnRotateSignal) && ok_;
    }
  }
  ~AccessSignals() {
    signalled_watcher.store(nullptr);
    signalled_audit.store(nullptr);
  }
  AccessSignals(const AccessSignals&) = delete;
  AccessSignals& operator=(const AccessSignals&) = delete;
  bool ok() const { return ok_; }

 private:
  bool ok_ = true;
};

// Owns a libfuse session and tears it down in order.
class Session {
 public:
  Session(const MountOptions& options, Context& ctx) {
    std::string opts = MountOptionString(options);
    const char* argv[] = {"cadcanfs", "-o", opts.c_str()};
    fuse_args args = FUSE_ARGS_INIT(3, const_cast<char**>(argv));
    fuse_lowlevel_ops ops = FillOps();
    session_ = fuse_session_new(&args, &ops, sizeof(ops), &ctx);
    fuse_opt_free_args(&args);
  }
  ~Session() {
    if (session_ == nullptr) return;
    if (mounted_) fuse_session_unmount(session_);
    if (signals_) fuse_remove_signal_handlers(session_);
    fuse_session_destroy(session_);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  bool valid() const { return session_ != nullptr; }
  fuse_session* raw() { return session_; }
  bool InstallSignalHandlers() { return signals_ = fuse_set_signal_handlers(session_) == 0; }
  bool Mount(const std::string& mountpoint) {
    return mounted_ = fuse_session_mount(session_, mountpoint.c_str()) == 0;
  }
  // Ends a loop serving this session from another thread: the kernel drops the
  // connection, and the loop's read returns.
  void ExitAndUnmount() {
    fuse_session_exit(session_);
    if (mounted_) fuse_session_unmount(session_);
    mounted_ = false;
  }
  int Loop() {
    fuse_loop_config* config = fuse_loop_cfg_create();
    // At least two threads per core; idle threads are never reaped (no churn).
    unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    fuse_loop_cfg_set_max_threads(config, std::max(16u, 4 * cores));
    int rc = fuse_session_loop_mt(session_, config);
    fuse_loop_cfg_destroy(config);
    return rc;
  }

 private:
  fuse_session* session_ = nullptr;
  bool mounted_ = false;
  bool signals_ = false;
};

// Which view a further session serves.
struct ViewKind {
  std::string mountpoint;
  bool pseudonymized = false;     // case codes for patient names
  std::optional<uid_t> only_uid;  // one user's own view
};

// A further session at its own mountpoint (the pseudonymized view, a user's own view),
// with its own kernel caches (so a name never has two meanings, nor one user's answer
// another's, in one dentry cache), over the same filesystem, served by its own loop
// thread until the main session ends.
class ViewSession {
 public:
  ViewSession(FileSystem& fs, const MountOptions& main_options, ViewKind kind)
      : options_(main_options) {
    options_.mountpoint = kind.mountpoint;
    options_.after_init = nullptr;
    ctx_.fs = &fs;
    ctx_.options = &options_;
    ctx_.further_session = true;
    ctx_.pseudonymized_view = kind.pseudonymized;
    ctx_.only_uid = kind.only_uid;
    if (options_.shared_store) ctx_.entry_timeout = ctx_.attr_timeout = 0;
    session_ = std::make_unique<Session>(options_, ctx_);
  }
  ~ViewSession() {
    if (!loop_.joinable()) return;
    session_->ExitAndUnmount();
    loop_.join();
  }
  ViewSession(const ViewSession&) = delete;
  ViewSession& operator=(const ViewSession&) = delete;

  Status Start(std::function<void(fuse_ino_t)> invalidate_in_main) {
    if (!session_->valid()) {
      return Status::Error(Code::kInvalidArgument, "the FUSE options were not accepted");
    }
    if (!session_->Mount(options_.mountpoint)) {
      return Status::Error(Code::kBusy, "the kernel refused a view's mount");
    }
    notifier_ = std::make_unique<KernelNotifier>(session_->raw());
    ctx_.invalidate_in_peer = std::move(invalidate_in_main);
    loop_ = std::thread([this] {
      if (session_->Loop() < 0) spdlog::error("a view's session ended with an error");
    });
    return Status::Ok();
  }
  KernelNotifier& notifier() { return *notifier_; }

 private:
  MountOptions options_;
  Context ctx_;
  std::unique_ptr<Session> session_;
  std::unique_ptr<KernelNotifier> notifier_;
  std::thread loop_;
};

}  // namespace

Status ServeMount(FileSystem& fs, const MountOptions& options,
                  const std::function<void()>& on_mounted) {
  fuse_set_log_func(LibfuseLog);
  Context ctx;
  ctx.fs = &fs;
  ctx.options = &options;
  if (options.shared_store) ctx.entry_timeout = ctx.attr_timeout = 0;
  Session session(options, ctx);
  if (!session.valid()) {
    return Status::Error(Code::kInvalidArgument, "the FUSE options were not accepted");
  }
  if (!session.InstallSignalHandlers()) {
    return Status::Error(Code::kInternal, "cannot install signal handlers");
  }
  AccessSignals access_signals(options);
  if (!access_signals.ok()) {
    return Status::Error(Code::kInternal, "cannot install the policy and audit signal handlers");
  }
  if (!session.Mount(options.mountpoint)) {
    NotifyServiceManager("STATUS=Mounting failed: the kernel refused the mount");
    return Status::Error(Code::kBusy, "the kernel refused the mount");
  }
  // Changes other writers make reach the kernel through here (a store's change feed).
  KernelNotifier notifier(session.raw());
  std::vector<std::unique_ptr<ViewSession>> views;
  std::vector<ViewKind> kinds;
  if (!options.pseudonymized_mountpoint.empty()) {
    kinds.push_back(ViewKind{options.pseudonymized_mountpoint, true, std::nullopt});
  }
  for (const MountOptions::UserView& user : options.user_views) {
    kinds.push_back(ViewKind{user.mountpoint, false, user.uid});
  }
  for (ViewKind& kind : kinds) {
    views.push_back(std::make_unique<ViewSession>(fs, options, std::move(kind)));
    Status started =
        views.back()->Start([&notifier](fuse_ino_t ino) { notifier.InvalidateInode(ino); });
    if (!started.ok()) return started;
  }
  std::vector<KernelNotifier*> view_notifiers;
  for (auto& view : views) view_notifiers.push_back(&view->notifier());
  fs.SetKernelInvalidator(
      {[&notifier, view_notifiers](InodeNumber ino) {
         notifier.InvalidateInode(ino);
         for (KernelNotifier* view : view_notifiers) view->InvalidateInode(ino);
       },
       [&notifier, view_notifiers](InodeNumber parent, const std::string& name) {
         notifier.InvalidateEntry(parent, name);
         // A view may show the entry under another name: its directory is dropped
         // instead (its dentries at and above case depth are asked for every walk).
         for (KernelNotifier* view : view_notifiers) view->InvalidateInode(parent);
       }});
  struct DropInvalidator {
    FileSystem& fs;
    ~DropInvalidator() { fs.SetKernelInvalidator({}); }
  } drop_invalidator{fs};
  // Stopped before the invalidator goes: it reports through it.
  ChangePoller change_poller(fs, options.poll_interval);
  on_mounted();
  // Ready only now: the kernel holds the mount, and requests to it queue for the
  // threads the loop starts next. MAINPID covers a daemon that forked away from the
  // process the service manager started (then the unit needs NotifyAccess=all).
  NotifyServiceManager("READY=1\nMAINPID=" + std::to_string(getpid()) + "\n" +
                       ServingStatus(options));
  int rc = session.Loop();
  NotifyServiceManager("STOPPING=1\nSTATUS=Stopping: syncing open files, then unmounting");
  Status synced = fs.SyncAll();
  if (!synced.ok()) spdlog::error("syncing open files at unmount failed: {}", synced.ToString());
  // A positive result is the signal that ended the loop: a clean shutdown.
  if (rc < 0) return Status::Error(Code::kIoError, "the FUSE session ended with an error");
  return synced;
}

}  // namespace cadcanfs
