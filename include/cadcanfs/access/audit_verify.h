// Reading and verifying audit logs written by AuditLog (audit_log.h).
//
// VerifyAuditLogs checks one chain that may span several files (given oldest first:
// rotated files, then the live one). It reports the first problem:
//   - a line that does not authenticate: edited, or inserted by someone without the key;
//   - a line whose "prev" is not the previous line's mac, with its "seq" telling which:
//     a jump forward means lines were removed, a step back means lines were reordered
//     or repeated;
//   - a chain that starts mid-way without a "rotate" line: lines cut from the start;
//   - a last line cut off (no newline): a truncated tail;
//   - a log that ends on anything but "unmount" or "rotate": still being written, the
//     daemon died, or whole lines were cut from the end.
//
// Thread safety: pure functions.
#ifndef CADCANFS_ACCESS_AUDIT_VERIFY_H_
#define CADCANFS_ACCESS_AUDIT_VERIFY_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cadcanfs/common/status.h"
#include "cadcanfs/crypto/kdf.h"
#include "cadcanfs/crypto/secret.h"

namespace cadcanfs::access {

// One line, split and parsed but not yet authenticated.
struct AuditRecord {
  std::string_view body;  // the bytes the mac covers
  Digest mac{};
  uint64_t seq = 0;
  Digest prev{};
  std::string time;
  std::string event;
  uint32_t uid = 0;
  std::string user;
  int64_t pid = 0;
  std::string process;
  std::string case_code;
  std::string file_id;
  std::string to_case;
  std::string attempt;
  std::string result;
};

// kCorrupt unless `line` (without its newline) has the documented shape.
Result<AuditRecord> ParseAuditLine(std::string_view line);

enum class VerifyOutcome {
  kIntact,     // every line authenticates, the chain is whole, the end is clean
  kOpenEnd,    // as kIntact, but the last line is not "unmount" or "rotate"
  kTruncated,  // the last line is cut off
  kTampered,   // edited, inserted, removed or reordered lines
  kWrongKey,   // no line of the first file authenticates: another key wrote it
};

struct VerifyReport {
  VerifyOutcome outcome = VerifyOutcome::kIntact;
  // Where the problem is: index into the files given, and 1-based line number.
  size_t file_index = 0;
  uint64_t line = 0;
  std::string problem;             // one sentence, no names; empty when intact
  std::vector<std::string> notes;  // harmless findings, e.g. a remount after a crash
  uint64_t lines = 0;              // lines that verified
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
};

// `files` are the contents of the log files, oldest first.
VerifyReport VerifyAuditLogs(std::span<const std::string> files, const SecretBytes& key);

// Maps codes and ids back to plaintext paths, for `audit show --resolve` (office role,
// at a terminal; never for logs). Either function may be empty; a lookup that finds
// nothing returns an empty vector or nullopt.
struct AuditNameResolver {
  // Every case folder path whose code is `code` (more than one only on a collision).
  std::function<std::vector<std::string>(std::string_view code)> case_paths;
  std::function<std::optional<std::string>(std::string_view file_id)> file_path;
};

// One human-readable line for `record`:
//   seq=5 2026-03-01T09:15:02.123Z open-read uid=1002(bob) pid=4242(meshlab)
//   case=C-7F3A9Q fid=0011... result=ok
// prefixed with "UNVERIFIED " when `authentic` is false, and with resolved names in
// parentheses after the case code and file id when `resolver` is given.
std::string FormatAuditRecord(const AuditRecord& record, bool authentic,
                              const AuditNameResolver* resolver = nullptr);

}  // namespace cadcanfs::access

#endif  // CADCANFS_ACCESS_AUDIT_VERIFY_H_
