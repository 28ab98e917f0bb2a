// The Graph emulator (tests/graph_emulator) as a child process for the graph tests.
//
// One emulator serves the whole test binary: graph_test runs as one ctest entry, so
// Python starts once. Each test resets faults, counters and settings in SetUp and
// works in a folder of its own.
#ifndef CADCANFS_TESTS_GRAPH_EMULATOR_H_
#define CADCANFS_TESTS_GRAPH_EMULATOR_H_

#include <sys/types.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cadcanfs/graph/http_client.h"

namespace cadcanfs::graph::testing {

class Emulator {
 public:
  // Starts the emulator with `root` as its drive; waits for its port file.
  static std::unique_ptr<Emulator> Start(const std::string& root);
  ~Emulator();

  // One control-API call; the JSON reply (a failed call fails the test).
  nlohmann::json Control(const std::string& method, const std::string& path,
                         const nlohmann::json& body = nlohmann::json::object());
  // A fresh access + refresh token pair, without the device flow.
  nlohmann::json IssueTokens(const std::string& scope = "Files.ReadWrite offline_access");
  int64_t Counter(const std::string& kind);

  const nlohmann::json& info() const { return info_; }
  std::string graph_url() const { return info_["graph_url"]; }
  std::string login_url() const { return info_["login_url"]; }
  std::string root_id() const { return info_["root_id"]; }
  HttpClient& http() { return *http_; }

 private:
  Emulator() = default;
  pid_t pid_ = -1;
  std::string dir_;
  nlohmann::json info_;
  std::unique_ptr<HttpClient> http_;
};

// The emulator of this test binary (started by the environment in emulator.cc).
Emulator& SharedEmulator();

}  // namespace cadcanfs::graph::testing

#endif  // CADCANFS_TESTS_GRAPH_EMULATOR_H_
