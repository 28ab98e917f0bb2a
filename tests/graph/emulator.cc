#include "graph/emulator.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace cadcanfs::graph::testing {
namespace {

constexpr int kBigFolderChildren = 2500;
std::unique_ptr<Emulator> g_emulator;

class EmulatorEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    char pattern[] = "/tmp/graph-test-drive-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    drive_parent_ = pattern;
    const std::string root = drive_parent_ + "/root";
    // A big folder present before start, for the listing cost test.
    std::filesystem::create_directories(root + "/big");
    for (int i = 0; i < kBigFolderChildren; ++i) {
      std::ofstream(root + "/big/f" + std::to_string(i)) << i;
    }
    g_emulator = Emulator::Start(root);
    ASSERT_NE(g_emulator, nullptr);
  }
  void TearDown() override {
    g_emulator.reset();
    std::filesystem::remove_all(drive_parent_);
  }

 private:
  std::string drive_parent_;
};

[[maybe_unused]] const auto* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new EmulatorEnvironment);

}  // namespace

Emulator& SharedEmulator() { return *g_emulator; }

std::unique_ptr<Emulator> Emulator::Start(const std::string& root) {
  std::unique_ptr<Emulator> emulator(new Emulator);
  char pattern[] = "/tmp/graph-test-emu-XXXXXX";
  if (mkdtemp(pattern) == nullptr) return nullptr;
  emulator->dir_ = pattern;
  const std::string port_file = emulator->dir_ + "/ports.json";
  const std::string script =
      std::string(CADCANFS_SOURCE_DIR) + "/tests/graph_emulator/graph_emulator.py";
  const pid_t pid = fork();
  if (pid == 0) {
    // The emulator dies with the test process, even when that crashes, and keeps its
    // output out of the test's (a pipe held open by it would outlive the test).
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    const std::string log = emulator->dir_ + "/emulator.log";
    const int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (log_fd >= 0) {
      dup2(log_fd, 1);
      dup2(log_fd, 2);
    }
    execlp("python3", "python3", "-B", script.c_str(), "--root", root.c_str(), "--port", "0",
           "--port-file", port_file.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  emulator->pid_ = pid;
  for (int i = 0; i < 300; ++i) {
    std::ifstream in(port_file);
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = nlohmann::json::parse(text.str(), nullptr, false);
    if (!parsed.is_discarded() && parsed.is_object() && parsed.contains("control_url")) {
      emulator->info_ = parsed;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (emulator->info_.is_null()) return nullptr;
  auto http = HttpClient::Create(HttpClientOptions{});
  if (!http.ok()) return nullptr;
  emulator->http_ = std::move(http).value();
  return emulator;
}

Emulator::~Emulator() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  std::filesystem::remove_all(dir_);
}

nlohmann::json Emulator::Control(const std::string& method, const std::string& path,
                                 const nlohmann::json& body) {
  HttpRequest request;
  request.method = method;
  request.url = info_["control_url"].get<std::string>() + path;
  if (method != "GET") {
    const std::string text = body.dump();
    request.body.assign(text.begin(), text.end());
    request.headers.emplace_back("Content-Type", "application/json");
  }
  auto reply = http_->Send(request);
  EXPECT_TRUE(reply.ok()) << reply.status().ToString();
  if (!reply.ok()) return nullptr;
  EXPECT_EQ(reply->status, 200) << method << " " << path << ": " << reply->BodyText();
  return nlohmann::json::parse(reply->BodyText(), nullptr, false);
}

nlohmann::json Emulator::IssueTokens(const std::string& scope) {
  return Control("POST", "/tokens", {{"scope", scope}});
}

int64_t Emulator::Counter(const std::string& kind) {
  auto counters = Control("GET", "/counters");
  const auto& requests = counters["requests"];
  return requests.contains(kind) ? requests[kind].get<int64_t>() : 0;
}

}  // namespace cadcanfs::graph::testing
