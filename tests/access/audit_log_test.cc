#include "cadcanfs/access/audit_log.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <thread>

#include "access/access_test_util.h"
#include "cadcanfs/access/audit_verify.h"
#include "cadcanfs/access/pseudonym.h"
#include "cadcanfs/common/bytes.h"

namespace cadcanfs::access {
namespace {

using testing::ReadFile;
using testing::TempDir;
using testing::TestKey;
using testing::WriteFile;

constexpr char kFid[] = "00112233445566778899aabbccddeeff";
// A distinctive patient name planted in every test's case folder.
constexpr char kPlantedFolder[] = "Zyxwvutsrq_Planted_2026-03-01";

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', start)) {
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

std::string Joined(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

class AuditLogTest : public ::testing::Test {
 protected:
  std::unique_ptr<AuditLog> OpenLog(AuditLogOptions options = {}, uint8_t key = 7) {
    auto log = AuditLog::Open(path_, TestKey(key), std::move(options));
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    return log.ok() ? std::move(log).value() : nullptr;
  }

  AuditEvent Event(AuditOp op) const {
    AuditEvent event;
    event.op = op;
    event.uid = 0;
    event.pid = getpid();
    if (op != AuditOp::kMount && op != AuditOp::kUnmount) {
      event.case_code = code_;
      event.file_id = kFid;
    }
    return event;
  }

  // mount, `reads` open-reads, unmount.
  void WriteSession(int reads) {
    auto log = OpenLog();
    ASSERT_TRUE(log->Append(Event(AuditOp::kMount)).ok());
    for (int i = 0; i < reads; ++i) ASSERT_TRUE(log->Append(Event(AuditOp::kOpenRead)).ok());
    ASSERT_TRUE(log->Append(Event(AuditOp::kUnmount)).ok());
  }

  VerifyReport Verify(std::vector<std::string> texts, uint8_t key = 7) const {
    return VerifyAuditLogs(texts, TestKey(key));
  }

  TempDir dir_;
  std::string path_ = dir_.path() + "/audit.log";
  std::string code_ = CaseCoder(TestKey(9)).CodeOf(kPlantedFolder);
};

TEST_F(AuditLogTest, EachEventIsOneLineWithEveryField) {
  std::vector<std::string> mirrored;
  AuditLogOptions options;
  options.mirror = [&](std::string_view line) { mirrored.emplace_back(line); };
  {
    auto log = OpenLog(options);
    ASSERT_TRUE(log->Append(Event(AuditOp::kMount)).ok());
    AuditEvent denied = Event(AuditOp::kDenied);
    denied.attempt = "open-write";
    denied.error = EACCES;
    ASSERT_TRUE(log->Append(denied).ok());
    AuditEvent renamed = Event(AuditOp::kRename);
    renamed.to_case = "C-000000";
    ASSERT_TRUE(log->Append(renamed).ok());
    EXPECT_EQ(log->last_seq(), 3u);
  }
  const std::vector<std::string> lines = Lines(ReadFile(path_));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(mirrored, lines);
  const std::regex shape(
      R"(\{"v":1,"seq":2,"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","event":"denied","uid":0,)"
      R"("user":"root","pid":\d+,"process":"[^"]+","case":"C-[0-9A-Z]{6}",)"
      R"("fid":"00112233445566778899aabbccddeeff","attempt":"open-write","result":"EACCES",)"
      R"("prev":"[0-9a-f]{64}","mac":"[0-9a-f]{64}"\})");
  EXPECT_TRUE(std::regex_match(lines[1], shape)) << lines[1];
  auto record = ParseAuditLine(lines[1]);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->pid, getpid());
  EXPECT_EQ(record->process, ReadFile("/proc/self/comm").substr(0, record->process.size()));
  EXPECT_EQ(record->case_code, code_);
  auto first = ParseAuditLine(lines[0]);
  EXPECT_EQ(first->prev, Digest{});
  EXPECT_EQ(record->prev, first->mac);
  EXPECT_EQ(ParseAuditLine(lines[2])->to_case, "C-000000");
  // The MAC is HMAC-SHA256 over the line up to ,"mac":" (docs/access-policy.md).
  const std::string body = lines[1].substr(0, lines[1].find(",\"mac\":\""));
  EXPECT_EQ(HexEncode(HmacSha256(TestKey(7), AsBytes(body))), HexEncode(record->mac));
  EXPECT_EQ(Verify({ReadFile(path_)}).outcome, VerifyOutcome::kOpenEnd);
}

TEST_F(AuditLogTest, NoLineCanCarryAName) {
  auto log = OpenLog();
  AuditEvent event = Event(AuditOp::kOpenRead);
  event.case_code = kPlantedFolder;
  EXPECT_EQ(log->Append(event).code(), Code::kInvalidArgument);
  event = Event(AuditOp::kOpenRead);
  event.file_id = "Zyxwvutsrq";
  EXPECT_EQ(log->Append(event).code(), Code::kInvalidArgument);
  event = Event(AuditOp::kDenied);
  event.attempt = "open Zyxwvutsrq";
  EXPECT_EQ(log->Append(event).code(), Code::kInvalidArgument);
  ASSERT_TRUE(log->Append(Event(AuditOp::kOpenRead)).ok());
  log.reset();
  const std::string text = ReadFile(path_);
  EXPECT_EQ(Lines(text).size(), 1u);
  EXPECT_EQ(text.find("Zyxwvutsrq"), std::string::npos);
  EXPECT_EQ(text.find("Planted"), std::string::npos);
}

TEST_F(AuditLogTest, AnIntactLogVerifies) {
  WriteSession(5);
  VerifyReport report = Verify({ReadFile(path_)});
  EXPECT_EQ(report.outcome, VerifyOutcome::kIntact) << report.problem;
  EXPECT_EQ(report.lines, 7u);
  EXPECT_EQ(report.first_seq, 1u);
  EXPECT_EQ(report.last_seq, 7u);
  EXPECT_TRUE(report.notes.empty());
}

TEST_F(AuditLogTest, VerifyPinpointsTheFirstEditedLine) {
  WriteSession(5);
  std::vector<std::string> lines = Lines(ReadFile(path_));
  std::string& third = lines[2];
  third.replace(third.find("\"uid\":0"), 7, "\"uid\":1");
  VerifyReport report = Verify({Joined(lines)});
  EXPECT_EQ(report.outcome, VerifyOutcome::kTampered);
  EXPECT_EQ(report.line, 3u);
  EXPECT_NE(report.problem.find("edited"), std::string::npos) << report.problem;
}

TEST_F(AuditLogTest, VerifyPinpointsARemovedLine) {
  WriteSession(5);
  std::vector<std::string> lines = Lines(ReadFile(path_));
  lines.erase(lines.begin() + 3);
  VerifyReport report = Verify({Joined(lines)});
  EXPECT_EQ(report.outcome, VerifyOutcome::kTampered);
  EXPECT_EQ(report.line, 4u);
  EXPECT_NE(report.problem.find("a line was removed before this one"), std::string::npos)
      << report.problem;
}

TEST_F(AuditLogTest, VerifyPinpointsInsertedLines) {
  WriteSession(5);
  std::vector<std::string> lines = Lines(ReadFile(path_));
  // A forged line: right shape, made without the key.
  std::vector<std::string> forged = lines;
  std::string fake = lines[2];
  fake.replace(fake.find("\"seq\":3"), 7, "\"seq\":9");
  forged.insert(forged.begin() + 2, fake);
  VerifyReport report = Verify({Joined(forged)});
  EXPECT_EQ(report.outcome, VerifyOutcome::kTampered);
  EXPECT_EQ(report.line, 3u);
  // A genuine line repeated.
  std::vector<std::string> repeated = lines;
  repeated.insert(repeated.begin() + 4, lines[1]);
  report = Verify({Joined(repeated)});
  EXPECT_EQ(report.outcome, VerifyOutcome::kTampered);
  EXPECT_EQ(report.line, 5u);
  EXPECT_NE(report.problem.find("reordered or repeated"), std::string::npos) << report.problem;
}

TEST_F(AuditLogTest, VerifyPinpointsReorderedLines) {
  WriteSession(5);
  std::vector<std::string> lines = Lines(ReadFile(path_));
  std::swap(lines[2], lines[3]);
  VerifyReport report = Verify({Joined(lines)});
  EXPECT_EQ(report.outcome, VerifyOutcome::kTampered);
  EXPECT_EQ(report.line, 3u);
  EXPECT_NE(report.problem.find("reordered"), std::string::npos) << report.problem;
}

TEST_F(AuditLogTest, VerifyReportsATruncatedTail) {
  WriteSession(5);
  const std::string text = ReadFile(path_);
  VerifyReport cut = Verify({text.substr(0, text.size() - 30)});
  EXPECT_EQ(cut.outcome, VerifyOutcome::kTruncated);
  EXPECT_EQ(cut.line, 7u);
  // Whole lines cut from the end: the log no longer ends with "unmount".
  std::vector<std::string> lines = Lines(text);
  lines.pop_back();
  VerifyReport open_end = Verify({Joined(lines)});
  EXPECT_EQ(open_end.outcome, VerifyOutcome::kOpenEnd);
  EXPECT_EQ(open_end.line, 6u);
  // Lines cut from the start.
  lines = Lines(text);
  lines.erase(lines.begin());
  EXPECT_EQ(Verify({Joined(lines)}).outcome, VerifyOutcome::kTampered);
  EXPECT_EQ(Verify({std::string()}).outcome, VerifyOutcome::kTruncated);
}

TEST_F(AuditLogTest, VerifyWithAnotherKeySaysSo) {
  WriteSession(2);
  EXPECT_EQ(Verify({ReadFile(path_)}, 8).outcome, VerifyOutcome::kWrongKey);
}

TEST_F(AuditLogTest, ReopeningContinuesTheChainAndNotesAnUncleanEnd) {
  WriteSession(2);
  {
    auto log = OpenLog();
    ASSERT_TRUE(log->Append(Event(AuditOp::kMount)).ok());
    ASSERT_TRUE(log->Append(Event(AuditOp::kOpenRead)).ok());
  }  // no unmount: as if the daemon was killed
  WriteSession(1);
  VerifyReport report = Verify({ReadFile(path_)});
  EXPECT_EQ(report.outcome, VerifyOutcome::kIntact) << report.problem;
  EXPECT_EQ(report.lines, 9u);
  ASSERT_EQ(report.notes.size(), 1u);
  EXPECT_NE(report.notes[0].find("line 7"), std::string::npos) << report.notes[0];
}

TEST_F(AuditLogTest, OpenRefusesAnEditedTailAWrongKeyAndASecondWriter) {
  WriteSession(1);
  {
    auto second = OpenLog();
    auto busy = AuditLog::Open(path_, TestKey(7));
    ASSERT_FALSE(busy.ok());
    EXPECT_EQ(busy.status().code(), Code::kBusy);
  }
  EXPECT_EQ(AuditLog::Open(path_, TestKey(8)).status().code(), Code::kAuthenticationFailed);
  std::string text = ReadFile(path_);
  WriteFile(path_, text.substr(0, text.size() - 1));
  EXPECT_EQ(AuditLog::Open(path_, TestKey(7)).status().code(), Code::kCorrupt);
  EXPECT_FALSE(AuditLog::Open(dir_.path() + "/missing/audit.log", TestKey(7)).ok());
  EXPECT_FALSE(AuditLog::Open(dir_.path(), TestKey(7)).ok());
}

std::vector<std::string> LogFiles(const std::string& dir) {
  std::vector<std::string> rotated;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().filename().string().starts_with("audit.log.")) {
      rotated.push_back(entry.path().string());
    }
  }
  std::sort(rotated.begin(), rotated.end());
  rotated.push_back(dir + "/audit.log");
  return rotated;
}

