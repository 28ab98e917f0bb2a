// mount and unmount: serving a vault through FUSE, detached once the mount is live.
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "cadcanfs/access/audit_log.h"
#include "cadcanfs/access/keys.h"
#include "cadcanfs/access/policy_holder.h"
#include "cadcanfs/access/pseudonym.h"
#include "cadcanfs/common/log.h"
#include "cadcanfs/fs/filesystem.h"
#include "cadcanfs/fs/fuse/mount.h"
#include "cadcanfs/fs/plain_format.h"
#include "cadcanfs/fs/vault_format.h"
#include "cadcanfs/store/staging_store.h"
#include "exit_codes.h"
#include "service_config.h"
#include "staging_setup.h"
#include "status_command.h"
#include "support.h"

namespace cadcanfs::cli {

namespace {

constexpr int kReadaheadKiB = 1024;

int MountError(int code, const std::string& sentence) {
  std::cerr << "cadcanfs: " << sentence << "\n";
  return code;
}

// Undoes the octal escapes (\040 for a space) of /proc/self/mountinfo.
std::string UnescapeMountPath(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out.push_back(static_cast<char>(std::strtol(s.substr(i + 1, 3).c_str(), nullptr, 8)));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

struct MountEntry {
  std::string device;  // "major:minor"
  std::string type;
};

// The mount on top at exactly `path` (empty fields if none). Reads mountinfo only, so
// it never touches the filesystem at `path` (which may be dead or not yet serving).
MountEntry MountAt(const std::string& path) {
  std::string target = AbsolutePath(path);
  while (target.size() > 1 && target.back() == '/') target.pop_back();
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  MountEntry found;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, mountpoint, field;
    fields >> id >> parent >> devno >> root >> mountpoint;
    while (fields >> field && field != "-") {
    }
    std::string fstype;
    fields >> fstype;
    if (UnescapeMountPath(mountpoint) == target) found = {devno, fstype};  // last is on top
  }
  return found;
}

bool DirectoryIsEmpty(const std::string& path) {
  DIR* d = opendir(path.c_str());
  if (d == nullptr) return false;
  bool empty = true;
  while (struct dirent* e = readdir(d)) {
    if (std::string_view(e->d_name) != "." && std::string_view(e->d_name) != "..") {
      empty = false;
      break;
    }
  }
  closedir(d);
  return empty;
}

// Returns 0 if `mountpoint` can take a mount, else prints why and returns the exit code.
int CheckMountpoint(const std::string& mountpoint) {
  struct stat st;
  if (stat(mountpoint.c_str(), &st) != 0) {
    if (errno == ENOTCONN) {
      return MountError(exit_code::kStaleMount,
                        "transport endpoint is not connected (a cadcanfs daemon died): run "
                        "cadcanfs unmount on the mountpoint");
    }
    if (errno == ENOENT)
      return MountError(exit_code::kMountFailed, "the mountpoint does not exist");
    return MountError(exit_code::kMountFailed, "the mountpoint cannot be accessed");
  }
  if (!S_ISDIR(st.st_mode)) {
    return MountError(exit_code::kMountFailed, "the mountpoint is not a directory");
  }
  if (!MountAt(mountpoint).type.empty()) {
    return MountError(exit_code::kMountFailed, "the mountpoint is already in use by another mount");
  }
  if (!DirectoryIsEmpty(mountpoint)) {
    return MountError(exit_code::kNotEmpty, "the mountpoint is not empty");
  }
  return exit_code::kOk;
}

// CheckMountpoint, then `mountpoint` made absolute with its symlinks resolved: the
// daemon leaves its working directory, and libfuse unmounts by this path at exit.
int UsableMountpointOrReport(std::string& mountpoint) {
  if (int code = CheckMountpoint(mountpoint); code != exit_code::kOk) return code;
  char resolved[PATH_MAX];
  if (realpath(mountpoint.c_str(), resolved) != nullptr) mountpoint = resolved;
  return exit_code::kOk;
}

int CheckFuseDevice() {
  int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    return MountError(exit_code::kMountFailed,
                      "cannot open /dev/fuse: install fuse3 and load the fuse kernel module");
  }
  close(fd);
  return exit_code::kOk;
}

struct MountRequest {
  std::string vault_path;
  OneDriveAccess onedrive;  // for a onedrive: location
  // Serve the store's files and names as they are (PlainFormat) instead of a vault.
  bool plain = false;
  // --ciphertext: a vault's stored objects as they are, read-only and without its key
  // (plain is set too), for backups that copy the ciphertext.
  bool ciphertext = false;
  // Where writes to a store that cannot write in place are staged (--cache-dir).
  std::optional<std::string> cache_dir;
  // Bytes of a remote store's content held in memory (--cache-size); unset: default.
  std::optional<uint64_t> cache_size;
  KeyOptions keys;
  MountOptions mount;
  FsOptions fs;
  bool foreground = false;
  // The access layer (docs/access-policy.md): loaded in the daemon, after the key.
  std::optional<std::string> policy_path;
  std::optional<std::string> audit_path;
  bool audit_relaxed = false;
  bool audit_sync = false;
  bool audit_syslog = false;
};

// The keys the access layer derives from the master key, taken while the vault is open.
struct AccessKeys {
  std::optional<SecretBytes> audit;
  std::optional<SecretBytes> case_code;
};

// What the access flags set up in the daemon; `watcher` and `audit` live as long as the
// mount.
struct AccessSetup {
  std::unique_ptr<access::PolicyWatcher> watcher;
  std::shared_ptr<access::AuditLog> audit;
};

// Reports the mount outcome to the waiting parent (daemon mode) exactly once.
class Readiness {
 public:
  explicit Readiness(int fd) : fd_(fd) {}
  void Report(int code) {
    if (fd_ < 0) return;
    uint8_t byte = static_cast<uint8_t>(code);
    (void)!write(fd_, &byte, 1);
    close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

void DetachStdio() {
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) return;
  dup2(null, STDIN_FILENO);
  dup2(null, STDOUT_FILENO);
  dup2(null, STDERR_FILENO);
  close(null);
}

// Plaintext passes through the daemon's buffers, and swap is a disk. Root can lock
// every page as it is touched (MCL_ONFAULT keeps untouched stack reservations out of
// RSS); an unprivileged daemon has too small an RLIMIT_MEMLOCK, so there the key
// pages alone are locked (SecretBytes) and docs/threat-model.md says to use encrypted
// or no swap.
void LockDaemonMemory() {
  if (geteuid() != 0) return;
  if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0) {
    spdlog::warn("could not lock daemon memory; plaintext buffers may reach swap");
  }
}

// The kernel gives a FUSE mount 128 KiB of readahead, so sequential READs stay at
// 128 KiB even though a request may carry 1 MiB. Root can raise the mount's bdi
// window; bigger READs mean fewer round trips and bigger crypto batches.
void RaiseReadahead(const std::string& mountpoint) {
  if (geteuid() != 0) return;
  // Not stat(2) on the mountpoint: that would be a request to ourselves.
  std::string device = MountAt(mountpoint).device;
  if (device.empty()) return;
  std::ofstream knob("/sys/class/bdi/" + device + "/read_ahead_kb");
  if (knob) knob << kReadaheadKiB << std::flush;
}

// Takes the vault's writer lock, loads the key, builds the filesystem and serves it.
// Runs in the daemon process: key memory is MADV_DONTFORK, so nothing keyed may exist
// before the fork, and the lock belongs to the process that serves (a flock dies with
// its holder, so only the daemon's own life may bound it). A lock refusal reaches the
// waiting `mount` through the readiness pipe like any other failure.
// A plain folder has no vault key: the audit key derives from the --key-file master key.
bool PlainAuditKeyOrReport(const MountRequest& request, AccessKeys& keys, int& code) {
  auto kek = ReadKeyFile(*request.keys.key_file);
  if (!kek.ok()) {
    code = Fail(kek.status(), Stage::kKey);
    return false;
  }
  auto master = MasterKey::FromBytes(std::move(kek).value());
  if (!master.ok()) {
    code = Fail(master.status(), Stage::kKey);
    return false;
  }
  auto audit_key = access::DeriveAuditKey(*master);
  if (!audit_key.ok()) {
    code = Fail(audit_key.status(), Stage::kKey);
    return false;
  }
  keys.audit = std::move(audit_key).value();
  return true;
}

// The format the mount serves: the vault at request.vault_path, under its writer lock
// (held in `lock` for the daemon's life), or the plain tree there. Null after a
// reported failure. `keys` receives what the access flags need from the master key.
std::unique_ptr<Format> OpenFormatOrReport(const MountRequest& request,
                                           std::optional<VaultLock>& lock, StagingStore*& staging,
                                           const std::shared_ptr<VaultConflictNamer>& conflicts,
                                           AccessKeys& keys, int& code) {
  if (request.plain) {
    std::unique_ptr<Store> store =
        OpenStoreOrReport(StoreLocation{request.vault_path, request.onedrive}, code);
    if (!store) return nullptr;
    store = CacheReadsOf(std::move(store), request.cache_size);
    // OneDrive (and remote-like:) replace whole objects: writes are staged in front.
    if (!store->capabilities().partial_writes && !request.mount.read_only) {
      std::unique_ptr<StagingStore> staged = StageWritesOrReport(
          std::move(store), request.vault_path, request.keys, request.cache_dir, code);
      if (!staged) return nullptr;
      staging = staged.get();
      store = std::move(staged);
    }
    if (request.audit_path && !PlainAuditKeyOrReport(request, keys, code)) return nullptr;
    return std::make_unique<PlainFormat>(std::move(store));
  }
  // A vault on a remote store caches and stages its ciphertext the same way.
  auto stage_writes = [&](std::unique_ptr<Store> store, const LoadedKey& key,
                          int& failure) -> std::unique_ptr<Store> {
    store = CacheReadsOf(std::move(store), request.cache_size);
    if (store->capabilities().partial_writes || request.mount.read_only) return store;
    std::unique_ptr<StagingStore> staged = StageVaultWritesOrReport(
        std::move(store), request.vault_path, key.master, request.cache_dir, conflicts, failure);
    staging = staged.get();
    return staged;
  };
  std::unique_ptr<Vault> vault =
      OpenVaultOrReport(StoreLocation{request.vault_path, request.onedrive}, request.keys, code,
                        &lock, request.mount.read_only, stage_writes);
  if (!vault) return nullptr;
  conflicts->Attach(vault.get());
  if (request.audit_path) {
    auto audit_key = access::DeriveAuditKey(vault->master());
    if (!audit_key.ok()) {
      code = Fail(audit_key.status(), Stage::kKey);
      return nullptr;
    }
    keys.audit = std::move(audit_key).value();
  }
  if (request.audit_path || request.policy_path) {
    auto case_key = access::DeriveCaseCodeKey(vault->config(), vault->master());
    if (!case_key.ok()) {
      code = Fail(case_key.status(), Stage::kConfig);
      return nullptr;
    }
    keys.case_code = std::move(case_key).value();
  }
  return std::make_unique<VaultFormat>(std::move(vault));
}

// Set by SIGTERM or SIGINT while unmounting waits for uploads, and by `cadcanfs
// unmount --force` through the control socket: stop waiting.
std::atomic<bool> stop_waiting_for_uploads{false};

void StopWaitingForUploads(int) { stop_waiting_for_uploads.store(true); }

// Unmounting waits until every staged change is in the store, saying how much is left
// every 10 s, unless told to stop (another SIGTERM or SIGINT, `unmount --force`): what
// is left stays journalled and is committed at the next mount, as is whatever a dead
// store never takes.
void WaitForUploads(StagingStore& staging) {
  struct sigaction stop {};
  stop.sa_handler = StopWaitingForUploads;
  sigemptyset(&stop.sa_mask);
  sigaction(SIGTERM, &stop, nullptr);
  sigaction(SIGINT, &stop, nullptr);
  auto last_report = std::chrono::steady_clock::now();
  while (staging.Drain(std::chrono::milliseconds(200)) > 0) {
    if (stop_waiting_for_uploads.load()) {
      spdlog::warn("unmounting: stopped waiting; {} uploads stay journalled for the next mount",
                   staging.status().pending_commits);
      return;
    }
    if (std::chrono::steady_clock::now() - last_report < std::chrono::seconds(10)) continue;
    last_report = std::chrono::steady_clock::now();
    const StagingStatus status = staging.status();
    spdlog::warn("unmounting: waiting for {} uploads ({} bytes){}{}", status.pending_commits,
                 status.pending_bytes,
                 status.last_error.empty() ? "" : "; last error: ", status.last_error);
  }
}

// Where --audit-syslog sends the audit lines: /dev/log, or the datagram socket named by
// CADCANFS_SYSLOG_SOCKET (docs/cli.md; the tests point it at a socket they read).
std::string SyslogSocketPath() {
  const char* path = getenv("CADCANFS_SYSLOG_SOCKET");
  return path != nullptr && *path != '\0' ? path : access::kDefaultSyslogSocket;
}

// Loads the policy (exit 41), starts its watcher, and opens the audit log (exit 44)
// into `fs_access` and `setup`. Returns an exit code.
int SetUpAccess(const MountRequest& request, AccessKeys& keys, AccessOptions& fs_access,
                AccessSetup& setup) {
  if (keys.case_code) {
    fs_access.case_coder = std::make_shared<const access::CaseCoder>(std::move(*keys.case_code));
  }
  if (request.policy_path) {
    auto holder = access::PolicyHolder::Load(*request.policy_path);
    if (!holder.ok()) {
      return MountError(exit_code::kBadPolicy,
                        "the access policy cannot be used: " + holder.status().message());
    }
    fs_access.policy = std::move(holder).value();
    auto watcher = access::PolicyWatcher::Start(
        *fs_access.policy, *request.policy_path, [](const Status& status) {
          if (status.ok()) {
            spdlog::warn("access policy reloaded");
          } else {
            spdlog::error("access policy not reloaded, the previous one stays: {}",
                          status.message());
          }
        });
    if (!watcher.ok()) {
      return MountError(exit_code::kBadPolicy,
                        "the access policy file cannot be watched: " + watcher.status().message());
    }
    setup.watcher = std::move(watcher).value();
  }
  if (request.audit_path) {
    access::AuditLogOptions options;
    options.fail_closed = !request.audit_relaxed;
    options.sync_every_line = request.audit_sync;
    if (request.audit_syslog) options.mirror = access::SyslogMirror(SyslogSocketPath());
    auto audit = access::AuditLog::Open(*request.audit_path, std::move(*keys.audit), options);
    if (!audit.ok()) {
      return MountError(exit_code::kAuditUnwritable,
                        "the audit log cannot be opened or continued: " + audit.status().message());
    }
    setup.audit = std::move(audit).value();
    fs_access.audit = setup.audit;
  }
  return exit_code::kOk;
}

// The mount and unmount lines, from the daemon itself.
Status AuditMountEvent(AccessSetup& setup, access::AuditOp op) {
  if (!setup.audit) return Status::Ok();
  access::AuditEvent event;
  event.op = op;
  event.uid = getuid();
  event.pid = getpid();
  return setup.audit->Append(event);
}

int Serve(const MountRequest& request, Readiness& readiness) {
  umask(0);  // modes come from the callers, already masked by the kernel
  int code = exit_code::kOk;
  std::optional<VaultLock> lock;
  StagingStore* staging = nullptr;
  auto conflicts = std::make_shared<VaultConflictNamer>();
  AccessKeys keys;
  std::unique_ptr<Format> format =
      OpenFormatOrReport(request, lock, staging, conflicts, keys, code);
  if (!format) {
    readiness.Report(code);
    return code;
  }
  FsOptions fs_options = request.fs;
  AccessSetup access_setup;
  code = SetUpAccess(request, keys, fs_options.access, access_setup);
  if (code == exit_code::kOk && !AuditMountEvent(access_setup, access::AuditOp::kMount).ok()) {
    code = MountError(exit_code::kAuditUnwritable, "the audit log cannot be written");
  }
  if (code != exit_code::kOk) {
    readiness.Report(code);
    return code;
  }
  LockDaemonMemory();
  FileSystem fs(std::move(format), fs_options);
  if (!fs.PrepareToServe().ok()) {
    code = MountError(exit_code::kIoError, "the root of the store cannot be read");
    readiness.Report(code);
    return code;
  }
  MountOptions mount = request.mount;
  mount.policy_watcher = access_setup.watcher.get();
  mount.audit_log = access_setup.audit.get();
  mount.after_init = [&mount] { RaiseReadahead(mount.mountpoint); };
  const char* served = request.ciphertext ? "ciphertext view" : request.plain ? "folder" : "vault";
  auto on_mounted = [&] {
    if (request.foreground) {
      std::cout << "cadcanfs: " << served
                << " mounted; serving in the foreground (stop with cadcanfs "
                   "unmount or Ctrl-C)"
                << std::endl;
      return;
    }
    std::cout << "cadcanfs: " << served << " mounted (daemon pid " << getpid() << ")" << std::endl;
    DetachStdio();
    InitLogging(LogOptions{LogTarget::kSyslog,
                           request.mount.debug ? spdlog::level::debug : spdlog::level::warn});
    // Relative vault, key and mountpoint paths are resolved by now.
    (void)!chdir("/");
    readiness.Report(exit_code::kOk);
  };
  // Started before the mount: resolving the mountpoint once it is mounted would ask
  // this very daemon, which serves nothing until ServeMount runs its loop.
  std::unique_ptr<ControlServer> control = StartControlSocket(request.mount.mountpoint,
                                                              request.ciphertext ? "ciphertext"
                                                              : request.plain    ? "plain"
                                                                                 : "vault",
                                                              staging, stop_waiting_for_uploads);
  Status s = ServeMount(fs, mount, on_mounted);
  if (staging != nullptr) WaitForUploads(*staging);
  conflicts->Detach();  // what is still pending stays journalled for the next mount
  control.reset();
  if (access_setup.audit) {
    Status ended = AuditMountEvent(access_setup, access::AuditOp::kUnmount);
    if (ended.ok()) ended = access_setup.audit->Close();
    if (!ended.ok()) spdlog::error("the audit log was not closed cleanly: {}", ended.message());
  }
  if (!s.ok()) {
    code = s.code() == Code::kBusy              ? exit_code::kMountFailed
           : s.code() == Code::kInvalidArgument ? exit_code::kUsage
                                                : exit_code::kIoError;
    std::cerr << "cadcanfs: mounting failed: " << s.message() << "\n";
    readiness.Report(code);
    return code;
  }
  return exit_code::kOk;
}

int Daemonize(const MountRequest& request) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return MountError(exit_code::kInternal, "cannot create a pipe");
  pid_t pid = fork();
  if (pid < 0) return MountError(exit_code::kInternal, "cannot start the daemon");
  if (pid == 0) {
    close(fds[0]);
    setsid();
    Readiness readiness(fds[1]);
    _exit(Serve(request, readiness));
  }
  close(fds[1]);
  uint8_t code = 0;
  ssize_t n;
  do {
    n = read(fds[0], &code, 1);
  } while (n < 0 && errno == EINTR);
  close(fds[0]);
  if (n == 1) {
    if (code != exit_code::kOk) waitpid(pid, nullptr, 0);
    return code;
  }
  waitpid(pid, nullptr, 0);
  return MountError(exit_code::kMountFailed, "the daemon exited before the mount was live");
}

