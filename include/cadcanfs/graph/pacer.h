// Pacer: the retry policy of one drive, and Graph's error replies as Status values.
//
// One Pacer per drive, shared by every request to it:
//   - 429, 503 and 509 wait as Retry-After says (delta-seconds or an HTTP date), or
//     back off exponentially with jitter when it is missing. The wait holds back every
//     request of the drive, because throttled requests still count against the limit.
//   - Other 5xx and transport failures are retried with backoff up to a limit, then
//     fail (kIoError): never an endless loop.
//   - A 401 asks the caller to refresh its token once and retry.
//   - Every other reply is final; MapGraphError turns error replies into a Status.
// The clock and the sleeper are injected so that tests run without real waits.
//
// Thread safety: Run() may be called from many threads at once.
#ifndef CADCANFS_GRAPH_PACER_H_
#define CADCANFS_GRAPH_PACER_H_

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string_view>

#include "cadcanfs/common/status.h"
#include "cadcanfs/graph/http_client.h"

namespace cadcanfs::graph {

using Clock = std::chrono::system_clock;
using Duration = std::chrono::milliseconds;

struct RetryPolicy {
  int max_attempts = 6;             // per request, for 5xx and transport failures
  int max_throttled_attempts = 10;  // per request, for 429/503/509
  Duration initial_backoff{100};    // doubled per attempt, with jitter
  Duration max_backoff{8000};
  Duration max_retry_after{std::chrono::minutes(10)};  // a longer Retry-After is capped
};

struct PacerClock {
  std::function<Clock::time_point()> now = [] { return Clock::now(); };
  std::function<void(Duration)> sleep;  // empty means std::this_thread::sleep_for
};

// The Status for a Graph (or download/upload host) error reply. Logs a reason for
// refused names without the name. REQUIRES: response.status >= 400.
Status MapGraphError(const HttpResponse& response);

// Retry-After as a wait from `now`: delta-seconds or an HTTP date; nullopt if absent
// or unreadable.
std::optional<Duration> ParseRetryAfter(const HttpResponse& response, Clock::time_point now);

class Pacer {
 public:
  explicit Pacer(RetryPolicy policy = {}, PacerClock clock = {});

  // Sends with `attempt` until the reply is final. `refresh_auth` (may be empty) is
  // called once after a 401; if it succeeds the request is sent again. Returns the
  // final response, whatever its status (callers map errors with MapGraphError), or
  // the Status after the retries are used up.
  Result<HttpResponse> Run(const std::function<Result<HttpResponse>()>& attempt,
                           const std::function<Status()>& refresh_auth = {});

  // The wait before retry number `attempt` (1-based) without Retry-After.
  Duration Backoff(int attempt);

  static bool IsThrottle(long status) { return status == 429 || status == 503 || status == 509; }
  static bool IsRetryableServerError(long status) {
    return status == 500 || status == 502 || status == 504;
  }

 private:
  void WaitForDrive();
  void HoldDriveFor(Duration wait);
  void Sleep(Duration wait);

  RetryPolicy policy_;
  PacerClock clock_;
  std::mutex mu_;
  Clock::time_point drive_free_at_;  // GUARDED_BY(mu_)
  std::minstd_rand jitter_;          // GUARDED_BY(mu_)
};

}  // namespace cadcanfs::graph

#endif  // CADCANFS_GRAPH_PACER_H_