TEST_F(AuditLogTest, RotationContinuesTheChainAcrossFiles) {
  AuditLogOptions options;
  options.rotate_bytes = 2000;  // about 5 lines
  {
    auto log = OpenLog(options);
    ASSERT_TRUE(log->Append(Event(AuditOp::kMount)).ok());
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(log->Append(Event(AuditOp::kOpenRead)).ok());
    log->RequestRotate();  // as the SIGHUP/SIGUSR handler does
    ASSERT_TRUE(log->Append(Event(AuditOp::kUnmount)).ok());
  }
  std::vector<std::string> paths = LogFiles(dir_.path());
  ASSERT_GE(paths.size(), 4u);
  std::vector<std::string> texts;
  for (const std::string& p : paths) texts.push_back(ReadFile(p));
  for (size_t i = 0; i + 1 < texts.size(); ++i) {
    std::vector<std::string> old_lines = Lines(texts[i]);
    std::vector<std::string> new_lines = Lines(texts[i + 1]);
    auto last = ParseAuditLine(old_lines.back());
    auto first = ParseAuditLine(new_lines.front());
    EXPECT_EQ(last->event, "rotate");
    EXPECT_EQ(first->event, "rotate");
    EXPECT_EQ(first->prev, last->mac);
    EXPECT_EQ(first->seq, last->seq + 1);
  }
  VerifyReport all = Verify(texts);
  EXPECT_EQ(all.outcome, VerifyOutcome::kIntact) << all.problem;
  // The live file alone verifies too, starting where a rotated file ended.
  VerifyReport live = Verify({texts.back()});
  EXPECT_EQ(live.outcome, VerifyOutcome::kIntact) << live.problem;
  EXPECT_EQ(live.notes.size(), 1u);
  // A missing middle file is a gap in the chain.
  std::vector<std::string> gap = texts;
  gap.erase(gap.begin() + 1);
  VerifyReport missing = Verify(gap);
  EXPECT_EQ(missing.outcome, VerifyOutcome::kTampered);
  EXPECT_EQ(missing.file_index, 1u);
  EXPECT_EQ(missing.line, 1u);
}