// "123", "64K", "300G", "2T" (powers of 1024); nullopt if malformed or overflowing.
std::optional<uint64_t> ParseByteSize(std::string_view text) {
  int shift = 0;
  if (!text.empty()) {
    switch (text.back()) {
      case 'K':
        shift = 10;
        break;
      case 'M':
        shift = 20;
        break;
      case 'G':
        shift = 30;
        break;
      case 'T':
        shift = 40;
        break;
      default:
        break;
    }
  }
  if (shift != 0) text.remove_suffix(1);
  std::optional<uint64_t> number = ParseDecimal(std::string(text));
  if (!number || *number > (UINT64_MAX >> shift)) return std::nullopt;
  return *number << shift;
}

Args MountArgs() {
  return Args(
      WithStoreFlags({"o", "uid", "gid", "max-file-size", "config", "cache-dir", "cache-size",
                      "policy", "audit-log", "poll-interval", "pseudonymized-view", "user-view"}),
      WithStoreSwitches({"f", "foreground", "read-only", "debug", "writeback-cache", "plain",
                         "ciphertext", "audit-relaxed", "audit-sync", "shared-store",
                         "audit-syslog"}));
}

int ConfigError(const Status& status) {
  std::cerr << "cadcanfs: " << status.message() << "\n";
  return exit_code::kBadServiceConfig;
}

