// The per-vault configuration file the systemd unit reads (/etc/cadcanfs/NAME.conf,
// given to `mount`, `unmount`, `doctor` and `fsck` as --config FILE). One "key = value" per
// line, each key named after the `mount` flag it stands for, so the file and the
// command line never disagree about what an option means:
//
//   # /etc/cadcanfs/office.conf
//   vault = /srv/office/vault
//   mountpoint = /srv/office/cases
//   options = allow_other,nosuid,nodev
//   writeback-cache = no
//
// Lines starting with '#' and blank lines are ignored; values run to the end of the
// line (no quoting, no inline comments: paths may hold '#'). Keys reserved for later
// versions (policy, audit-log, token-file, graph-url) are refused with a sentence that
// says so, rather than silently ignored.
#ifndef CADCANFS_CLI_SERVICE_CONFIG_H_
#define CADCANFS_CLI_SERVICE_CONFIG_H_

#include <optional>
#include <string>
#include <vector>

#include "args.h"
#include "cadcanfs/common/status.h"

namespace cadcanfs::cli {

struct MountConfig {
  std::optional<std::string> vault;
  std::optional<std::string> mountpoint;
  std::optional<std::string> key_file;
  std::optional<std::string> passphrase_file;
  // Every other key as the `mount` flag it stands for ("--uid=1000", "-o=allow_other").
  std::vector<std::string> flags;
  // The flag names those entries set (without dashes), to detect a clash with the
  // command line.
  std::vector<std::string> flag_names;
  // Whether `options` asked for allow_other (doctor checks user_allow_other then).
  bool allow_other = false;
};

// Reads and validates the file. Errors (kInvalidArgument) are one sentence naming the
// line; a file that group or others can write is refused, since it decides which vault
// and key a root daemon uses.
Result<MountConfig> ReadMountConfig(const std::string& path);

// Merges the config into a command line of `mount`: the config's flags first, then
// `argv`, then the vault and mountpoint as positional arguments when `argv` has none.
// Usage errors (a flag set in both places, positionals in both places, a config
// without a vault or mountpoint) come back as a sentence in `error`.
std::vector<std::string> MergeConfigIntoArgs(const MountConfig& config,
                                             const std::vector<std::string>& argv,
                                             const Args& parsed, std::string& error);

}  // namespace cadcanfs::cli

#endif  // CADCANFS_CLI_SERVICE_CONFIG_H_
