// Logging through spdlog with a redacting formatter.
//
// The rule is that callers never pass names, paths, content or keys to a log call.
// The formatter is the second line of defence: before any sink sees a message it
// replaces every token that looks like a path (contains '/') or like encoded
// material (a run of 16 or more base32/base64/hex characters) with "<redacted>".
// File identifiers are deliberately loggable: tokens that start with "fid:" are
// kept, because a tamper report must say which file failed without naming it.
//
// Thread safety: the logger is safe to use from any thread after InitLogging().
#ifndef CADCANFS_COMMON_LOG_H_
#define CADCANFS_COMMON_LOG_H_

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

namespace cadcanfs {

enum class LogTarget { kStderr, kSyslog };

struct LogOptions {
  LogTarget target = LogTarget::kStderr;
  spdlog::level::level_enum level = spdlog::level::warn;
};

// Installs the redacting default logger. Safe to call more than once.
void InitLogging(const LogOptions& options);

// Returns `message` with names, paths and encoded material replaced. Exposed so
// tests can check the rules directly.
std::string RedactForLog(std::string_view message);

}  // namespace cadcanfs

#endif  // CADCANFS_COMMON_LOG_H_