TEST_F(AuditLogTest, ARequestedRotationHappensEvenWithoutASizeLimit) {
  AuditLogOptions options;
  options.rotate_bytes = 0;
  {
    auto log = OpenLog(options);
    ASSERT_TRUE(log->Append(Event(AuditOp::kMount)).ok());
    log->RequestRotate();
    ASSERT_TRUE(log->Append(Event(AuditOp::kUnmount)).ok());
  }
  std::vector<std::string> paths = LogFiles(dir_.path());
  ASSERT_EQ(paths.size(), 2u);
  EXPECT_EQ(Lines(ReadFile(paths[0])).size(), 2u);  // mount, rotate
  EXPECT_EQ(Lines(ReadFile(paths[1])).size(), 2u);  // rotate, unmount
  std::vector<std::string> texts = {ReadFile(paths[0]), ReadFile(paths[1])};
  EXPECT_EQ(Verify(texts).outcome, VerifyOutcome::kIntact);
}

// RLIMIT_FSIZE makes the next write short, then fail: a disk that filled up.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &saved_);
    rlimit limit{bytes, saved_.rlim_max};
    setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() { setrlimit(RLIMIT_FSIZE, &saved_); }

 private:
  rlimit saved_{};
};

TEST_F(AuditLogTest, FailsClosedWhenTheLogCannotBeWritten) {
  auto log = OpenLog();
  ASSERT_TRUE(log->Append(Event(AuditOp::kMount)).ok());
  const size_t size = ReadFile(path_).size();
  {
    FileSizeLimit full(size + 10);
    Status short_write = log->Append(Event(AuditOp::kOpenRead));
    EXPECT_EQ(short_write.code(), Code::kIoError);
    EXPECT_EQ(log->Append(Event(AuditOp::kOpenRead)).code(), Code::kIoError);
  }
  EXPECT_EQ(ReadFile(path_).size(), size) << "a half-written line was left behind";
  ASSERT_TRUE(log->Append(Event(AuditOp::kUnmount)).ok());
  log.reset();
  VerifyReport report = Verify({ReadFile(path_)});
  EXPECT_EQ(report.outcome, VerifyOutcome::kIntact) << report.problem;
  EXPECT_EQ(report.lines, 2u);
}

