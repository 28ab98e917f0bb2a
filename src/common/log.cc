#include "cadcanfs/common/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>

#include <cctype>
#include <memory>

namespace cadcanfs {

namespace {

constexpr size_t kEncodedRunThreshold = 16;
constexpr std::string_view kRedacted = "<redacted>";
constexpr std::string_view kFileIdPrefix = "fid:";

bool IsEncodingChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '=' || c == '_' ||
         c == '-';
}

bool TokenNeedsRedaction(std::string_view token) {
  if (token.substr(0, kFileIdPrefix.size()) == kFileIdPrefix) return false;
  if (token.find('/') != std::string_view::npos) return true;
  size_t run = 0;
  for (char c : token) {
    run = IsEncodingChar(c) ? run + 1 : 0;
    if (run >= kEncodedRunThreshold) return true;
  }
  return false;
}

// Wraps spdlog's pattern formatter and redacts the payload before formatting.
class RedactingFormatter final : public spdlog::formatter {
 public:
  RedactingFormatter() : inner_(std::make_unique<spdlog::pattern_formatter>("[%l] %v")) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string redacted = RedactForLog(std::string_view(msg.payload.data(), msg.payload.size()));
    spdlog::details::log_msg copy = msg;
    copy.payload = spdlog::string_view_t(redacted.data(), redacted.size());
    inner_->format(copy, dest);
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<RedactingFormatter>();
  }

 private:
  std::unique_ptr<spdlog::formatter> inner_;
};

}  // namespace

std::string RedactForLog(std::string_view message) {
  std::string out;
  out.reserve(message.size());
  size_t i = 0;
  while (i < message.size()) {
    if (std::isspace(static_cast<unsigned char>(message[i]))) {
      out.push_back(message[i++]);
      continue;
    }
    size_t end = i;
    while (end < message.size() && !std::isspace(static_cast<unsigned char>(message[end]))) ++end;
    std::string_view token = message.substr(i, end - i);
    if (TokenNeedsRedaction(token)) {
      out += kRedacted;
    } else {
      out += token;
    }
    i = end;
  }
  return out;
}

void InitLogging(const LogOptions& options) {
  std::shared_ptr<spdlog::logger> logger;
  if (options.target == LogTarget::kSyslog) {
    logger = std::make_shared<spdlog::logger>(
        "cadcanfs",
        std::make_shared<spdlog::sinks::syslog_sink_mt>("cadcanfs", 0, LOG_DAEMON, false));
  } else {
    logger = std::make_shared<spdlog::logger>("cadcanfs",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
  }
  logger->set_formatter(std::make_unique<RedactingFormatter>());
  logger->set_level(options.level);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace cadcanfs
