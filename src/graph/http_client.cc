#include "cadcanfs/graph/http_client.h"

#include <curl/curl.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <condition_variable>
#include <cstring>
#include <mutex>

namespace cadcanfs::graph {
namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// Initialises libcurl once per process; curl_global_init is not thread-safe.
Status EnsureCurlInitialised() {
  static const CURLcode result = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (result != CURLE_OK) return Status::Error(Code::kInternal, "libcurl failed to initialise");
  return Status::Ok();
}

// A counting semaphore that bounds the requests in flight.
class Slots {
 public:
  explicit Slots(int count) : free_(count) {}
  void Acquire() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return free_ > 0; });
    --free_;
  }
  void Release() {
    {
      std::lock_guard lock(mu_);
      ++free_;
    }
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int free_;
};

struct SlotGuard {
  explicit SlotGuard(Slots& slots) : slots(slots) { slots.Acquire(); }
  ~SlotGuard() { slots.Release(); }
  Slots& slots;
};

// Frees a header list after wiping every header value (one may hold a bearer token).
struct HeaderList {
  curl_slist* list = nullptr;
  ~HeaderList() {
    for (curl_slist* node = list; node != nullptr; node = node->next) {
      OPENSSL_cleanse(node->data, std::strlen(node->data));
    }
    curl_slist_free_all(list);
  }
  bool Append(const char* line) {
    curl_slist* grown = curl_slist_append(list, line);
    if (grown == nullptr) return false;
    list = grown;
    return true;
  }
};

struct EasyHandle {
  CURL* handle = curl_easy_init();
  ~EasyHandle() {
    if (handle != nullptr) curl_easy_cleanup(handle);
  }
};

struct TransferState {
  CURL* easy;
  const HttpRequest* request;
  HttpResponse* response;
  size_t upload_offset = 0;
  bool sink_stopped = false;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* state = static_cast<TransferState*>(user);
  const size_t n = size * count;
  ByteSpan chunk(reinterpret_cast<const uint8_t*>(data), n);
  if (state->request->body_sink) {
    long status = 0;
    curl_easy_getinfo(state->easy, CURLINFO_RESPONSE_CODE, &status);
    if (!state->request->body_sink(status, chunk)) {
      state->sink_stopped = true;
      return 0;  // makes curl stop with CURLE_WRITE_ERROR
    }
    return n;
  }
  state->response->body.insert(state->response->body.end(), chunk.begin(), chunk.end());
  return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* state = static_cast<TransferState*>(user);
  const size_t n = size * count;
  std::string_view line(data, n);
  if (StartsWith(line, "HTTP/")) {
    state->response->headers.clear();  // a new response (e.g. after 100 Continue)
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
    value.remove_suffix(1);
  }
  state->response->headers.emplace_back(Lower(line.substr(0, colon)), std::string(value));
  return n;
}

size_t OnUpload(char* buffer, size_t size, size_t count, void* user) {
  auto* state = static_cast<TransferState*>(user);
  const Bytes& body = state->request->body;
  const size_t n = std::min(size * count, body.size() - state->upload_offset);
  if (n == 0) return 0;
  std::memcpy(buffer, body.data() + state->upload_offset, n);
  state->upload_offset += n;
  return n;
}

}  // namespace

std::optional<std::string> HttpResponse::Header(std::string_view name) const {
  const std::string wanted = Lower(name);
  for (const auto& [key, value] : headers) {
    if (key == wanted) return value;
  }
  return std::nullopt;
}

std::string DefaultUserAgent() { return std::string("cadcanfs/") + CADCANFS_VERSION; }

Status CheckUrlAllowed(std::string_view url) {
  if (StartsWith(url, "https://")) return Status::Ok();
  if (StartsWith(url, "http://127.0.0.1:") || StartsWith(url, "http://127.0.0.1/")) {
    return Status::Ok();
  }
  return Status::Error(Code::kInvalidArgument,
                       "only https URLs are allowed (plain http only to 127.0.0.1 for tests)");
}

struct HttpClient::Impl {
  explicit Impl(const HttpClientOptions& opts) : options(opts), slots(opts.max_in_flight) {
    if (options.user_agent.empty()) options.user_agent = DefaultUserAgent();
  }
  ~Impl() {
    if (share != nullptr) curl_share_cleanup(share);
  }

  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    static_cast<Impl*>(user)->locks[static_cast<size_t>(data) % kLockCount].lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* user) {
    static_cast<Impl*>(user)->locks[static_cast<size_t>(data) % kLockCount].unlock();
  }

  Status Configure(CURL* easy, const HttpRequest& request, TransferState& state,
                   HeaderList& headers) const;

  static constexpr size_t kLockCount = 8;
  HttpClientOptions options;
  Slots slots;
  CURLSH* share = nullptr;
  std::array<std::mutex, kLockCount> locks;
};

