// Process-wide hardening applied by every entry point before any key is loaded.
#ifndef CADCANFS_COMMON_PROCESS_H_
#define CADCANFS_COMMON_PROCESS_H_

namespace cadcanfs {

// Sets RLIMIT_CORE to 0 and PR_SET_DUMPABLE to 0, so no core dump (and no ptrace by
// other unprivileged processes) can expose keys or plaintext. Returns true if both
// succeeded.
bool DisableCoreDumps();

}  // namespace cadcanfs

#endif  // CADCANFS_COMMON_PROCESS_H_
