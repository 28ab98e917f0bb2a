// cadcanfs login / logout, the built binary against the Graph emulator.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

#include "cadcanfs/graph/auth.h"
#include "cadcanfs/graph/token_store.h"
#include "cadcanfs/vault/key_source.h"
#include "graph/emulator.h"

namespace cadcanfs::graph {
namespace {

using testing::SharedEmulator;

struct CommandRun {
  int exit_code = -1;
  std::string out;
};

class LoginCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    emu_.Control("POST", "/reset");
    emu_.Control("POST", "/settings", {{"device_code_interval", 0}});
    char pattern[] = "/tmp/login-command-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    key_file_ = dir_ + "/key";
    token_file_ = dir_ + "/tokens";
    int fd = open(key_file_.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    ASSERT_GE(fd, 0);
    const std::string hex(64, 'a');
    ASSERT_EQ(write(fd, hex.data(), hex.size()), 64);
    close(fd);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs the binary; `on_line` sees each line of its standard output as it comes.
  CommandRun Cadcanfs(const std::vector<std::string>& args,
                      const std::function<void(const std::string&)>& on_line = {}) {
    int pipe_fds[2];
    EXPECT_EQ(pipe(pipe_fds), 0);
    const pid_t pid = fork();
    if (pid == 0) {
      dup2(pipe_fds[1], 1);
      dup2(pipe_fds[1], 2);
      close(pipe_fds[0]);
      std::vector<char*> argv{const_cast<char*>(CADCANFS_BINARY)};
      for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
      argv.push_back(nullptr);
      execv(CADCANFS_BINARY, argv.data());
      _exit(127);
    }
    close(pipe_fds[1]);
    CommandRun run;
    FILE* out = fdopen(pipe_fds[0], "r");
    char line[4096];
    while (fgets(line, sizeof line, out) != nullptr) {
      run.out += line;
      if (on_line) on_line(line);
    }
    fclose(out);
    int status = 0;
    waitpid(pid, &status, 0);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return run;
  }

  std::vector<std::string> LoginArgs() {
    return {"login",       "--token-file",   token_file_,   "--key-file",          key_file_,
            "--login-url", emu_.login_url(), "--client-id", "cadcanfs-test-client"};
  }

  // Acts on the code the binary prints, as the person at the browser would.
  std::function<void(const std::string&)> Act(const std::string& action) {
    return [this, action](const std::string& line) {
      std::smatch match;
      if (std::regex_search(line, match, std::regex("enter the code (\\S+)"))) {
        emu_.Control("POST", "/device/" + action, {{"user_code", match[1].str()}});
      }
    };
  }

  testing::Emulator& emu_ = SharedEmulator();
  std::string dir_;
  std::string key_file_;
  std::string token_file_;
};

TEST_F(LoginCommandTest, LoginStoresAWorkingEncryptedTokenAndLogoutDeletesIt) {
  CommandRun login = Cadcanfs(LoginArgs(), Act("approve"));
  ASSERT_EQ(login.exit_code, 0) << login.out;
  struct stat info = {};
  ASSERT_EQ(stat(token_file_.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);

  auto key = LoadKeyForNewVault(KeyOptions{key_file_, std::nullopt});
  ASSERT_TRUE(key.ok());
  auto stored =
      TokenStore(token_file_, SecretBytes::CopyOf(key->master.token_store_key().span())).Load();
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  EXPECT_EQ(stored->settings.client_id, "cadcanfs-test-client");
  EXPECT_EQ(stored->settings.scope, "Files.ReadWrite offline_access");
  // The stored refresh token signs in.
  auto http = HttpClient::Create(HttpClientOptions{});
  ASSERT_TRUE(http.ok());
  Authenticator auth(**http, stored->settings);
  auth.SetRefreshToken(std::move(stored->refresh_token));
  EXPECT_TRUE(auth.AccessToken().ok());
  // Neither the token nor anything like it was printed.
  EXPECT_EQ(login.out.find("token="), std::string::npos);

  CommandRun logout = Cadcanfs({"logout", "--token-file", token_file_});
  EXPECT_EQ(logout.exit_code, 0) << logout.out;
  EXPECT_FALSE(std::filesystem::exists(token_file_));
  EXPECT_EQ(Cadcanfs({"logout", "--token-file", token_file_}).exit_code, 0);
  std::ofstream(token_file_) << "not a token store";
  EXPECT_EQ(Cadcanfs({"logout", "--token-file", token_file_}).exit_code, 51);
  EXPECT_TRUE(std::filesystem::exists(token_file_));
}

TEST_F(LoginCommandTest, DeclinedAndRefusedLoginsExitWith50) {
  CommandRun declined = Cadcanfs(LoginArgs(), Act("decline"));
  EXPECT_EQ(declined.exit_code, 50) << declined.out;
  EXPECT_NE(declined.out.find("cadcanfs: login failed: the sign-in was declined"),
            std::string::npos)
      << declined.out;
  EXPECT_FALSE(std::filesystem::exists(token_file_));
  CommandRun expired = Cadcanfs(LoginArgs(), Act("expire"));
  EXPECT_EQ(expired.exit_code, 50) << expired.out;
}

TEST_F(LoginCommandTest, UsageAndKeyProblems) {
  EXPECT_EQ(Cadcanfs({"login", "--key-file", key_file_}).exit_code, 2);
  EXPECT_EQ(Cadcanfs({"logout"}).exit_code, 2);
  std::vector<std::string> plain_http = LoginArgs();
  plain_http[6] = "http://login.example.com";
  EXPECT_EQ(Cadcanfs(plain_http).exit_code, 2);
  const std::string passphrase = dir_ + "/pass";
  std::ofstream(passphrase) << "correct horse battery";
  chmod(passphrase.c_str(), 0600);
  CommandRun by_passphrase = Cadcanfs({"login", "--token-file", token_file_, "--passphrase-file",
                                       passphrase, "--login-url", emu_.login_url()});
  EXPECT_EQ(by_passphrase.exit_code, 4) << by_passphrase.out;
}

}  // namespace
}  // namespace cadcanfs::graph
