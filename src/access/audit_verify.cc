#include "cadcanfs/access/audit_verify.h"

#include <nlohmann/json.hpp>

#include "cadcanfs/access/audit_log.h"
#include "cadcanfs/common/bytes.h"

namespace cadcanfs::access {

using json = nlohmann::json;

namespace {

constexpr std::string_view kMacMember = ",\"mac\":\"";
constexpr size_t kMacHexLength = 2 * kSha256Size;
// `,"mac":"` + 64 hex digits + `"}`
constexpr size_t kMacSuffixLength = kMacMember.size() + kMacHexLength + 2;

std::optional<Digest> DecodeDigest(std::string_view hex) {
  auto bytes = HexDecode(hex);
  if (!bytes || bytes->size() != kSha256Size) return std::nullopt;
  Digest digest;
  std::copy(bytes->begin(), bytes->end(), digest.begin());
  return digest;
}

// The complete lines of `text`, and whatever follows the last newline.
std::vector<std::string_view> SplitLines(std::string_view text, std::string_view& partial) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  for (size_t nl = text.find('\n'); nl != std::string_view::npos; nl = text.find('\n', start)) {
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  partial = text.substr(start);
  return lines;
}

bool Authentic(const SecretBytes& key, std::string_view line) {
  auto record = ParseAuditLine(line);
  return record.ok() && AuditLineMac(key, record->body) == record->mac;
}

// Walks the chain across files; one instance per VerifyAuditLogs call.
class ChainVerifier {
 public:
  ChainVerifier(std::span<const std::string> files, const SecretBytes& key)
      : files_(files), key_(key) {}

  VerifyReport Run() {
    for (size_t f = 0; f < files_.size(); ++f) {
      std::string_view partial;
      std::vector<std::string_view> lines = SplitLines(files_[f], partial);
      for (size_t i = 0; i < lines.size(); ++i) {
        if (!CheckLine(f, i, lines)) return report_;
      }
      if (!partial.empty()) {
        const bool last_file = f + 1 == files_.size();
        return Fail(last_file ? VerifyOutcome::kTruncated : VerifyOutcome::kTampered, f,
                    lines.size() + 1,
                    last_file ? "the last line is cut off: the log was truncated, or its disk "
                                "filled up"
                              : "this file ends inside a line, but a later file follows");
      }
    }
    if (report_.lines == 0) {
      return Fail(VerifyOutcome::kTruncated, 0, 1, "the log holds no lines: it was emptied");
    }
    if (last_event_ != "unmount" && last_event_ != "rotate") {
      report_.outcome = VerifyOutcome::kOpenEnd;
      report_.file_index = last_file_;
      report_.line = last_line_;
      report_.problem =
          "the log ends without an unmount line: the mount is still running, its daemon was "
          "killed, or lines were cut from the end";
    }
    return report_;
  }

 private:
  bool CheckLine(size_t f, size_t i, const std::vector<std::string_view>& lines) {
    const uint64_t n = i + 1;
    auto record = ParseAuditLine(lines[i]);
    if (!record.ok()) {
      return Reject(VerifyOutcome::kTampered, f, n,
                    "this line is not an audit record: it was edited or inserted");
    }
    if (AuditLineMac(key_, record->body) != record->mac) {
      if (report_.lines == 0 && NothingAuthenticates(lines)) {
        return Reject(VerifyOutcome::kWrongKey, f, n,
                      "no line of the log authenticates with this key: it was written under "
                      "another master key");
      }
      return Reject(VerifyOutcome::kTampered, f, n,
                    "this line does not authenticate: it was edited, or inserted by someone "
                    "without the key");
    }
    const bool genesis = record->seq == 1 && record->prev == Digest{};
    if (report_.lines == 0) {
      if (!genesis && record->event != "rotate") {
        return Reject(VerifyOutcome::kTampered, f, n,
                      "the log starts in the middle of its chain: lines were removed from its "
                      "start");
      }
      if (!genesis) {
        report_.notes.push_back("the chain starts at seq " + std::to_string(record->seq) +
                                ", continuing a rotated file that was not given");
      }
      report_.first_seq = record->seq;
    } else if (record->prev != expected_prev_) {
      if (genesis && i == 0) {
        report_.notes.push_back("file " + std::to_string(f + 1) +
                                " starts a new chain: the log before it was moved aside, not "
                                "rotated");
      } else if (record->seq > expected_seq_ && SeqAppearsLater(f, i, record->seq)) {
        return Reject(VerifyOutcome::kTampered, f, n,
                      "lines were reordered here (seq jumps from " +
                          std::to_string(expected_seq_ - 1) + " to " + std::to_string(record->seq) +
                          ", and a skipped line comes later)");
      } else if (record->seq > expected_seq_) {
        return Reject(VerifyOutcome::kTampered, f, n,
                      (record->seq - expected_seq_ == 1
                           ? std::string("a line was removed")
                           : std::to_string(record->seq - expected_seq_) + " lines were removed") +
                          " before this one (seq jumps from " + std::to_string(expected_seq_ - 1) +
                          " to " + std::to_string(record->seq) + ")");
      } else if (record->seq < expected_seq_) {
        return Reject(VerifyOutcome::kTampered, f, n,
                      "lines were reordered or repeated here (seq goes back from " +
                          std::to_string(expected_seq_ - 1) + " to " + std::to_string(record->seq) +
                          ")");
      } else {
        return Reject(VerifyOutcome::kTampered, f, n,
                      "this line belongs to another chain: it was copied in from another log");
      }
    } else if (record->seq != expected_seq_) {
      return Reject(VerifyOutcome::kTampered, f, n, "this line's seq does not follow the chain");
    }
    if (record->event == "mount" && report_.lines > 0 && last_event_ != "unmount") {
      report_.notes.push_back("file " + std::to_string(f + 1) + " line " + std::to_string(n) +
                              ": mounted again without an unmount line before (the previous "
                              "daemon stopped uncleanly)");
    }
    expected_prev_ = record->mac;
    expected_seq_ = record->seq + 1;
    last_event_ = record->event;
    last_file_ = f;
    last_line_ = n;
    report_.last_seq = record->seq;
    report_.lines++;
    return true;
  }

