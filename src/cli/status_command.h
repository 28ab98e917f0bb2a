// `cadcanfs status MNT`: what a running mount still owes its store, without names; and
// the daemon's side of it (the control socket's handler), and unmount's wait.
#ifndef CADCANFS_CLI_STATUS_COMMAND_H_
#define CADCANFS_CLI_STATUS_COMMAND_H_

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cadcanfs/store/staging_store.h"
#include "control_socket.h"

namespace cadcanfs::cli {

int RunStatus(const std::vector<std::string>& argv);

// The daemon's control socket for the mount at `mountpoint` (null, after a warning in
// the log, if it cannot be made: the mount works without it). `staging` is null for a
// store that writes in place; `stop_waiting` is set by a "stop-waiting" request.
std::unique_ptr<ControlServer> StartControlSocket(const std::string& mountpoint, const char* format,
                                                  StagingStore* staging,
                                                  std::atomic<bool>& stop_waiting);

// The reply to {"op":"status"}.
nlohmann::json StatusReply(const char* format, const StagingStore* staging);

// After `cadcanfs unmount`: while the daemon behind `socket_path` still uploads, says
// how much is left on stderr every few seconds; returns once it is done or gone.
void FollowUploads(const std::string& socket_path);

// The pid of the daemon behind `socket_path`, if it answers.
std::optional<pid_t> DaemonPidOf(const std::string& socket_path);

// After `cadcanfs unmount`: returns once process `pid` has exited (or after 30 s, with a
// line on stderr), so that a command run next finds the daemon's locks and sign-in
// free: a daemon still tearing down may yet redeem a refresh token, say.
void WaitForDaemonExit(pid_t pid);

}  // namespace cadcanfs::cli

#endif  // CADCANFS_CLI_STATUS_COMMAND_H_
