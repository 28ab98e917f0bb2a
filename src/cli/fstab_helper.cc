// The mount(8) helper. An /etc/fstab line such as
//
//   /srv/office/vault /srv/office/cases fuse.cadcanfs
//   key_file=/etc/cadcanfs/keys/office.key,allow_other,nofail,x-systemd.automount 0 0
//
// reaches cadcanfs as `mount.fuse.cadcanfs SOURCE DIR -o rw,key_file=...,allow_other
// -t fuse.cadcanfs` (libmount strips x-* and nofail first). The old form
// "cadcanfs#SOURCE DIR fuse ..." goes through mount.fuse3, which runs
// `cadcanfs SOURCE DIR -o OPTIONS` after adding dev,suid. Either way the options are
// translated into a `cadcanfs mount` command line, which detaches once the mount is
// live, as mount(8) expects of a helper.
#include <set>
#include <sstream>

#include "ops_commands.h"
#include "support.h"

namespace cadcanfs::cli {

namespace {

// Options meant for mount(8), systemd or other fstab readers, never for the filesystem.
bool IsMountCommandOption(const std::string& option) {
  static const std::set<std::string> kNames = {"defaults", "auto",   "noauto", "user",
                                               "nouser",   "users",  "owner",  "group",
                                               "_netdev",  "nofail", "rw"};
  return kNames.count(option) > 0 || option.rfind("x-", 0) == 0 || option.rfind("comment=", 0) == 0;
}

// Turns one fstab option into `mount` flags; plain FUSE options collect in `fuse`.
void TranslateOption(const std::string& option, std::vector<std::string>& flags,
                     std::vector<std::string>& fuse) {
  auto value_of = [&option](const std::string& prefix) -> std::optional<std::string> {
    if (option.rfind(prefix, 0) != 0) return std::nullopt;
    return option.substr(prefix.size());
  };
  if (option.empty() || IsMountCommandOption(option)) return;
  if (auto path = value_of("key_file=")) {
    flags.push_back("--key-file=" + *path);
  } else if (auto path = value_of("passphrase_file=")) {
    flags.push_back("--passphrase-file=" + *path);
  } else if (auto size = value_of("max_file_size=")) {
    flags.push_back("--max-file-size=" + *size);
  } else if (option == "writeback_cache") {
    flags.push_back("--writeback-cache");
  } else if (option == "ro") {
    flags.push_back("--read-only");
  } else {
    fuse.push_back(option);
  }
}

// A cluster of mount(8)'s single-letter helper flags: -s (sloppy), -f (fake), -n (no
// mtab), -v (verbose).
bool IsHelperSwitches(const std::string& arg) {
  return arg.size() >= 2 && arg[0] == '-' && arg.find_first_not_of("sfnv", 1) == std::string::npos;
}

}  // namespace

bool IsMountHelperCall(const std::string& argv0, const std::string& first_argument) {
  std::string name = argv0.substr(argv0.find_last_of('/') + 1);
  return name == "mount.cadcanfs" || name == "mount.fuse.cadcanfs" ||
         first_argument.find('/') != std::string::npos;
}

int RunMountHelper(const std::vector<std::string>& argv) {
  if (argv.size() < 2 || argv[0].empty() || argv[0][0] == '-') {
    return UsageError("mount.cadcanfs takes a VAULT, a MOUNTPOINT and -o OPTIONS");
  }
  std::vector<std::string> flags;
  std::vector<std::string> fuse;
  bool fake = false;
  for (size_t i = 2; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if ((arg == "-o" || arg == "-t" || arg == "-N") && i + 1 < argv.size()) {
      if (arg == "-o") {
        std::stringstream list(argv[i + 1]);
        std::string option;
        while (std::getline(list, option, ',')) TranslateOption(option, flags, fuse);
      }
      ++i;  // -t names our own type; -N (a mount namespace) does not apply to FUSE
    } else if (IsHelperSwitches(arg)) {
      fake = fake || arg.find('f') != std::string::npos;
    } else {
      return UsageError("mount.cadcanfs does not understand " + arg);
    }
  }
  if (fake) return 0;
  if (!fuse.empty()) {
    std::string joined;
    for (const std::string& option : fuse) joined += (joined.empty() ? "" : ",") + option;
    flags.push_back("-o=" + joined);
  }
  flags.push_back("--");
  flags.push_back(argv[0]);
  flags.push_back(argv[1]);
  return RunMount(flags);
}

}  // namespace cadcanfs::cli