  // Whether a line after line `i` of file `f` carries a seq from the expected one up to
  // (not including) `seq`: then the lines were moved, not removed.
  bool SeqAppearsLater(size_t f, size_t i, uint64_t seq) const {
    for (size_t g = f; g < files_.size(); ++g) {
      std::string_view partial;
      std::vector<std::string_view> lines = SplitLines(files_[g], partial);
      for (size_t j = g == f ? i + 1 : 0; j < lines.size(); ++j) {
        auto later = ParseAuditLine(lines[j]);
        if (later.ok() && later->seq >= expected_seq_ && later->seq < seq) return true;
      }
    }
    return false;
  }

  bool NothingAuthenticates(const std::vector<std::string_view>& lines) const {
    for (std::string_view line : lines) {
      if (Authentic(key_, line)) return false;
    }
    return true;
  }

  bool Reject(VerifyOutcome outcome, size_t file, uint64_t line, std::string problem) {
    Fail(outcome, file, line, std::move(problem));
    return false;
  }

  VerifyReport Fail(VerifyOutcome outcome, size_t file, uint64_t line, std::string problem) {
    report_.outcome = outcome;
    report_.file_index = file;
    report_.line = line;
    report_.problem = std::move(problem);
    return report_;
  }

  std::span<const std::string> files_;
  const SecretBytes& key_;
  VerifyReport report_;
  Digest expected_prev_{};
  uint64_t expected_seq_ = 1;
  std::string last_event_;
  size_t last_file_ = 0;
  uint64_t last_line_ = 0;
};

}  // namespace

Result<AuditRecord> ParseAuditLine(std::string_view line) {
  const Status malformed = Status::Error(Code::kCorrupt, "not an audit log line");
  if (line.size() < kMacSuffixLength + 2 || line.front() != '{' ||
      line.substr(line.size() - kMacSuffixLength, kMacMember.size()) != kMacMember ||
      line.substr(line.size() - 2) != "\"}") {
    return malformed;
  }
  AuditRecord record;
  record.body = line.substr(0, line.size() - kMacSuffixLength);
  auto mac =
      DecodeDigest(line.substr(line.size() - kMacSuffixLength + kMacMember.size(), kMacHexLength));
  if (!mac) return malformed;
  record.mac = *mac;
  const json j = json::parse(std::string(record.body) + "}", nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("v") || j["v"] != 1 || !j.contains("seq") ||
      !j["seq"].is_number_unsigned() || !j.contains("prev") || !j["prev"].is_string() ||
      !j.contains("event") || !j["event"].is_string()) {
    return malformed;
  }
  auto prev = DecodeDigest(j["prev"].get<std::string>());
  if (!prev) return malformed;
  record.seq = j["seq"].get<uint64_t>();
  record.prev = *prev;
  auto text = [&](const char* member) {
    return j.contains(member) && j[member].is_string() ? j[member].get<std::string>() : "";
  };
  record.time = text("time");
  record.event = text("event");
  record.user = text("user");
  record.process = text("process");
  record.case_code = text("case");
  record.file_id = text("fid");
  record.to_case = text("to_case");
  record.attempt = text("attempt");
  record.result = text("result");
  if (j.contains("uid") && j["uid"].is_number_unsigned()) record.uid = j["uid"].get<uint32_t>();
  if (j.contains("pid") && j["pid"].is_number_integer()) record.pid = j["pid"].get<int64_t>();
  return record;
}

std::string FormatAuditRecord(const AuditRecord& record, bool authentic,
                              const AuditNameResolver* resolver) {
  std::string out = authentic ? "" : "UNVERIFIED ";
  out += "seq=" + std::to_string(record.seq) + " " + record.time + " " + record.event;
  out += " uid=" + std::to_string(record.uid) + "(" + record.user + ")";
  out += " pid=" + std::to_string(record.pid) + "(" + record.process + ")";
  auto with_case_names = [&](const std::string& code) {
    std::string text = code;
    if (resolver && resolver->case_paths && !code.empty()) {
      std::vector<std::string> paths = resolver->case_paths(code);
      std::string joined;
      for (const std::string& path : paths) joined += (joined.empty() ? "" : " | ") + path;
      text += "(" + (joined.empty() ? std::string("?") : joined) + ")";
    }
    return text;
  };
  if (!record.case_code.empty()) out += " case=" + with_case_names(record.case_code);
  if (!record.to_case.empty()) out += " to_case=" + with_case_names(record.to_case);
  if (!record.file_id.empty()) {
    out += " fid=" + record.file_id;
    if (resolver && resolver->file_path) {
      out += "(" + resolver->file_path(record.file_id).value_or("?") + ")";
    }
  }
  if (!record.attempt.empty()) out += " attempt=" + record.attempt;
  out += " result=" + record.result;
  return out;
}

VerifyReport VerifyAuditLogs(std::span<const std::string> files, const SecretBytes& key) {
  return ChainVerifier(files, key).Run();
}

}  // namespace cadcanfs::access
