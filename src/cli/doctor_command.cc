// cadcanfs doctor: checks this system for what a mount needs and for places where keys
// or plaintext could reach a disk, and prints one line per finding. It changes
// nothing, except for a test mount in a fresh temporary directory, which it removes.
#define FUSE_USE_VERSION 312

#include <dirent.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cadcanfs/vault/key_source.h"
#include "exit_codes.h"
#include "ops_commands.h"
#include "service_config.h"
#include "support.h"

namespace cadcanfs::cli {

namespace {

enum class Severity { kOk, kWarning, kProblem };

struct Finding {
  Severity severity;
  std::string check;   // what was checked, e.g. "swap"
  std::string detail;  // one sentence: what was found and, if needed, what to do
};

constexpr unsigned kFuseMiscMajor = 10;
constexpr unsigned kFuseMinor = 229;

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

bool FileHasLine(const std::string& path, const std::string& wanted) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    size_t begin = line.find_first_not_of(" \t");
    size_t end = line.find_last_not_of(" \t\r");
    if (begin != std::string::npos && line.substr(begin, end - begin + 1) == wanted) return true;
  }
  return false;
}

// ---- FUSE ----------------------------------------------------------------------------

struct ProtocolVersion {
  unsigned major = 0;
  unsigned minor = 0;
};

void RecordProtocol(void* userdata, fuse_conn_info* conn) {
  auto* version = static_cast<ProtocolVersion*>(userdata);
  version->major = conn->proto_major;
  version->minor = conn->proto_minor;
}

void QuietFuseLog(enum fuse_log_level, const char*, va_list) {}

// Mounts an empty filesystem on a fresh temporary directory and answers the kernel's
// INIT, which carries the kernel's FUSE protocol version. This is the one way to learn
// it, and it proves that mounting works here.
Result<ProtocolVersion> ProbeKernelFuse() {
  char dir[] = "/tmp/cadcanfs-doctor-XXXXXX";
  if (mkdtemp(dir) == nullptr) return Status::FromErrno(errno, "creating a test mountpoint");
  fuse_set_log_func(QuietFuseLog);
  ProtocolVersion version;
  fuse_lowlevel_ops ops{};
  ops.init = RecordProtocol;
  const char* argv[] = {"cadcanfs-doctor", "-o", "fsname=cadcanfs-doctor,subtype=cadcanfs"};
  fuse_args args = FUSE_ARGS_INIT(3, const_cast<char**>(argv));
  fuse_session* session = fuse_session_new(&args, &ops, sizeof(ops), &version);
  fuse_opt_free_args(&args);
  Status status;
  if (session == nullptr) {
    status = Status::Error(Code::kInternal, "libfuse could not start a session");
  } else if (fuse_session_mount(session, dir) != 0) {
    status = Status::Error(Code::kBusy, "the kernel refused a test mount");
  } else {
    fuse_buf buffer{};
    if (fuse_session_receive_buf(session, &buffer) > 0) fuse_session_process_buf(session, &buffer);
    std::free(buffer.mem);
    fuse_session_unmount(session);
    if (version.major == 0) status = Status::Error(Code::kIoError, "the kernel sent no INIT");
  }
  if (session != nullptr) fuse_session_destroy(session);
  rmdir(dir);
  if (!status.ok()) return status;
  return version;
}

Finding CheckKernelFuse() {
  struct utsname kernel {};
  uname(&kernel);
  std::string linux_release = std::string("Linux ") + kernel.release;
  if (!FileHasLine("/proc/filesystems", "nodev\tfuse") &&
      !FileHasLine("/proc/filesystems", "nodev fuse")) {
    return {Severity::kProblem, "FUSE in the kernel",
            "the fuse module is not loaded (" + linux_release + "): run modprobe fuse"};
  }
  Result<ProtocolVersion> version = ProbeKernelFuse();
  if (!version.ok()) {
    return {Severity::kProblem, "FUSE in the kernel",
            version.status().message() + " (" + linux_release + ")"};
  }
  return {Severity::kOk, "FUSE in the kernel",
          "protocol " + std::to_string(version->major) + "." + std::to_string(version->minor) +
              ", a test mount worked (" + linux_release + ")"};
}

Finding CheckFuseDevice() {
  const std::string check = "/dev/fuse";
  struct stat st;
  if (stat("/dev/fuse", &st) != 0) {
    return {Severity::kProblem, check, "missing: install fuse3 and run modprobe fuse"};
  }
  if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != kFuseMiscMajor ||
      minor(st.st_rdev) != kFuseMinor) {
    return {Severity::kProblem, check, "is not the FUSE character device (10:229)"};
  }
  int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    return {Severity::kProblem, check,
            std::string("cannot be opened read-write: ") + std::strerror(errno)};
  }
  close(fd);
  if ((st.st_mode & 0666) != 0666) {
    return {geteuid() == 0 ? Severity::kOk : Severity::kProblem, check,
            "opens read-write, but only root can mount (mode not 0666)"};
  }
  return {Severity::kOk, check, "opens read-write"};
}