Status HttpClient::Impl::Configure(CURL* easy, const HttpRequest& request, TransferState& state,
                                   HeaderList& headers) const {
  const bool plain_loopback = StartsWith(request.url, "http://");
  bool ok = true;
  auto set = [&](CURLoption option, auto value) {
    ok = ok && curl_easy_setopt(easy, option, value) == CURLE_OK;
  };
  set(CURLOPT_URL, request.url.c_str());
  set(CURLOPT_SHARE, share);
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_FOLLOWLOCATION, 0L);
  set(CURLOPT_PROTOCOLS_STR, plain_loopback ? "http" : "https");
  set(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  set(CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  set(CURLOPT_SSL_VERIFYPEER, 1L);
  set(CURLOPT_SSL_VERIFYHOST, 2L);
  set(CURLOPT_CONNECTTIMEOUT, static_cast<long>(options.connect_timeout.count()));
  set(CURLOPT_LOW_SPEED_TIME, static_cast<long>(options.low_speed_time.count()));
  set(CURLOPT_LOW_SPEED_LIMIT, options.low_speed_bytes);
  set(CURLOPT_USERAGENT, options.user_agent.c_str());
  set(CURLOPT_WRITEFUNCTION, &OnBody);
  set(CURLOPT_WRITEDATA, &state);
  set(CURLOPT_HEADERFUNCTION, &OnHeader);
  set(CURLOPT_HEADERDATA, &state);
  set(CURLOPT_VERBOSE, 0L);

  if (request.method == "GET") {
    set(CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    set(CURLOPT_NOBODY, 1L);
  } else {
    set(CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  const bool sends_body = request.method == "POST" || request.method == "PUT" ||
                          request.method == "PATCH" || !request.body.empty();
  if (sends_body) {
    // An upload with a known size, so curl sends Content-Length and never chunks.
    set(CURLOPT_UPLOAD, 1L);
    set(CURLOPT_READFUNCTION, &OnUpload);
    set(CURLOPT_READDATA, &state);
    set(CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    if (request.method != "PUT") set(CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  bool header_ok = headers.Append("Expect:");  // no 100-continue round trip
  for (const auto& [name, value] : request.headers) {
    header_ok = header_ok && headers.Append((name + ": " + value).c_str());
  }
  if (request.bearer_token != nullptr) {
    std::string line = "Authorization: Bearer ";
    line.append(AsChars(request.bearer_token->span()));
    header_ok = header_ok && headers.Append(line.c_str());
    OPENSSL_cleanse(line.data(), line.size());
  }
  set(CURLOPT_HTTPHEADER, headers.list);
  if (!ok || !header_ok) return Status::Error(Code::kInternal, "could not set up an HTTP request");
  return Status::Ok();
}

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::~HttpClient() = default;

Result<std::unique_ptr<HttpClient>> HttpClient::Create(const HttpClientOptions& options) {
  CADCANFS_RETURN_IF_ERROR(EnsureCurlInitialised());
  if (options.max_in_flight < 1) {
    return Status::Error(Code::kInvalidArgument, "at least one request must be allowed in flight");
  }
  auto impl = std::make_unique<Impl>(options);
  impl->share = curl_share_init();
  if (impl->share == nullptr) return Status::Error(Code::kInternal, "libcurl share failed");
  bool ok =
      curl_share_setopt(impl->share, CURLSHOPT_LOCKFUNC, &Impl::Lock) == CURLSHE_OK &&
      curl_share_setopt(impl->share, CURLSHOPT_UNLOCKFUNC, &Impl::Unlock) == CURLSHE_OK &&
      curl_share_setopt(impl->share, CURLSHOPT_USERDATA, impl.get()) == CURLSHE_OK &&
      curl_share_setopt(impl->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) == CURLSHE_OK &&
      curl_share_setopt(impl->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) == CURLSHE_OK &&
      curl_share_setopt(impl->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) == CURLSHE_OK;
  if (!ok) return Status::Error(Code::kInternal, "libcurl share setup failed");
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

Result<HttpResponse> HttpClient::Send(const HttpRequest& request) {
  CADCANFS_RETURN_IF_ERROR(CheckUrlAllowed(request.url));
  SlotGuard slot(impl_->slots);
  EasyHandle easy;
  if (easy.handle == nullptr) return Status::Error(Code::kInternal, "libcurl handle failed");
  HttpResponse response;
  TransferState state{easy.handle, &request, &response};
  HeaderList headers;
  CADCANFS_RETURN_IF_ERROR(impl_->Configure(easy.handle, request, state, headers));
  const CURLcode result = curl_easy_perform(easy.handle);
  curl_easy_getinfo(easy.handle, CURLINFO_RESPONSE_CODE, &response.status);
  if (result == CURLE_WRITE_ERROR && state.sink_stopped) return response;
  if (result != CURLE_OK) {
    // curl's own sentence names the failure class only (no URL).
    return Status::Error(Code::kIoError,
                         std::string("HTTP transfer failed: ") + curl_easy_strerror(result));
  }
  return response;
}

}  // namespace cadcanfs::graph
