#include "cadcanfs/access/audit_log.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "cadcanfs/access/audit_verify.h"
#include "cadcanfs/access/pseudonym.h"
#include "cadcanfs/common/bytes.h"

namespace cadcanfs::access {

namespace {

constexpr size_t kTailReadBytes = 64 * 1024;
constexpr int64_t kSyncIntervalMs = 1000;
constexpr size_t kFileIdHexLength = 32;
constexpr size_t kMaxAttemptLength = 24;

int64_t NowMillis(timespec* now_out = nullptr) {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  if (now_out) *now_out = now;
  return int64_t{now.tv_sec} * 1000 + now.tv_nsec / 1000000;
}

// "2026-03-01T09:15:02.123Z" (`compact`: "20260301T091502.123Z", for file names).
std::string UtcTime(const timespec& t, bool compact) {
  struct tm tm;
  gmtime_r(&t.tv_sec, &tm);
  char text[128];  // room for any int GCC cannot rule out, not just the 24 used
  snprintf(text, sizeof(text),
           compact ? "%04d%02d%02dT%02d%02d%02d.%03ldZ" : "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           static_cast<long>(t.tv_nsec / 1000000));
  return text;
}

std::string JsonString(std::string_view text) {
  return nlohmann::json(std::string(text))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string ResultName(int error) {
  if (error == 0) return "ok";
  const char* name = strerrorname_np(error);
  return name ? std::string(name) : std::string("E").append(std::to_string(error));
}

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// The only strings a line takes from its caller are checked here, so that no name can
// reach the log even by mistake.
Status ValidateEvent(const AuditEvent& event) {
  auto bad = [](const char* what) {
    return Status::Error(Code::kInvalidArgument,
                         std::string("an audit event's ") + what + " is malformed");
  };
  if (!event.case_code.empty() && !LooksLikeCaseCode(event.case_code)) return bad("case code");
  if (!event.to_case.empty() && !LooksLikeCaseCode(event.to_case)) return bad("destination case");
  if (!event.file_id.empty() &&
      (event.file_id.size() != kFileIdHexLength || !IsLowerHex(event.file_id))) {
    return bad("file id");
  }
  if (event.attempt.size() > kMaxAttemptLength ||
      !std::all_of(event.attempt.begin(), event.attempt.end(),
                   [](char c) { return (c >= 'a' && c <= 'z') || c == '-'; })) {
    return bad("operation name");
  }
  if (event.op == AuditOp::kRotate) return bad("operation (rotate lines are the log's own)");
  return Status::Ok();
}

// The first 15 bytes of the process's name, as the kernel keeps it; "" if gone.
std::string ProcessName(pid_t pid) {
  if (pid <= 0) return "";
  char path[32];
  snprintf(path, sizeof(path), "/proc/%d/comm", static_cast<int>(pid));
  UniqueFd fd(open(path, O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return "";
  char name[64];
  ssize_t n = read(fd.get(), name, sizeof(name));
  if (n <= 0) return "";
  std::string out(name, static_cast<size_t>(n));
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

std::string_view AuditOpName(AuditOp op) {
  switch (op) {
    case AuditOp::kMount:
      return "mount";
    case AuditOp::kUnmount:
      return "unmount";
    case AuditOp::kOpenRead:
      return "open-read";
    case AuditOp::kOpenWrite:
      return "open-write";
    case AuditOp::kCreate:
      return "create";
    case AuditOp::kTruncate:
      return "truncate";
    case AuditOp::kRename:
      return "rename";
    case AuditOp::kDelete:
      return "delete";
    case AuditOp::kDenied:
      return "denied";
    case AuditOp::kTamper:
      return "tamper";
    case AuditOp::kRotate:
      return "rotate";
  }
  return "unknown";
}

namespace {

// One unbound datagram socket, addressed per line, so a syslog daemon that restarts
// (or starts after the mount) receives the lines that follow.
class SyslogSocket {
 public:
  explicit SyslogSocket(std::string path)
      : path_(std::move(path)), fd_(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {}
  ~SyslogSocket() {
    if (fd_ >= 0) close(fd_);
  }
  SyslogSocket(const SyslogSocket&) = delete;
  SyslogSocket& operator=(const SyslogSocket&) = delete;

  void Send(std::string_view line) const {
    sockaddr_un address{};
    if (fd_ < 0 || path_.size() >= sizeof(address.sun_path)) return;
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path_.data(), path_.size());
    std::string datagram = Header();
    datagram.append(line.data(), line.size());
    // MSG_DONTWAIT: a stalled syslog daemon must not hold up the open being audited.
    (void)sendto(fd_, datagram.data(), datagram.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                 reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  }

 private:
  // The RFC 3164 header syslog(3) writes: "<PRI>Mmm dd hh:mm:ss TAG[PID]: ".
  static std::string Header() {
    const time_t now = time(nullptr);
    struct tm local;
    localtime_r(&now, &local);
    char stamp[32];
    strftime(stamp, sizeof(stamp), "%b %e %T", &local);
    char header[96];
    snprintf(header, sizeof(header), "<%d>%s cadcanfs-audit[%d]: ", LOG_AUTHPRIV | LOG_NOTICE,
             stamp, static_cast<int>(getpid()));
    return header;
  }

  std::string path_;
  int fd_;
};

}  // namespace

std::function<void(std::string_view)> SyslogMirror(std::string socket_path) {
  auto socket = std::make_shared<SyslogSocket>(std::move(socket_path));
  return [socket](std::string_view line) { socket->Send(line); };
}

Digest AuditLineMac(const SecretBytes& key, std::string_view body) {
  return HmacSha256(key, AsBytes(body));
}

Result<std::unique_ptr<AuditLog>> AuditLog::Open(std::string path, SecretBytes key,
                                                 AuditLogOptions options) {
  std::unique_ptr<AuditLog> log(new AuditLog(std::move(path), std::move(key), std::move(options)));
  std::lock_guard<std::mutex> lock(log->mutex_);
  CADCANFS_RETURN_IF_ERROR(log->OpenFileLocked());
  return log;
}

AuditLog::~AuditLog() { (void)Close(); }

// Opens path_, locks it and picks up the chain from its last line, if any.
Status AuditLog::OpenFileLocked() {
  UniqueFd fd(open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return Status::FromErrno(errno, "opening the audit log");
  if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    return Status::Error(Code::kBusy, "another process is writing this audit log", errno);
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "reading the audit log");
  if (!S_ISREG(st.st_mode)) {
    return Status::Error(Code::kInvalidArgument, "the audit log is not a regular file");
  }
  seq_ = 0;
  prev_mac_ = Digest{};
  if (st.st_size > 0) {
    UniqueFd reader(open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!reader.valid()) return Status::FromErrno(errno, "reading the audit log");
    size_t want = std::min<size_t>(static_cast<size_t>(st.st_size), kTailReadBytes);
    std::string tail(want, '\0');
    ssize_t n = pread(reader.get(), tail.data(), want, st.st_size - static_cast<off_t>(want));
    if (n != static_cast<ssize_t>(want)) return Status::FromErrno(errno, "reading the audit log");
    if (tail.back() != '\n') {
      return Status::Error(Code::kCorrupt,
                           "the audit log ends inside a line; run cadcanfs audit verify on it and "
                           "move it aside");
    }
    tail.pop_back();
    size_t start = tail.rfind('\n');
    std::string_view last =
        std::string_view(tail).substr(start == std::string::npos ? 0 : start + 1);
    auto record = ParseAuditLine(last);
    if (!record.ok() || AuditLineMac(key_, record->body) != record->mac) {
      return Status::Error(Code::kAuthenticationFailed,
                           "the audit log's last line does not authenticate with this key (edited, "
                           "or written under another master key); run cadcanfs audit verify on "
                           "it and move it aside");
    }
    seq_ = record->seq;
    prev_mac_ = record->mac;
  }
  fd_ = std::move(fd);
  size_ = static_cast<uint64_t>(st.st_size);
  next_rotation_attempt_ = options_.rotate_bytes;
  return Status::Ok();
}

std::string AuditLog::UserNameLocked(uint32_t uid) {
  auto it = user_names_.find(uid);
  if (it != user_names_.end()) return it->second;
  struct passwd pw;
  struct passwd* found = nullptr;
  std::vector<char> buffer(16384);
  std::string name;
  if (getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &found) == 0 && found) {
    name = found->pw_name;
  }
  user_names_.emplace(uid, name);
  return name;
}

Status AuditLog::Append(const AuditEvent& event) {
  CADCANFS_RETURN_IF_ERROR(ValidateEvent(event));
  const std::string process = ProcessName(event.pid);
  std::lock_guard<std::mutex> lock(mutex_);
  const bool full = options_.rotate_bytes > 0 && size_ >= options_.rotate_bytes &&
                    size_ >= next_rotation_attempt_;
  if (rotate_requested_.exchange(false) || full) {
    // A failed rotation keeps the current file (a long log beats a lost line) and is
    // retried after another sixteenth of the limit.
    if (!RotateLocked().ok()) next_rotation_attempt_ = size_ + options_.rotate_bytes / 16;
  }
  Status written = AppendLocked(event, process);
  if (!written.ok() && !options_.fail_closed) {
    dropped_.fetch_add(1);
    return Status::Ok();
  }
  return written;
}

Status AuditLog::AppendLocked(const AuditEvent& event, std::string_view process) {
  if (closed_ || !fd_.valid()) return Status::Error(Code::kIoError, "the audit log is closed");
  timespec now;
  NowMillis(&now);
  std::string body;
  body.reserve(400);
  body += "{\"v\":1,\"seq\":" + std::to_string(seq_ + 1);
  body += ",\"time\":\"" + UtcTime(now, false) + "\"";
  body += ",\"event\":\"" + std::string(AuditOpName(event.op)) + "\"";
  body += ",\"uid\":" + std::to_string(event.uid);
  body += ",\"user\":" + JsonString(UserNameLocked(event.uid));
  body += ",\"pid\":" + std::to_string(event.pid);
  body += ",\"process\":" + JsonString(process);
  body += ",\"case\":\"" + event.case_code + "\"";
  body += ",\"fid\":\"" + event.file_id + "\"";
  if (!event.to_case.empty()) body += ",\"to_case\":\"" + event.to_case + "\"";
  if (!event.attempt.empty()) body += ",\"attempt\":\"" + event.attempt + "\"";
  body += ",\"result\":\"" + ResultName(event.error) + "\"";
  body += ",\"prev\":\"" + HexEncode(prev_mac_) + "\"";
  const Digest mac = AuditLineMac(key_, body);
  std::string line = body + ",\"mac\":\"" + HexEncode(mac) + "\"}\n";
  CADCANFS_RETURN_IF_ERROR(WriteLineLocked(line));
  // The line is in the file: the chain moves on even if the sync below fails.
  seq_ += 1;
  prev_mac_ = mac;
  if (options_.mirror) {
    line.pop_back();
    options_.mirror(line);
  }
  return SyncIfDueLocked();
}

// One write(2) of the whole line. A short write is undone, so the file never keeps
// half a line that the next one would be glued to.
Status AuditLog::WriteLineLocked(const std::string& line) {
  ssize_t n;
  do {
    n = write(fd_.get(), line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(line.size())) {
    int err = n < 0 ? errno : ENOSPC;
    if (n > 0 && ftruncate(fd_.get(), static_cast<off_t>(size_)) != 0) {
      // The partial line stays: close the log so no later line is chained after it.
      fd_ = UniqueFd();
    }
    return Status::Error(Code::kIoError,
                         std::string("cannot write the audit log: ") + std::strerror(err), err);
  }
  size_ += line.size();
  return Status::Ok();
}

Status AuditLog::SyncIfDueLocked() {
  const int64_t now = NowMillis();
  if (!options_.sync_every_line && now - last_sync_ms_ < kSyncIntervalMs) return Status::Ok();
  if (fdatasync(fd_.get()) != 0) return Status::FromErrno(errno, "syncing the audit log");
  last_sync_ms_ = now;
  return Status::Ok();
}

Status AuditLog::Rotate() {
  std::lock_guard<std::mutex> lock(mutex_);
  return RotateLocked();
}

Status AuditLog::RotateLocked() {
  if (closed_ || !fd_.valid()) return Status::Error(Code::kIoError, "the audit log is closed");
  AuditEvent rotate{AuditOp::kRotate, static_cast<uint32_t>(geteuid()), getpid()};
  const std::string self = ProcessName(getpid());
  CADCANFS_RETURN_IF_ERROR(AppendLocked(rotate, self));
  if (fdatasync(fd_.get()) != 0) return Status::FromErrno(errno, "syncing the audit log");
  timespec now;
  NowMillis(&now);
  // The last seq first, so that names sort in chain order even if the clock steps back.
  char last_seq[24];
  snprintf(last_seq, sizeof(last_seq), "%012llu", static_cast<unsigned long long>(seq_));
  std::string rotated = path_ + "." + last_seq + "-" + UtcTime(now, true);
  if (::access(rotated.c_str(), F_OK) == 0) {
    return Status::Error(Code::kAlreadyExists, "the rotated audit log's name is taken");
  }
  if (rename(path_.c_str(), rotated.c_str()) != 0) {
    return Status::FromErrno(errno, "renaming the audit log for rotation");
  }
  // From here the old file is complete; the chain goes on in a new one.
  const uint64_t seq = seq_;
  const Digest prev = prev_mac_;
  fd_ = UniqueFd();
  Status reopened = OpenFileLocked();
  if (!reopened.ok()) return reopened;
  seq_ = seq;
  prev_mac_ = prev;
  CADCANFS_RETURN_IF_ERROR(AppendLocked(rotate, self));
  const size_t slash = path_.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path_.substr(0, slash);
  UniqueFd dir_fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.valid()) fsync(dir_fd.get());
  return Status::Ok();
}

Status AuditLog::Close() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) return Status::Ok();
  closed_ = true;
  if (!fd_.valid()) return Status::Ok();
  Status synced =
      fdatasync(fd_.get()) == 0 ? Status::Ok() : Status::FromErrno(errno, "syncing the audit log");
  fd_ = UniqueFd();
  return synced;
}

uint64_t AuditLog::last_seq() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return seq_;
}

}  // namespace cadcanfs::access