TEST_F(AuditLogTest, TheRelaxedModeCountsLostLines) {
  AuditLogOptions options;
  options.fail_closed = false;
  auto log = OpenLog(options);
  ASSERT_TRUE(log->Append(Event(AuditOp::kMount)).ok());
  {
    FileSizeLimit full(ReadFile(path_).size());
    EXPECT_TRUE(log->Append(Event(AuditOp::kOpenRead)).ok());
  }
  EXPECT_EQ(log->dropped_lines(), 1u);
}

TEST_F(AuditLogTest, ManyThreadsAppendingKeepOneChain) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 250;
  {
    auto log = OpenLog();
    ASSERT_TRUE(log->Append(Event(AuditOp::kMount)).ok());
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < kPerThread; ++i) {
          EXPECT_TRUE(log->Append(Event(i % 2 ? AuditOp::kOpenRead : AuditOp::kCreate)).ok());
        }
      });
    }
    for (std::thread& t : threads) t.join();
    ASSERT_TRUE(log->Append(Event(AuditOp::kUnmount)).ok());
  }
  VerifyReport report = Verify({ReadFile(path_)});
  EXPECT_EQ(report.outcome, VerifyOutcome::kIntact) << report.problem;
  EXPECT_EQ(report.lines, kThreads * kPerThread + 2u);
}

