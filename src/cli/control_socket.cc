#include "control_socket.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/common/log.h"
#include "cadcanfs/crypto/kdf.h"

namespace cadcanfs::cli {

namespace {

// Enough of the mountpoint's hash to tell mounts apart; the path itself never shows.
constexpr size_t kNameTagBytes = 16;
// A request or reply is a few hundred bytes; anything far larger is not ours.
constexpr size_t kMaxMessage = 64 * 1024;
// A peer that connects and then says nothing does not hold the server up for long.
constexpr int kPeerTimeoutSeconds = 2;

Result<sockaddr_un> AddressOf(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) {
    return Status::Error(Code::kNameTooLong, "the control socket's path is too long");
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return address;
}

void SetTimeouts(int fd) {
  timeval timeout{.tv_sec = kPeerTimeoutSeconds, .tv_usec = 0};
  (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
}

Status SendAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "cannot write to the control socket");
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// One line, without its newline; what comes before EOF counts as a line too.
Result<std::string> ReceiveLine(int fd) {
  std::string line;
  char buffer[4096];
  for (;;) {
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "cannot read from the control socket");
    if (n == 0) return line;
    line.append(buffer, static_cast<size_t>(n));
    if (const size_t end = line.find('\n'); end != std::string::npos) return line.substr(0, end);
    if (line.size() > kMaxMessage) {
      return Status::Error(Code::kCorrupt, "a control message is too long");
    }
  }
}

// Root and the user the daemon runs as may ask; nobody else, even if the socket's
// mode or a passed descriptor would let them connect.
bool PeerAllowed(int connection) {
  ucred peer{};
  socklen_t length = sizeof(peer);
  if (getsockopt(connection, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0) return false;
  return peer.uid == 0 || peer.uid == geteuid();
}

Status MakePrivateDirectory(const std::string& path) {
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "cannot create the control socket directory");
  }
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    return Status::FromErrno(errno, "cannot create the control socket directory");
  }
  if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
    return Status::Error(Code::kPermissionDenied,
                         "the control socket directory must be private (mode 0700, ours)");
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> ControlSocketDirectory() {
  if (geteuid() == 0) return std::string("/run/cadcanfs");
  const char* runtime = getenv("XDG_RUNTIME_DIR");
  if (runtime != nullptr && runtime[0] == '/') return std::string(runtime) + "/cadcanfs";
  // No session runtime directory (a cron job, su): the systemd one, if it exists.
  const std::string fallback = "/run/user/" + std::to_string(geteuid());
  struct stat st;
  if (stat(fallback.c_str(), &st) == 0 && st.st_uid == geteuid()) return fallback + "/cadcanfs";
  return Status::Error(Code::kNotFound,
                       "there is no runtime directory for control sockets (set XDG_RUNTIME_DIR)");
}

Result<std::string> ControlSocketPathFor(const std::string& mountpoint) {
  char resolved[PATH_MAX];
  if (realpath(mountpoint.c_str(), resolved) == nullptr) {
    return Status::FromErrno(errno, "cannot resolve the mountpoint");
  }
  CADCANFS_ASSIGN_OR_RETURN(std::string dir, ControlSocketDirectory());
  const Digest tag = Sha256(AsBytes(std::string_view(resolved)));
  return dir + "/" + HexEncode(ByteSpan(tag.data(), kNameTagBytes)) + ".sock";
}