Finding CheckUserAllowOther(bool allow_other_wanted) {
  const std::string check = "user_allow_other";
  const bool present = FileHasLine("/etc/fuse.conf", "user_allow_other");
  if (geteuid() == 0) {
    return {Severity::kOk, check, "not needed: root mounts with allow_other directly"};
  }
  if (!allow_other_wanted) {
    return {Severity::kOk, check,
            present ? "set in /etc/fuse.conf" : "not needed without -o allow_other"};
  }
  if (!present) {
    return {Severity::kProblem, check,
            "-o allow_other by a non-root user needs a line user_allow_other in /etc/fuse.conf"};
  }
  return {Severity::kOk, check, "set in /etc/fuse.conf, as -o allow_other needs"};
}

// ---- keys ----------------------------------------------------------------------------

struct KeyToCheck {
  std::string path;
  bool passphrase = false;
  std::string origin;  // "--key-file", "the config file", "the systemd credential"
};

std::optional<KeyToCheck> KeyFromOptions(const Args& args,
                                         const std::optional<MountConfig>& config) {
  if (auto path = args.Value("key-file")) return KeyToCheck{*path, false, "--key-file"};
  if (config && config->key_file) return KeyToCheck{*config->key_file, false, "the config file"};
  if (const char* dir = std::getenv("CREDENTIALS_DIRECTORY")) {
    std::string credential = std::string(dir) + "/cadcanfs.key";
    if (::access(credential.c_str(), F_OK) == 0) {
      return KeyToCheck{credential, false, "the systemd credential"};
    }
  }
  if (auto path = args.Value("passphrase-file")) {
    return KeyToCheck{*path, true, "--passphrase-file"};
  }
  return std::nullopt;
}

// Whether `inner` lies inside the directory `outer` (both resolved).
bool IsInside(const std::string& inner, const std::string& outer) {
  char inner_real[PATH_MAX];
  char outer_real[PATH_MAX];
  if (realpath(inner.c_str(), inner_real) == nullptr ||
      realpath(outer.c_str(), outer_real) == nullptr) {
    return false;
  }
  std::string prefix = std::string(outer_real) + "/";
  return std::string(inner_real).rfind(prefix, 0) == 0;
}

Finding CheckKey(const std::optional<KeyToCheck>& key, const std::optional<MountConfig>& config) {
  const std::string check = "key file";
  if (!key) {
    return {Severity::kOk, check,
            "not checked: give --key-file, --passphrase-file or --config to check one"};
  }
  Result<SecretBytes> secret =
      key->passphrase ? ReadPassphraseFile(key->path) : ReadKeyFile(key->path);
  if (!secret.ok()) {
    return {Severity::kProblem, check, "from " + key->origin + ": " + secret.status().message()};
  }
  if (config && config->vault && IsInside(key->path, *config->vault)) {
    return {Severity::kProblem, check,
            "from " + key->origin +
                " lies inside the vault, so every backup of the vault carries its key: move it"};
  }
  struct stat st;
  if (stat(key->path.c_str(), &st) == 0 && st.st_uid != geteuid() && st.st_uid != 0) {
    return {Severity::kWarning, check,
            "from " + key->origin + " belongs to another user, who can read and replace it"};
  }
  return {Severity::kOk, check,
          "from " + key->origin + ": well-formed, readable by its owner only"};
}

// ---- swap and core dumps -------------------------------------------------------------

// Whether the block device at /sys/class/block/NAME (or a device it sits on, as LVM on
// LUKS does) is a dm-crypt mapping.
bool IsEncryptedBlockDevice(const std::string& sys_dir, int depth = 0) {
  if (depth > 8) return false;
  if (ReadFirstLine(sys_dir + "/dm/uuid").rfind("CRYPT-", 0) == 0) return true;
  DIR* slaves = opendir((sys_dir + "/slaves").c_str());
  if (slaves == nullptr) return false;
  bool encrypted = false;
  while (struct dirent* entry = readdir(slaves)) {
    std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    if (IsEncryptedBlockDevice("/sys/class/block/" + name, depth + 1)) encrypted = true;
  }
  closedir(slaves);
  return encrypted;
}

