#include "service_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "cadcanfs/common/unique_fd.h"

namespace cadcanfs::cli {

namespace {

// Keys that stand for a `mount` flag taking a value.
const std::set<std::string> kValueKeys = {
    "key-file",  "passphrase-file",    "uid",        "gid",           "max-file-size", "policy",
    "audit-log", "cache-dir",          "cache-size", "poll-interval", "token-file",    "graph-url",
    "drive",     "pseudonymized-view", "user-view"};
// Keys that stand for a `mount` switch: "yes" sets it, "no" leaves it off.
const std::set<std::string> kSwitchKeys = {"read-only",     "writeback-cache", "debug",
                                           "audit-relaxed", "audit-sync",      "plain",
                                           "shared-store",  "audit-syslog"};
// The largest config file read: a few lines are expected, anything bigger is a mistake.
constexpr off_t kMaxConfigSize = 64 * 1024;

std::string Trim(const std::string& text) {
  const char* space = " \t\r";
  size_t begin = text.find_first_not_of(space);
  if (begin == std::string::npos) return "";
  size_t end = text.find_last_not_of(space);
  return text.substr(begin, end - begin + 1);
}

Status LineError(size_t line, const std::string& why) {
  return Status::Error(Code::kInvalidArgument,
                       "line " + std::to_string(line) + " of the config file: " + why);
}

std::optional<bool> ParseYesNo(const std::string& value) {
  if (value == "yes" || value == "true" || value == "1") return true;
  if (value == "no" || value == "false" || value == "0") return false;
  return std::nullopt;
}

// Opens the file and checks that only its owner can change it.
Result<std::string> ReadConfigText(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    return Status::Error(Code::kInvalidArgument,
                         std::string("cannot read the config file: ") + std::strerror(errno));
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Status::Error(Code::kInvalidArgument, "the config file is not a regular file");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return Status::Error(Code::kInvalidArgument,
                         "the config file is writable by group or others; run chmod go-w on it");
  }
  if (st.st_size > kMaxConfigSize) {
    return Status::Error(Code::kInvalidArgument, "the config file is too large");
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t total = 0;
  while (total < text.size()) {
    ssize_t n = read(fd.get(), text.data() + total, text.size() - total);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    total += static_cast<size_t>(n);
  }
  text.resize(total);
  return text;
}

// Applies one "key = value" entry to `config`.
Status ApplyEntry(size_t line, const std::string& key, const std::string& value,
                  std::set<std::string>& seen, MountConfig& config) {
  if (key != "options" && !seen.insert(key).second) {
    return LineError(line, "'" + key + "' is set twice");
  }
  if (value.empty()) return LineError(line, "'" + key + "' has no value");
  if (key == "vault") {
    config.vault = value;
  } else if (key == "mountpoint") {
    config.mountpoint = value;
  } else if (key == "options") {
    config.flags.push_back("-o=" + value);
    std::stringstream list(value);
    std::string option;
    while (std::getline(list, option, ',')) {
      if (option == "allow_other") config.allow_other = true;
    }
  } else if (kValueKeys.count(key)) {
    if (key == "key-file") config.key_file = value;
    if (key == "passphrase-file") config.passphrase_file = value;
    config.flags.push_back("--" + key + "=" + value);
    config.flag_names.push_back(key);
  } else if (kSwitchKeys.count(key)) {
    std::optional<bool> on = ParseYesNo(value);
    if (!on) return LineError(line, "'" + key + "' takes yes or no");
    if (*on) {
      config.flags.push_back("--" + key);
      config.flag_names.push_back(key);
    }
  } else {
    return LineError(line, "unknown key '" + key + "'");
  }
  return Status::Ok();
}

}  // namespace

Result<MountConfig> ReadMountConfig(const std::string& path) {
  Result<std::string> text = ReadConfigText(path);
  if (!text.ok()) return text.status();
  MountConfig config;
  std::set<std::string> seen;
  std::istringstream lines(*text);
  std::string raw;
  size_t number = 0;
  while (std::getline(lines, raw)) {
    ++number;
    std::string entry = Trim(raw);
    if (entry.empty() || entry[0] == '#') continue;
    size_t eq = entry.find('=');
    if (eq == std::string::npos) return LineError(number, "expected key = value");
    CADCANFS_RETURN_IF_ERROR(
        ApplyEntry(number, Trim(entry.substr(0, eq)), Trim(entry.substr(eq + 1)), seen, config));
  }
  return config;
}

std::vector<std::string> MergeConfigIntoArgs(const MountConfig& config,
                                             const std::vector<std::string>& argv,
                                             const Args& parsed, std::string& error) {
  for (const std::string& name : config.flag_names) {
    if (parsed.Value(name) || parsed.Has(name)) {
      error = "--" + name + " is set both on the command line and in the config file";
      return {};
    }
  }
  std::vector<std::string> merged = config.flags;
  merged.insert(merged.end(), argv.begin(), argv.end());
  if (!parsed.positional().empty()) {
    if (config.vault || config.mountpoint) {
      error = "give the vault and mountpoint on the command line or in the config file, not both";
      return {};
    }
    return merged;
  }
  if (!config.vault || !config.mountpoint) {
    error = "the config file must set both vault and mountpoint";
    return {};
  }
  // After "--" every argument is positional, so paths starting with '-' stay paths.
  if (std::find(argv.begin(), argv.end(), "--") == argv.end()) merged.push_back("--");
  merged.push_back(*config.vault);
  merged.push_back(*config.mountpoint);
  return merged;
}

}  // namespace cadcanfs::cli