// A datagram socket bound in a temp dir stands in for /dev/log.
class BoundSyslogSocket {
 public:
  explicit BoundSyslogSocket(const std::string& path)
      : fd_(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof(address.sun_path), "%s", path.c_str());
    bound_ = bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~BoundSyslogSocket() { close(fd_); }
  bool bound() const { return bound_; }
  // The next datagram, or "" when none arrives (it was sent before Receive is called).
  std::string Receive() const {
    char buffer[4096];
    const ssize_t n = recv(fd_, buffer, sizeof(buffer), MSG_DONTWAIT);
    return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : std::string();
  }

 private:
  int fd_;
  bool bound_ = false;
};

TEST_F(AuditLogTest, TheSyslogMirrorSendsEachLineUnchangedAtAuthprivNotice) {
  BoundSyslogSocket syslog(dir_.path() + "/log.sock");
  ASSERT_TRUE(syslog.bound());
  AuditLogOptions options;
  options.mirror = SyslogMirror(dir_.path() + "/log.sock");
  {
    auto log = OpenLog(options);
    ASSERT_TRUE(log->Append(Event(AuditOp::kOpenRead)).ok());
  }
  const std::vector<std::string> lines = Lines(ReadFile(path_));
  ASSERT_EQ(lines.size(), 1u);
  const std::string datagram = syslog.Receive();
  // What syslog(3) sends: <PRI>timestamp TAG[PID]: message; PRI 85 = authpriv.notice.
  const std::regex header(R"(<85>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d cadcanfs-audit\[\d+\]: )");
  std::smatch match;
  ASSERT_TRUE(std::regex_search(datagram, match, header, std::regex_constants::match_continuous))
      << datagram;
  EXPECT_EQ(datagram.substr(match.length()), lines[0]);
  EXPECT_EQ(datagram.find(kPlantedFolder), std::string::npos);
}

TEST_F(AuditLogTest, AnAbsentSyslogSocketLosesNoAuditLine) {
  AuditLogOptions options;
  options.mirror = SyslogMirror(dir_.path() + "/nobody-listens.sock");
  {
    auto log = OpenLog(options);
    ASSERT_TRUE(log->Append(Event(AuditOp::kOpenRead)).ok());
    ASSERT_TRUE(log->Append(Event(AuditOp::kDelete)).ok());
  }
  EXPECT_EQ(Lines(ReadFile(path_)).size(), 2u);
}

}  // namespace
}  // namespace cadcanfs::access