// Undoes the octal escapes (\040 for a space) of /proc/swaps.
std::string UnescapeProcPath(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 3 < text.size()) {
      out.push_back(static_cast<char>(std::strtol(text.substr(i + 1, 3).c_str(), nullptr, 8)));
      i += 3;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

// Whether one /proc/swaps entry keeps pages off any unencrypted disk.
bool SwapIsSafe(const std::string& name, const std::string& type) {
  if (name.rfind("/dev/zram", 0) == 0) return true;  // compressed RAM, not a disk
  struct stat st;
  if (stat(name.c_str(), &st) != 0) return false;
  dev_t device = type == "partition" && S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
  std::string sys_dir =
      "/sys/dev/block/" + std::to_string(major(device)) + ":" + std::to_string(minor(device));
  return IsEncryptedBlockDevice(sys_dir);
}

Finding CheckSwap() {
  const std::string check = "swap";
  std::ifstream swaps("/proc/swaps");
  std::string line;
  std::getline(swaps, line);  // the header
  int total = 0;
  std::vector<std::string> unencrypted;
  while (std::getline(swaps, line)) {
    std::istringstream fields(line);
    std::string name;
    std::string type;
    if (!(fields >> name >> type)) continue;
    ++total;
    name = UnescapeProcPath(name);
    if (!SwapIsSafe(name, type)) unencrypted.push_back(name);
  }
  if (total == 0) return {Severity::kOk, check, "none"};
  if (unencrypted.empty()) return {Severity::kOk, check, "encrypted or in RAM (zram)"};
  std::string list;
  for (const std::string& name : unencrypted) list += (list.empty() ? "" : ", ") + name;
  return {Severity::kProblem, check,
          list +
              " is not encrypted: plaintext read from the vault can be paged out to disk; "
              "use encrypted swap (cryptsetup), zram or none"};
}

Finding CheckOwnCoreDumps() {
  const std::string check = "core dumps of cadcanfs";
  struct rlimit limit {};
  getrlimit(RLIMIT_CORE, &limit);
  if (limit.rlim_max != 0 || prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return {Severity::kProblem, check, "could not be switched off (RLIMIT_CORE, PR_SET_DUMPABLE)"};
  }
  return {Severity::kOk, check, "off (RLIMIT_CORE 0, not dumpable): keys never reach a core file"};
}

// Other programs open the mounted files too (CAD software, viewers), and their core
// dumps would hold plaintext.
Finding CheckSystemCoreDumps() {
  const std::string check = "core dumps of other programs";
  std::string pattern = ReadFirstLine("/proc/sys/kernel/core_pattern");
  if (pattern.rfind("|", 0) == 0) {
    if (pattern.find("systemd-coredump") != std::string::npos &&
        FileHasLine("/etc/systemd/coredump.conf", "Storage=none")) {
      return {Severity::kOk, check, "handed to systemd-coredump, which stores none"};
    }
    if (pattern.find("/bin/false") != std::string::npos) {
      return {Severity::kOk, check, "discarded (kernel.core_pattern pipes to /bin/false)"};
    }
    return {Severity::kWarning, check,
            "handed to a crash handler that may store them on disk; set Storage=none in "
            "/etc/systemd/coredump.conf or kernel.core_pattern=|/bin/false"};
  }
  return {Severity::kWarning, check,
          "written as files (kernel.core_pattern=" + pattern +
              ") by programs whose limit allows it; set kernel.core_pattern=|/bin/false"};
}

const char* Label(Severity severity) {
  switch (severity) {
    case Severity::kOk:
      return "ok      ";
    case Severity::kWarning:
      return "warning ";
    case Severity::kProblem:
      return "problem ";
  }
  return "";
}

}  // namespace

int RunDoctor(const std::vector<std::string>& argv) {
  Args args(WithKeyFlags({"config"}), {"allow-other"});
  if (std::string e = args.Parse(argv); !e.empty()) return UsageError(e);
  if (!args.positional().empty()) return UsageError("doctor takes no arguments, only options");
  std::optional<MountConfig> config;
  if (auto path = args.Value("config")) {
    Result<MountConfig> read = ReadMountConfig(*path);
    if (!read.ok()) {
      std::cerr << "cadcanfs: " << read.status().message() << "\n";
      return exit_code::kBadServiceConfig;
    }
    config = std::move(read).value();
  }
  const bool allow_other = args.Has("allow-other") || (config && config->allow_other);
  std::vector<Finding> findings = {
      CheckFuseDevice(),
      CheckKernelFuse(),
      CheckUserAllowOther(allow_other),
      CheckKey(KeyFromOptions(args, config), config),
      CheckSwap(),
      CheckOwnCoreDumps(),
      CheckSystemCoreDumps(),
  };
  int problems = 0;
  int warnings = 0;
  for (const Finding& finding : findings) {
    std::cout << Label(finding.severity) << finding.check << ": " << finding.detail << "\n";
    problems += finding.severity == Severity::kProblem;
    warnings += finding.severity == Severity::kWarning;
  }
  std::cout << "cadcanfs doctor: " << problems << (problems == 1 ? " problem, " : " problems, ")
            << warnings << (warnings == 1 ? " warning" : " warnings") << "\n";
  return problems > 0 ? exit_code::kDoctorProblems : exit_code::kOk;
}

}  // namespace cadcanfs::cli
