// The mount's control socket: how `cadcanfs status` and `cadcanfs unmount` talk to a
// running daemon.
//
// An AF_UNIX stream socket, mode 0600, owned by the mounting user, under /run/cadcanfs/
// for root or $XDG_RUNTIME_DIR/cadcanfs/ otherwise, named after a hash of the
// mountpoint's real path (so the name says nothing about what is mounted). The daemon
// creates it once the mount is live and removes it when it exits. Each connection
// carries one request line of JSON and gets one reply line of JSON; peers other than
// root and the mounting user are refused (SO_PEERCRED), whatever the socket's mode.
//
// Requests: {"op":"status"} and {"op":"stop-waiting"} (give up waiting for uploads at
// unmount; what is left stays journalled for the next mount).
#ifndef CADCANFS_CLI_CONTROL_SOCKET_H_
#define CADCANFS_CLI_CONTROL_SOCKET_H_

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "cadcanfs/common/status.h"
#include "cadcanfs/common/unique_fd.h"

namespace cadcanfs::cli {

// The directory control sockets live in for this user.
Result<std::string> ControlSocketDirectory();

// The control socket of a mount at `mountpoint` (resolved to its real path first,
// which needs the mount to answer). kNotFound if the mountpoint does not exist.
Result<std::string> ControlSocketPathFor(const std::string& mountpoint);

// Serves requests on a control socket from a thread of its own until destroyed, then
// removes the socket.
class ControlServer {
 public:
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

  // Creates the socket at `path` (replacing a stale one) and starts serving.
  static Result<std::unique_ptr<ControlServer>> Start(const std::string& path, Handler handler);
  ~ControlServer();

  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

 private:
  ControlServer(std::string path, UniqueFd listener, UniqueFd wakeup, Handler handler);
  void Serve();
  void Answer(int connection);

  const std::string path_;
  const UniqueFd listener_;
  const UniqueFd wakeup_;  // an eventfd: written to stop the thread
  const Handler handler_;
  std::thread thread_;
};

// Sends one request to the control socket at `path` and returns the reply. kNotFound
// when no daemon listens there.
Result<nlohmann::json> AskControlSocket(const std::string& path, const nlohmann::json& request);

}  // namespace cadcanfs::cli

#endif  // CADCANFS_CLI_CONTROL_SOCKET_H_
