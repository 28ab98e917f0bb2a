// HttpClient: the one HTTPS transport of a drive, on libcurl.
//
// One object per drive. It shares connections, DNS answers and TLS sessions between
// requests (a curl share handle), offers HTTP/2, bounds the requests in flight with a
// semaphore, and applies connect and low-speed timeouts. TLS 1.2 or newer with peer
// and host verification is always on; plain http is accepted only for
// http://127.0.0.1 (the tests' emulator), never for any other host.
//
// Redirects are never followed: a caller that gets a 302 decides itself where to go,
// so an Authorization header never reaches a pre-authenticated download host.
//
// Secrets: a bearer token is passed as a SecretBytes pointer and wiped from curl's
// header list after the request. Nothing here logs URLs (pre-authenticated URLs are
// secrets), headers or bodies.
//
// Thread safety: Send() may be called from any number of threads at once.
#ifndef CADCANFS_GRAPH_HTTP_CLIENT_H_
#define CADCANFS_GRAPH_HTTP_CLIENT_H_

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/common/status.h"
#include "cadcanfs/crypto/secret.h"

namespace cadcanfs::graph {

// Receives response body bytes as they arrive, with the response's HTTP status.
// Returning false stops the transfer; Send() then still succeeds with the status and
// headers received so far.
using BodySink = std::function<bool(long status, ByteSpan chunk)>;

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  // Extra headers as "Name: value" pairs (never Authorization: see bearer_token).
  std::vector<std::pair<std::string, std::string>> headers;
  Bytes body;
  // When set, "Authorization: Bearer <token>" is sent. Not owned.
  const SecretBytes* bearer_token = nullptr;
  // When set, the response body goes here instead of HttpResponse::body.
  BodySink body_sink;
};

struct HttpResponse {
  long status = 0;
  // Header names in lower case, in arrival order.
  std::vector<std::pair<std::string, std::string>> headers;
  Bytes body;

  // The first header called `name` (any case), or nullopt.
  std::optional<std::string> Header(std::string_view name) const;
  std::string_view BodyText() const { return AsChars(body); }
};

struct HttpClientOptions {
  int max_in_flight = 6;
  std::chrono::seconds connect_timeout{15};
  // A transfer slower than low_speed_bytes per second for low_speed_time is dropped.
  std::chrono::seconds low_speed_time{60};
  long low_speed_bytes = 1024;
  std::string user_agent;  // empty means "cadcanfs/<version>"
};

// kOk when `url` may be used: https anywhere, or http to 127.0.0.1 only.
Status CheckUrlAllowed(std::string_view url);

class HttpClient {
 public:
  static Result<std::unique_ptr<HttpClient>> Create(const HttpClientOptions& options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request and waits for its response. Any HTTP status is a success here;
  // a transport failure (refused, reset, timeout, TLS) is kIoError. A refused URL is
  // kInvalidArgument.
  Result<HttpResponse> Send(const HttpRequest& request);

 private:
  struct Impl;
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The User-Agent every request carries: "cadcanfs/<version>".
std::string DefaultUserAgent();

}  // namespace cadcanfs::graph

#endif  // CADCANFS_GRAPH_HTTP_CLIENT_H_