Result<std::unique_ptr<ControlServer>> ControlServer::Start(const std::string& path,
                                                            Handler handler) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) {
    return Status::Error(Code::kInvalidArgument, "the control socket needs an absolute path");
  }
  CADCANFS_RETURN_IF_ERROR(MakePrivateDirectory(path.substr(0, slash)));
  CADCANFS_ASSIGN_OR_RETURN(sockaddr_un address, AddressOf(path));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "cannot create the control socket");
  UniqueFd listener(fd);
  // A live daemon's socket (a second mount attempt on its mountpoint) stays its own;
  // one left by a daemon that died answers nobody and is replaced.
  if (int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0); probe >= 0) {
    UniqueFd owned(probe);
    if (connect(probe, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
      return Status::Error(Code::kAlreadyExists,
                           "another cadcanfs daemon serves this mountpoint's control socket");
    }
  }
  (void)unlink(path.c_str());
  const mode_t old_umask = umask(0177);
  const int bound = bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address));
  const int saved = errno;
  umask(old_umask);
  if (bound != 0) return Status::FromErrno(saved, "cannot create the control socket");
  if (listen(listener.get(), 8) != 0) {
    (void)unlink(path.c_str());
    return Status::FromErrno(errno, "cannot listen on the control socket");
  }
  int event = eventfd(0, EFD_CLOEXEC);
  if (event < 0) {
    (void)unlink(path.c_str());
    return Status::FromErrno(errno, "cannot create the control socket");
  }
  return std::unique_ptr<ControlServer>(
      new ControlServer(path, std::move(listener), UniqueFd(event), std::move(handler)));
}

ControlServer::ControlServer(std::string path, UniqueFd listener, UniqueFd wakeup, Handler handler)
    : path_(std::move(path)),
      listener_(std::move(listener)),
      wakeup_(std::move(wakeup)),
      handler_(std::move(handler)),
      thread_([this] { Serve(); }) {}

ControlServer::~ControlServer() {
  const uint64_t one = 1;
  (void)!write(wakeup_.get(), &one, sizeof(one));
  thread_.join();
  (void)unlink(path_.c_str());
}

void ControlServer::Serve() {
  for (;;) {
    pollfd fds[2] = {{.fd = listener_.get(), .events = POLLIN, .revents = 0},
                     {.fd = wakeup_.get(), .events = POLLIN, .revents = 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("control socket: poll failed; status requests stop being answered");
      return;
    }
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    int connection = accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (connection < 0) continue;
    UniqueFd owned(connection);
    Answer(owned.get());
  }
}

void ControlServer::Answer(int connection) {
  if (!PeerAllowed(connection)) {
    (void)SendAll(connection, R"({"error":"not allowed"})"
                              "\n");
    return;
  }
  SetTimeouts(connection);
  auto line = ReceiveLine(connection);
  if (!line.ok()) return;
  nlohmann::json request = nlohmann::json::parse(*line, nullptr, false);
  nlohmann::json reply;
  if (!request.is_object() || !request.contains("op") || !request["op"].is_string()) {
    reply = {{"error", "malformed request"}};
  } else {
    reply = handler_(request);
  }
  (void)SendAll(connection, reply.dump() + "\n");
}

Result<nlohmann::json> AskControlSocket(const std::string& path, const nlohmann::json& request) {
  CADCANFS_ASSIGN_OR_RETURN(sockaddr_un address, AddressOf(path));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "cannot create a socket");
  UniqueFd connection(fd);
  if (connect(connection.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    if (errno == ENOENT || errno == ECONNREFUSED) {
      return Status::Error(Code::kNotFound, "no cadcanfs daemon answers for this mountpoint");
    }
    return Status::FromErrno(errno, "cannot reach the mount's control socket");
  }
  SetTimeouts(connection.get());
  CADCANFS_RETURN_IF_ERROR(SendAll(connection.get(), request.dump() + "\n"));
  CADCANFS_ASSIGN_OR_RETURN(std::string line, ReceiveLine(connection.get()));
  nlohmann::json reply = nlohmann::json::parse(line, nullptr, false);
  if (!reply.is_object()) return Status::Error(Code::kCorrupt, "the daemon's reply is malformed");
  if (reply.contains("error")) {
    return Status::Error(Code::kPermissionDenied,
                         "the daemon refused the request: " + reply.value("error", ""));
  }
  return reply;
}

}  // namespace cadcanfs::cli