int MountWith(const Args& args);

}  // namespace

int RunMount(const std::vector<std::string>& argv) {
  Args args = MountArgs();
  if (std::string e = args.Parse(argv); !e.empty()) return UsageError(e);
  std::optional<std::string> config_path = args.Value("config");
  if (!config_path) return MountWith(args);
  Result<MountConfig> config = ReadMountConfig(*config_path);
  if (!config.ok()) return ConfigError(config.status());
  std::string error;
  std::vector<std::string> merged = MergeConfigIntoArgs(*config, argv, args, error);
  if (!error.empty()) return UsageError(error);
  Args from_config = MountArgs();
  if (std::string e = from_config.Parse(merged); !e.empty())
    return ConfigError(Status::Error(Code::kInvalidArgument, "the config file sets " + e));
  return MountWith(from_config);
}

namespace {

// --policy, --audit-log, --audit-relaxed, --audit-sync. Paths are made absolute: the
// daemon leaves its working directory, and the watcher reloads by path.
int AccessFlagsInto(const Args& args, MountRequest& request) {
  if (auto policy = args.Value("policy")) request.policy_path = AbsolutePath(*policy);
  if (auto audit = args.Value("audit-log")) request.audit_path = AbsolutePath(*audit);
  request.audit_relaxed = args.Has("audit-relaxed");
  request.audit_sync = args.Has("audit-sync");
  request.audit_syslog = args.Has("audit-syslog");
  if ((request.audit_relaxed || request.audit_sync || request.audit_syslog) &&
      !request.audit_path) {
    return UsageError("--audit-relaxed, --audit-sync and --audit-syslog need --audit-log FILE");
  }
  if (auto view = args.Value("pseudonymized-view")) {
    if (!request.policy_path) {
      return UsageError("--pseudonymized-view needs --policy FILE: the policy says who sees what");
    }
    if (request.plain) {
      return UsageError(
          "--pseudonymized-view needs a vault: case codes derive from the vault's name key");
    }
    request.mount.pseudonymized_mountpoint = *view;
    if (int code = UsableMountpointOrReport(request.mount.pseudonymized_mountpoint);
        code != exit_code::kOk) {
      return code;
    }
  }
  for (const std::string& view : args.Values("user-view")) {
    if (!request.policy_path || !request.mount.allow_other) {
      return UsageError(
          "--user-view needs --policy FILE and -o allow_other: the view is its owner's, under "
          "the policy");
    }
    std::string mountpoint = view;
    if (int code = UsableMountpointOrReport(mountpoint); code != exit_code::kOk) return code;
    struct stat st;
    if (stat(mountpoint.c_str(), &st) != 0) {
      return MountError(exit_code::kMountFailed, "a --user-view directory cannot be read");
    }
    // The directory's owner is the one user the view answers.
    request.mount.user_views.push_back(MountOptions::UserView{mountpoint, st.st_uid});
  }
  if (request.plain && request.audit_path && !request.keys.key_file) {
    return UsageError(
        "--audit-log on a --plain mount needs --key-file: the audit key derives from a master "
        "key");
  }
  return exit_code::kOk;
}

int MountWith(const Args& args) {
  if (args.positional().size() != 2) return UsageError("mount takes a VAULT and a MOUNTPOINT");
  MountRequest request;
  request.vault_path = args.positional()[0];
  request.onedrive = OneDriveAccessFrom(args);
  request.plain = args.Has("plain");
  request.ciphertext = args.Has("ciphertext");
  if (request.plain && request.ciphertext) {
    return UsageError("--plain and --ciphertext exclude each other");
  }
  request.cache_dir = args.Value("cache-dir");
  request.keys = KeyOptionsFrom(args);
  request.foreground = args.Has("f") || args.Has("foreground");
  request.mount.mountpoint = args.positional()[1];
  request.mount.read_only = args.Has("read-only");
  request.mount.debug = args.Has("debug");
  request.mount.writeback_cache = args.Has("writeback-cache");
  request.mount.shared_store = args.Has("shared-store");
  request.fs.shared_store = request.mount.shared_store;
  for (const std::string& value : args.Values("o")) {
    std::stringstream list(value);
    std::string option;
    while (std::getline(list, option, ',')) {
      if (option == "allow_other") {
        request.mount.allow_other = true;
      } else if (option == "ro") {
        request.mount.read_only = true;
      } else if (!option.empty()) {
        request.mount.fuse_options.push_back(option);
      }
    }
  }
  if (request.ciphertext) {
    // The stored objects, unchanged: nothing may write, so nothing is staged.
    request.plain = true;
    request.mount.read_only = true;
  }
  request.fs.read_only = request.mount.read_only;
  request.fs.owner_is_caller = geteuid() == 0;
  // (uint32_t)-1 means "no change" to chown(2), so it is not a usable id.
  auto id_of = [&args](const char* flag) -> std::optional<std::optional<uint32_t>> {
    auto value = args.Value(flag);
    if (!value) return std::optional<uint32_t>();
    std::optional<uint64_t> id = ParseDecimal(*value);
    if (!id || *id >= 0xffffffffULL) return std::nullopt;
    return std::optional<uint32_t>(static_cast<uint32_t>(*id));
  };
  auto uid = id_of("uid");
  auto gid = id_of("gid");
  if (!uid || !gid) return UsageError("--uid and --gid take a numeric id");
  request.fs.force_uid = *uid;
  request.fs.force_gid = *gid;
  if (auto value = args.Value("max-file-size")) {
    std::optional<uint64_t> limit = ParseByteSize(*value);
    if (!limit || *limit == 0) {
      return UsageError("--max-file-size takes a size such as 300G (K, M, G, T: powers of 1024)");
    }
    request.fs.max_file_size = *limit;
  }
  if (auto value = args.Value("cache-size")) {
    request.cache_size = ParseByteSize(*value);
    if (!request.cache_size) {
      return UsageError("--cache-size takes a size such as 256M, or 0 to turn the cache off");
    }
  }
  if (auto value = args.Value("poll-interval")) {
    std::optional<uint64_t> seconds = ParseDecimal(*value);
    if (!seconds || *seconds == 0 || *seconds > 86400) {
      return UsageError("--poll-interval takes a whole number of seconds from 1 to 86400");
    }
    request.mount.poll_interval = std::chrono::seconds(*seconds);
  }
  if (int code = AccessFlagsInto(args, request); code != exit_code::kOk) return code;
  if (int code = UsableMountpointOrReport(request.mount.mountpoint); code != exit_code::kOk) {
    return code;
  }
  if (int code = CheckFuseDevice(); code != exit_code::kOk) return code;
  InitLogging(LogOptions{LogTarget::kStderr,
                         request.mount.debug ? spdlog::level::debug : spdlog::level::warn});
  if (request.foreground) {
    Readiness none(-1);
    return Serve(request, none);
  }
  return Daemonize(request);
}

}  // namespace

