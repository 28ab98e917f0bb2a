// Commands for running cadcanfs as a system service: --version, doctor, and the
// mount(8) helper behind /etc/fstab lines of type fuse.cadcanfs.
#ifndef CADCANFS_CLI_OPS_COMMANDS_H_
#define CADCANFS_CLI_OPS_COMMANDS_H_

#include <string>
#include <vector>

namespace cadcanfs::cli {

// Prints the version, the vault formats it reads and the library versions.
int RunVersion(const std::vector<std::string>& argv);

// Checks this system for what cadcanfs needs; exit_code::kDoctorProblems on a problem.
int RunDoctor(const std::vector<std::string>& argv);

// Whether the process was started as a mount helper: by mount(8) as mount.cadcanfs
// or mount.fuse.cadcanfs (from `argv0`), or by mount.fuse3 for a "cadcanfs#VAULT"
// line, which runs `cadcanfs VAULT MOUNTPOINT -o OPTIONS` (a first argument holding a
// '/' is a path, never a command).
bool IsMountHelperCall(const std::string& argv0, const std::string& first_argument);

// Mounts as mount(8) asks: `SOURCE MOUNTPOINT [-sfnv] [-o OPTIONS] [-t TYPE]`.
int RunMountHelper(const std::vector<std::string>& argv);

}  // namespace cadcanfs::cli

#endif  // CADCANFS_CLI_OPS_COMMANDS_H_
