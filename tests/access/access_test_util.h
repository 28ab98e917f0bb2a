// Shared fixtures for the access layer tests: a fixed user/group database, policy
// files on disk and a fixed case-code key.
#ifndef CADCANFS_TESTS_ACCESS_ACCESS_TEST_UTIL_H_
#define CADCANFS_TESTS_ACCESS_ACCESS_TEST_UTIL_H_

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "cadcanfs/access/policy.h"
#include "cadcanfs/crypto/secret.h"

namespace cadcanfs::access::testing {

// alice and carol work at SmithDental, dave at JonesOrtho; bob and erin are designers.
inline const std::map<std::string, uint32_t> kUsers = {
    {"alice", 1001}, {"bob", 1002}, {"carol", 1003}, {"dave", 1004}, {"erin", 1005}};
inline const std::map<std::string, uint32_t> kGroups = {{"smith", 2001}, {"jones", 2002}};

inline IdLookup FakeIds() {
  auto find = [](const std::map<std::string, uint32_t>& table) {
    return [&table](const std::string& name) -> std::optional<uint32_t> {
      auto it = table.find(name);
      if (it == table.end()) return std::nullopt;
      return it->second;
    };
  };
  return IdLookup{find(kUsers), find(kGroups)};
}

// The example of docs/access-policy.md, with the fake users.
inline constexpr char kExamplePolicy[] = R"({
  "version": 1,
  "case_depth": 2,
  "root_bypass": false,
  "principals": {
    "smith-staff": {"groups": ["smith"], "role": "office", "office": "SmithDental"},
    "smith-auditor": {"users": ["carol"], "role": "office", "office": "SmithDental",
                      "access": "read"},
    "jones-staff": {"users": ["dave", 1099], "role": "office", "office": "JonesOrtho"},
    "bob": {"users": ["bob"], "role": "designer", "pseudonymize": true},
    "erin": {"users": ["erin"], "role": "designer"}
  },
  "assignments": [
    {"principal": "bob", "office": "SmithDental", "case": "Doe_Jane_2026-03-01", "access": "write"},
    {"principal": "bob", "office": "JonesOrtho", "case": "Roe_*", "access": "read"},
    {"principal": "erin", "office": "SmithDental", "case": "Doe_Jane_2026-03-01", "access": "read"}
  ]
})";

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/cadcanfs-access-XXXXXX";
    path_ = mkdtemp(pattern);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void WriteFile(const std::string& path, const std::string& text, mode_t mode = 0600) {
  std::ofstream(path, std::ios::trunc) << text;
  chmod(path.c_str(), mode);
}

inline SecretBytes TestKey(uint8_t fill) {
  SecretBytes key(32);
  for (size_t i = 0; i < key.size(); ++i) key.data()[i] = static_cast<uint8_t>(fill + i);
  return key;
}

}  // namespace cadcanfs::access::testing

#endif  // CADCANFS_TESTS_ACCESS_ACCESS_TEST_UTIL_H_