int RunUnmount(const std::vector<std::string>& argv) {
  Args args({"config"}, {"lazy", "only-dead", "force"});
  if (std::string e = args.Parse(argv); !e.empty()) return UsageError(e);
  std::string mountpoint;
  if (std::optional<std::string> config_path = args.Value("config")) {
    Result<MountConfig> config = ReadMountConfig(*config_path);
    if (!config.ok()) return ConfigError(config.status());
    if (!args.positional().empty() || !config->mountpoint) {
      return UsageError("unmount takes a MOUNTPOINT or a --config file that sets one");
    }
    mountpoint = *config->mountpoint;
  } else {
    if (args.positional().size() != 1) return UsageError("unmount takes a MOUNTPOINT");
    mountpoint = args.positional()[0];
  }
  // A unit clears a dead mount before it starts, and must leave a live one alone.
  struct stat st;
  if (args.Has("only-dead") && (stat(mountpoint.c_str(), &st) == 0 || errno != ENOTCONN)) {
    return exit_code::kOk;
  }
  std::string type = MountAt(mountpoint).type;
  if (type.rfind("fuse", 0) != 0) {
    return MountError(exit_code::kNotFound, "no cadcanfs vault is mounted there");
  }
  const bool lazy = args.Has("lazy");
  // The daemon's control socket, found while the mount still answers: after the
  // unmount it says how the uploads go, or is told to leave them (--force).
  const Result<std::string> control = ControlSocketPathFor(mountpoint);
  if (control.ok() && args.Has("force")) {
    (void)AskControlSocket(*control, {{"op", "stop-waiting"}});
  }
  // A lazy unmount's daemon lives until the last file closes: nothing to wait for.
  const std::optional<pid_t> daemon = control.ok() && !lazy ? DaemonPidOf(*control) : std::nullopt;
  auto follow_daemon = [&] {
    if (control.ok()) FollowUploads(*control);
    if (daemon) WaitForDaemonExit(*daemon);
  };
  if (geteuid() == 0) {
    if (umount2(mountpoint.c_str(), lazy ? MNT_DETACH : 0) != 0) {
      if (errno == EBUSY) {
        return MountError(exit_code::kMountFailed,
                          "the mount is busy: close the files open in it, or use --lazy");
      }
      return MountError(exit_code::kMountFailed, "unmounting failed");
    }
    follow_daemon();
    return exit_code::kOk;
  }
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, STDERR_FILENO);
    if (lazy) {
      execlp("fusermount3", "fusermount3", "-u", "-z", "--", mountpoint.c_str(), nullptr);
    } else {
      execlp("fusermount3", "fusermount3", "-u", "--", mountpoint.c_str(), nullptr);
    }
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return MountError(exit_code::kMountFailed,
                      "unmounting failed: close the files open in it, or use --lazy");
  }
  follow_daemon();
  return exit_code::kOk;
}

}  // namespace cadcanfs::cli
