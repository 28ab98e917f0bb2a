#include "cadcanfs/graph/pacer.h"

#include <spdlog/spdlog.h>
#include <time.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

namespace cadcanfs::graph {
namespace {

struct GraphErrorCodes {
  std::string code;
  std::string inner_code;
};

// The top-level and innermost error codes of a Graph error body.
GraphErrorCodes ErrorCodesOf(const HttpResponse& response) {
  GraphErrorCodes codes;
  auto body = nlohmann::json::parse(response.body.begin(), response.body.end(), nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("error")) return codes;
  const auto& error = body["error"];
  if (!error.is_object()) return codes;
  if (error.contains("code") && error["code"].is_string()) codes.code = error["code"];
  const nlohmann::json* inner = &error;
  for (int depth = 0; depth < 8; ++depth) {
    const nlohmann::json* next = nullptr;
    for (const char* key : {"innerError", "innererror"}) {
      if (inner->contains(key) && (*inner)[key].is_object()) next = &(*inner)[key];
    }
    if (next == nullptr) break;
    if (next->contains("code") && (*next)["code"].is_string()) codes.inner_code = (*next)["code"];
    inner = next;
  }
  return codes;
}

std::string Describe(const HttpResponse& response, const GraphErrorCodes& codes) {
  std::string text = "HTTP " + std::to_string(response.status);
  if (!codes.code.empty()) text += " " + codes.code;
  if (!codes.inner_code.empty()) text += " (" + codes.inner_code + ")";
  return text;
}

}  // namespace

Status MapGraphError(const HttpResponse& response) {
  const GraphErrorCodes codes = ErrorCodesOf(response);
  const std::string what = Describe(response, codes);
  switch (response.status) {
    case 400:
      if (codes.inner_code == "pathIsTooLong") {
        return Status::Error(Code::kNameTooLong, "OneDrive refused the path as too long: " + what);
      }
      if (codes.inner_code == "invalidPath" || codes.code == "invalidRequest") {
        spdlog::warn("OneDrive refused a request as invalid: {}", what);
        return Status::Error(Code::kInvalidArgument,
                             "OneDrive refused the name or request: " + what);
      }
      return Status::Error(Code::kInvalidArgument, "OneDrive refused the request: " + what);
    case 401:
      return Status::Error(
          Code::kPermissionDenied,
          "OneDrive did not accept the sign-in; run cadcanfs login again: " + what);
    case 403:
      return Status::Error(Code::kPermissionDenied, "OneDrive denied access: " + what);
    case 404:
      return Status::Error(Code::kNotFound, "the OneDrive item does not exist: " + what);
    case 409:
      if (codes.code == "nameAlreadyExists") {
        return Status::Error(Code::kAlreadyExists,
                             "an item with that name already exists: " + what);
      }
      return Status::Error(Code::kChangedElsewhere, "the OneDrive item changed elsewhere: " + what);
    case 410:
      return Status::Error(Code::kStale, "OneDrive says the state is gone: " + what);
    case 412:
      return Status::Error(Code::kChangedElsewhere, "the OneDrive item changed elsewhere: " + what);
    case 413:
      return Status::Error(Code::kFileTooLarge, "OneDrive refused the request as too big: " + what);
    case 416:
      return Status::Error(Code::kInvalidArgument, "OneDrive refused the byte range: " + what);
    case 423:
      return Status::Error(Code::kBusy, "the OneDrive item is locked: " + what);
    case 507:
      return Status::Error(Code::kQuotaExceeded, "the OneDrive quota is used up: " + what);
    default:
      break;
  }
  if (Pacer::IsThrottle(response.status)) {
    return Status::Error(Code::kRetryLater, "OneDrive is throttling or unavailable: " + what);
  }
  return Status::Error(Code::kIoError, "OneDrive request failed: " + what);
}

std::optional<Duration> ParseRetryAfter(const HttpResponse& response, Clock::time_point now) {
  auto value = response.Header("retry-after");
  if (!value || value->empty()) return std::nullopt;
  double seconds = 0;
  auto [end, error] = std::from_chars(value->data(), value->data() + value->size(), seconds);
  if (error == std::errc() && end == value->data() + value->size() && seconds >= 0) {
    return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
  }
  struct tm parts = {};
  const char* parsed = strptime(value->c_str(), "%a, %d %b %Y %H:%M:%S GMT", &parts);
  if (parsed == nullptr) return std::nullopt;
  const auto at = Clock::from_time_t(timegm(&parts));
  if (at <= now) return Duration(0);
  return std::chrono::duration_cast<Duration>(at - now);
}

Pacer::Pacer(RetryPolicy policy, PacerClock clock)
    : policy_(policy), clock_(std::move(clock)), jitter_(std::random_device{}()) {}

Duration Pacer::Backoff(int attempt) {
  const int shift = std::clamp(attempt - 1, 0, 20);
  Duration full = std::min(policy_.max_backoff, policy_.initial_backoff * (int64_t{1} << shift));
  std::lock_guard lock(mu_);
  // "Equal jitter": half fixed, half random, so retries never bunch up yet always wait.
  std::uniform_int_distribution<int64_t> spread(0, std::max<int64_t>(full.count() / 2, 0));
  return Duration(full.count() - full.count() / 2 + spread(jitter_));
}

void Pacer::Sleep(Duration wait) {
  if (wait <= Duration(0)) return;
  if (clock_.sleep) {
    clock_.sleep(wait);
  } else {
    std::this_thread::sleep_for(wait);
  }
}

void Pacer::WaitForDrive() {
  Clock::time_point free_at;
  {
    std::lock_guard lock(mu_);
    free_at = drive_free_at_;
  }
  const auto now = clock_.now();
  if (free_at > now) Sleep(std::chrono::duration_cast<Duration>(free_at - now));
}

void Pacer::HoldDriveFor(Duration wait) {
  std::lock_guard lock(mu_);
  drive_free_at_ = std::max(drive_free_at_, clock_.now() + wait);
}

Result<HttpResponse> Pacer::Run(const std::function<Result<HttpResponse>()>& attempt,
                                const std::function<Status()>& refresh_auth) {
  int failures = 0;
  int throttles = 0;
  bool refreshed = false;
  while (true) {
    WaitForDrive();
    Result<HttpResponse> reply = attempt();
    if (!reply.ok()) {
      if (reply.status().code() != Code::kIoError || ++failures >= policy_.max_attempts) {
        return reply.status();
      }
      spdlog::debug("graph: transport failure, retry {} of {}", failures, policy_.max_attempts);
      Sleep(Backoff(failures));
      continue;
    }
    const long status = reply->status;
    if (status == 401 && refresh_auth && !refreshed) {
      refreshed = true;
      CADCANFS_RETURN_IF_ERROR(refresh_auth());
      continue;
    }
    if (IsThrottle(status)) {
      if (++throttles >= policy_.max_throttled_attempts) return reply;
      auto wait = ParseRetryAfter(*reply, clock_.now());
      Duration delay = wait ? std::min(*wait, policy_.max_retry_after) : Backoff(throttles);
      spdlog::info("graph: throttled (HTTP {}), waiting {} ms", status, delay.count());
      HoldDriveFor(delay);
      continue;
    }
    if (IsRetryableServerError(status)) {
      if (++failures >= policy_.max_attempts) return reply;
      spdlog::debug("graph: HTTP {}, retry {} of {}", status, failures, policy_.max_attempts);
      Sleep(Backoff(failures));
      continue;
    }
    return reply;
  }
}

}  // namespace cadcanfs::graph
