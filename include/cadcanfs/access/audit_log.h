// The tamper-evident audit log: one JSON line per event, each carrying an HMAC chained
// over the previous line's. docs/access-policy.md, "Audit log", specifies the format
// precisely enough for a second implementation to verify it.
//
//   {"v":1,"seq":7,"time":"2026-03-01T09:15:02.123Z","event":"open-read","uid":1001,
//    "user":"bob","pid":4242,"process":"meshlab","case":"C-7F3A9Q",
//    "fid":"00112233445566778899aabbccddeeff","result":"ok","prev":"<64 hex>","mac":"<64 hex>"}
//
// mac = HMAC-SHA256(audit key, every byte of the line before `,"mac":"`), so it covers
// "prev", the previous line's mac (64 zeros for the first line of a chain).
//
// No line can hold a plaintext name: Append accepts only a case code, a hex file id and
// operation names from a fixed set, and refuses anything else.
//
// Durability: each line is written with one write(2) on an O_APPEND descriptor before
// Append returns, so it survives a crash of the daemon; fdatasync follows at most a
// second later (or at once with AuditLogOptions::sync_every_line), and always on
// rotation and Close. Fail-closed by default: if the line cannot be written, Append
// returns kIoError and the frontend must fail the operation with EIO.
//
// Thread safety: all methods may be called from any thread; lines are serialised by
// one mutex (the chain needs a total order). RequestRotate() is async-signal-safe.
#ifndef CADCANFS_ACCESS_AUDIT_LOG_H_
#define CADCANFS_ACCESS_AUDIT_LOG_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "cadcanfs/common/status.h"
#include "cadcanfs/common/unique_fd.h"
#include "cadcanfs/crypto/kdf.h"
#include "cadcanfs/crypto/secret.h"

namespace cadcanfs::access {

enum class AuditOp {
  kMount,
  kUnmount,
  kOpenRead,   // a "download"
  kOpenWrite,  // open for writing an existing file
  kCreate,
  kTruncate,
  kRename,
  kDelete,
  kDenied,  // the policy refused an operation; AuditEvent::attempt says which
  kTamper,  // a block, header or name failed authentication
  kRotate,  // written by the log itself: last line of a file and first of the next
};
// "mount", "unmount", "open-read", "open-write", "create", "truncate", "rename",
// "delete", "denied", "tamper", "rotate".
std::string_view AuditOpName(AuditOp op);

struct AuditEvent {
  AuditOp op = AuditOp::kOpenRead;
  uint32_t uid = 0;
  pid_t pid = 0;          // the requesting process; its name is read from /proc/PID/comm
  std::string case_code;  // "C-XXXXXX" (pseudonym.h), or empty outside any case
  std::string file_id;    // 32 lowercase hex digits, or empty
  std::string to_case;    // rename only: the destination's case code when it differs
  std::string attempt;    // denied only: the refused operation, [a-z-]{1,24}, e.g. "open-write"
  int error = 0;          // 0, or the errno the caller got: "result" is "ok" or e.g. "EACCES"
};

struct AuditLogOptions {
  // Rotate when the file reaches this size; 0 only on request.
  uint64_t rotate_bytes = uint64_t{64} << 20;
  // false: a line that cannot be written is counted (dropped_lines()) and Append
  // returns OK, for non-clinical use only.
  bool fail_closed = true;
  // fdatasync after every line (slower); else at most one second after a line.
  bool sync_every_line = false;
  // Called with each line (without its newline) once it is written, e.g. SyslogMirror().
  std::function<void(std::string_view line)> mirror;
};

// The socket syslog(3) and journald listen on.
inline constexpr char kDefaultSyslogSocket[] = "/dev/log";

// A mirror that sends each line, unchanged (so with the same PHI-free fields), to the
// syslog datagram socket at `socket_path` (journald's or a syslog daemon's), tagged
// "cadcanfs-audit" at LOG_AUTHPRIV | LOG_NOTICE. Sending never blocks and never fails
// the audit: the file is the record; a line the socket does not take is dropped.
std::function<void(std::string_view)> SyslogMirror(std::string socket_path = kDefaultSyslogSocket);

class AuditLog {
 public:
  // Opens or creates `path` (mode 0600, never through a symlink) and takes an exclusive
  // flock on it, so two daemons cannot interleave chains in one file (kBusy). An
  // existing log is continued: its last line must authenticate under `key`, else
  // kAuthenticationFailed (an edited tail or another key, e.g. after a master-key
  // rotation: move the old log aside). A file that ends inside a line is kCorrupt.
  static Result<std::unique_ptr<AuditLog>> Open(std::string path, SecretBytes key,
                                                AuditLogOptions options = {});
  ~AuditLog();  // Close()

  // Writes one line. kInvalidArgument for a field that is not a code, id or operation
  // name (nothing is written); kIoError when the write fails (fail-closed).
  Status Append(const AuditEvent& event);

  // Ends the current file with a "rotate" line, renames it to
  // "<path>.<seq of that line, 12 digits>-<UTC time>" (e.g.
  // "audit.log.000000001234-20260301T091502.123Z": names sort in chain order), and
  // starts a new "<path>" whose first line, also "rotate", continues the chain.
  Status Rotate();
  // Async-signal-safe: the next Append rotates first.
  void RequestRotate() noexcept { rotate_requested_.store(true); }

  // fdatasync and close; later Appends fail. Idempotent.
  Status Close();

  uint64_t dropped_lines() const { return dropped_.load(); }
  uint64_t last_seq() const;

 private:
  AuditLog(std::string path, SecretBytes key, AuditLogOptions options)
      : path_(std::move(path)), key_(std::move(key)), options_(std::move(options)) {}
  Status OpenFileLocked();
  Status AppendLocked(const AuditEvent& event, std::string_view process);
  Status WriteLineLocked(const std::string& line);
  Status SyncIfDueLocked();
  Status RotateLocked();
  std::string UserNameLocked(uint32_t uid);

  const std::string path_;
  const SecretBytes key_;
  const AuditLogOptions options_;
  std::atomic<bool> rotate_requested_{false};
  std::atomic<uint64_t> dropped_{0};

  mutable std::mutex mutex_;
  UniqueFd fd_;                         // GUARDED_BY(mutex_)
  uint64_t size_ = 0;                   // GUARDED_BY(mutex_)
  uint64_t seq_ = 0;                    // GUARDED_BY(mutex_): the last line's
  Digest prev_mac_{};                   // GUARDED_BY(mutex_): the last line's
  int64_t last_sync_ms_ = 0;            // GUARDED_BY(mutex_)
  uint64_t next_rotation_attempt_ = 0;  // GUARDED_BY(mutex_): size; backs off after a failure
  bool closed_ = false;                 // GUARDED_BY(mutex_)
  std::unordered_map<uint32_t, std::string> user_names_;  // GUARDED_BY(mutex_)
};

// The MAC of one line: HMAC-SHA256(key, body), where body is the line up to `,"mac":"`.
Digest AuditLineMac(const SecretBytes& key, std::string_view body);

}  // namespace cadcanfs::access

#endif  // CADCANFS_ACCESS_AUDIT_LOG_H_
