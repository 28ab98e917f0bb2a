#include "status_command.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <iostream>
#include <thread>

#include "args.h"
#include "cadcanfs/common/log.h"
#include "exit_codes.h"
#include "support.h"

namespace cadcanfs::cli {

namespace {

// How often an unmount waiting for uploads says what is left.
constexpr auto kProgressInterval = std::chrono::seconds(2);
// How long unmount waits for a daemon that has nothing left to upload to exit.
constexpr auto kDaemonExitWait = std::chrono::seconds(30);

int NoMount() {
  std::cerr << "cadcanfs: no cadcanfs mount answers at that mountpoint\n";
  return exit_code::kNoMount;
}

std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  snprintf(text, sizeof(text), unit == 0 ? "%.0f %s" : "%.1f %s", value, kUnits[unit]);
  return text;
}

void PrintHuman(const nlohmann::json& reply) {
  std::cout << "format: " << reply.value("format", "?") << "\n";
  if (!reply.value("staging", false)) {
    std::cout << "pending commits: 0 (the store is written in place; nothing is staged)\n";
    return;
  }
  std::cout << "cache dir: " << reply.value("cache_dir", "") << "\n";
  const uint64_t pending = reply.value("pending_commits", uint64_t{0});
  std::cout << "pending commits: " << pending;
  if (pending > 0) {
    std::cout << " (" << HumanBytes(reply.value("pending_bytes", uint64_t{0})) << ", oldest "
              << reply.value("oldest_age_seconds", uint64_t{0}) << " s)";
  }
  std::cout << "\nfailed attempts (retried): " << reply.value("failed_attempts", uint64_t{0})
            << "\n";
  if (reply.contains("last_error") && reply["last_error"].is_object()) {
    const nlohmann::json& error = reply["last_error"];
    std::cout << "last error: " << error.value("code", "") << ": " << error.value("message", "")
              << "\n";
  }
  for (const nlohmann::json& entry : reply.value("pending", nlohmann::json::array())) {
    std::cout << "  stage " << entry.value("stage_id", "") << ": "
              << HumanBytes(entry.value("bytes", uint64_t{0})) << ", waiting "
              << entry.value("age_seconds", uint64_t{0}) << " s, "
              << entry.value("failed_attempts", uint64_t{0}) << " failed attempts\n";
  }
}

}  // namespace

nlohmann::json StatusReply(const char* format, const StagingStore* staging) {
  nlohmann::json reply = {
      {"v", 1}, {"format", format}, {"pid", getpid()}, {"staging", staging != nullptr}};
  if (staging == nullptr) {
    reply["pending_commits"] = 0;
    reply["pending_bytes"] = 0;
    return reply;
  }
  const StagingStatus status = staging->status();
  reply["cache_dir"] = status.spill_dir;
  reply["pending_commits"] = status.pending_commits;
  reply["pending_bytes"] = status.pending_bytes;
  reply["oldest_age_seconds"] = status.oldest_age.count();
  reply["failed_attempts"] = status.failed_attempts;
  reply["last_error"] = nullptr;
  if (status.last_error_code != Code::kOk) {
    reply["last_error"] = {{"code", std::string(CodeName(status.last_error_code))},
                           {"message", status.last_error}};
  }
  nlohmann::json pending = nlohmann::json::array();
  for (const PendingCommit& commit : status.pending) {
    pending.push_back({{"stage_id", commit.stage_id},
                       {"bytes", commit.bytes},
                       {"age_seconds", commit.age.count()},
                       {"failed_attempts", commit.failed_attempts}});
  }
  reply["pending"] = std::move(pending);
  return reply;
}

std::unique_ptr<ControlServer> StartControlSocket(const std::string& mountpoint, const char* format,
                                                  StagingStore* staging,
                                                  std::atomic<bool>& stop_waiting) {
  auto path = ControlSocketPathFor(mountpoint);
  if (!path.ok()) {
    spdlog::warn("no control socket, `cadcanfs status` will not answer: {}",
                 path.status().message());
    return nullptr;
  }
  auto server = ControlServer::Start(
      *path, [format, staging, &stop_waiting](const nlohmann::json& request) -> nlohmann::json {
        const std::string op = request.value("op", "");
        if (op == "status") return StatusReply(format, staging);
        if (op == "stop-waiting") {
          stop_waiting.store(true);
          return {{"v", 1}, {"stopping", true}};
        }
        return {{"error", "unknown request"}};
      });
  if (!server.ok()) {
    spdlog::warn("no control socket, `cadcanfs status` will not answer: {}",
                 server.status().message());
    return nullptr;
  }
  return std::move(server).value();
}

void FollowUploads(const std::string& socket_path) {
  auto last_report = std::chrono::steady_clock::now() - kProgressInterval;
  for (;;) {
    auto reply = AskControlSocket(socket_path, {{"op", "status"}});
    if (!reply.ok()) return;  // the daemon is gone: it finished or gave up
    const uint64_t pending = reply->value("pending_commits", uint64_t{0});
    if (pending == 0) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_report >= kProgressInterval) {
      std::cerr << "cadcanfs: unmounted; waiting for " << pending << " uploads ("
                << HumanBytes(reply->value("pending_bytes", uint64_t{0}))
                << ") to reach the store (Ctrl-C stops watching, they go on; "
                   "`cadcanfs unmount --force` leaves them for the next mount)\n";
      last_report = now;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

std::optional<pid_t> DaemonPidOf(const std::string& socket_path) {
  auto reply = AskControlSocket(socket_path, {{"op", "status"}});
  if (!reply.ok() || !reply->contains("pid") || !(*reply)["pid"].is_number_integer()) {
    return std::nullopt;
  }
  return (*reply)["pid"].get<pid_t>();
}

namespace {

// A zombie has exited: where no init reaps orphans (a container), it lingers.
bool ProcessIsRunning(pid_t pid) {
  if (kill(pid, 0) != 0 && errno != EPERM) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  const size_t name_end = line.rfind(')');
  return name_end == std::string::npos || name_end + 2 >= line.size() || line[name_end + 2] != 'Z';
}

}  // namespace

void WaitForDaemonExit(pid_t pid) {
  const auto deadline = std::chrono::steady_clock::now() + kDaemonExitWait;
  while (ProcessIsRunning(pid)) {
    if (std::chrono::steady_clock::now() >= deadline) {
      std::cerr << "cadcanfs: unmounted; the daemon (pid " << pid << ") is still shutting down\n";
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int RunStatus(const std::vector<std::string>& argv) {
  Args args({}, {"json"});
  if (std::string e = args.Parse(argv); !e.empty()) return UsageError(e);
  if (args.positional().size() != 1) return UsageError("status takes a MOUNTPOINT");
  auto path = ControlSocketPathFor(args.positional()[0]);
  if (!path.ok()) {
    if (path.status().sys_errno() == ENOTCONN) {
      std::cerr << "cadcanfs: the mountpoint is a dead FUSE mount: run cadcanfs unmount on it\n";
      return exit_code::kStaleMount;
    }
    return NoMount();
  }
  auto reply = AskControlSocket(*path, {{"op", "status"}});
  if (!reply.ok()) {
    if (reply.status().code() == Code::kNotFound) return NoMount();
    return Fail(reply.status(), Stage::kData);
  }
  if (args.Has("json")) {
    std::cout << reply->dump() << "\n";
  } else {
    PrintHuman(*reply);
  }
  return exit_code::kOk;
}

}  // namespace cadcanfs::cli
