#include "cadcanfs/graph/auth.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "url_encoding.h"

namespace cadcanfs::graph {
namespace {

constexpr char kDeviceCodeGrant[] = "urn:ietf:params:oauth:grant-type:device_code";

void Wipe(std::string& text) { OPENSSL_cleanse(text.data(), text.size()); }
void Wipe(Bytes& bytes) { OPENSSL_cleanse(bytes.data(), bytes.size()); }

SecretBytes SecretFrom(std::string& text) {
  SecretBytes secret = SecretBytes::CopyOf(AsBytes(text));
  Wipe(text);
  return secret;
}

nlohmann::json ParseReplyJson(const HttpResponse& reply) {
  return nlohmann::json::parse(reply.body.begin(), reply.body.end(), nullptr, false);
}

std::string StringField(const nlohmann::json& json, const char* name) {
  if (!json.is_object() || !json.contains(name) || !json[name].is_string()) return {};
  return json[name].get<std::string>();
}

double NumberField(const nlohmann::json& json, const char* name, double fallback) {
  if (!json.is_object() || !json.contains(name)) return fallback;
  const auto& value = json[name];
  if (value.is_number()) return value.get<double>();
  if (value.is_string()) {
    try {
      return std::stod(value.get<std::string>());
    } catch (const std::exception&) {
      return fallback;
    }
  }
  return fallback;
}

Duration Seconds(double seconds) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
}

// The sentence for an identity-platform error that ends the sign-in.
Status LoginError(const std::string& error) {
  if (error == "authorization_declined" || error == "access_denied") {
    return Status::Error(Code::kPermissionDenied, "the sign-in was declined");
  }
  if (error == "expired_token") {
    return Status::Error(Code::kStale, "the sign-in code expired before it was used");
  }
  if (error == "invalid_grant") {
    return Status::Error(
        Code::kPermissionDenied,
        "the sign-in is no longer valid (invalid_grant): run cadcanfs login again");
  }
  return Status::Error(Code::kPermissionDenied,
                       "the identity service refused the sign-in (" +
                           (error.empty() ? std::string("no reason given") : error) + ")");
}

}  // namespace

std::string ScopeFor(bool specific_drive) {
  return specific_drive ? "Files.ReadWrite.All offline_access" : "Files.ReadWrite offline_access";
}

Authenticator::Authenticator(HttpClient& http, LoginSettings settings, AuthTiming timing)
    : http_(http),
      settings_(std::move(settings)),
      timing_(std::move(timing)),
      pacer_(RetryPolicy{}, timing_.clock) {}

std::string Authenticator::Endpoint(const std::string& name) const {
  std::string base = settings_.login_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/" + EncodePathSegment(settings_.tenant) + "/oauth2/v2.0/" + name;
}

Result<HttpResponse> Authenticator::PostForm(const std::string& endpoint, std::string& form) {
  HttpRequest request;
  request.method = "POST";
  request.url = Endpoint(endpoint);
  request.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                     {"Accept", "application/json"}};
  request.body.assign(form.begin(), form.end());
  Wipe(form);
  auto reply = pacer_.Run([&] { return http_.Send(request); });
  Wipe(request.body);
  return reply;
}

Status Authenticator::AcceptTokens(const HttpResponse& reply) {
  nlohmann::json json = ParseReplyJson(reply);
  std::string access = StringField(json, "access_token");
  std::string refresh = StringField(json, "refresh_token");
  const double expires_in = NumberField(json, "expires_in", 3600);
  if (json.is_object()) {
    for (const char* name : {"access_token", "refresh_token", "id_token"}) {
      if (json.contains(name) && json[name].is_string()) Wipe(json[name].get_ref<std::string&>());
    }
  }
  if (access.empty()) {
    Wipe(refresh);
    return Status::Error(Code::kCorrupt, "the identity service sent no access token");
  }
  access_token_ = SecretFrom(access);
  const auto lifetime = Seconds(expires_in * timing_.renew_at_fraction);
  renew_at_ = timing_.clock.now() + lifetime;
  if (!refresh.empty()) {
    refresh_token_ = SecretFrom(refresh);
    if (sink_) {
      Status saved = sink_(refresh_token_);
      if (!saved.ok())
        spdlog::warn("graph: the new refresh token was not saved: {}", saved.message());
    }
  }
  spdlog::debug("graph: access token renewed, valid for {} s", static_cast<int64_t>(expires_in));
  return Status::Ok();
}

Status Authenticator::LoginWithDeviceCode(
    const std::function<void(const DeviceCodePrompt&)>& prompt) {
  std::string form;
  AppendFormField(form, "client_id", settings_.client_id);
  AppendFormField(form, "scope", settings_.scope);
  CADCANFS_ASSIGN_OR_RETURN(HttpResponse start, PostForm("devicecode", form));
  nlohmann::json code_json = ParseReplyJson(start);
  if (start.status != 200) return LoginError(StringField(code_json, "error"));
  std::string device_code = StringField(code_json, "device_code");
  if (device_code.empty()) {
    return Status::Error(Code::kCorrupt, "the identity service sent no device code");
  }
  SecretBytes device_secret = SecretFrom(device_code);
  Wipe(code_json["device_code"].get_ref<std::string&>());
  Wipe(start.body);

  prompt(DeviceCodePrompt{StringField(code_json, "verification_uri"),
                          StringField(code_json, "user_code"), StringField(code_json, "message")});
  Duration interval = Seconds(NumberField(code_json, "interval", 5));
  const auto deadline = timing_.clock.now() + Seconds(NumberField(code_json, "expires_in", 900));
  while (true) {
    Sleep(interval);
    if (timing_.clock.now() > deadline) return LoginError("expired_token");
    std::string poll;
    AppendFormField(poll, "grant_type", kDeviceCodeGrant);
    AppendFormField(poll, "client_id", settings_.client_id);
    AppendFormField(poll, "device_code", AsChars(device_secret.span()));
    CADCANFS_ASSIGN_OR_RETURN(HttpResponse reply, PostForm("token", poll));
    if (reply.status == 200) {
      std::lock_guard lock(mu_);
      Status accepted = AcceptTokens(reply);
      Wipe(reply.body);
      return accepted;
    }
    const std::string error = StringField(ParseReplyJson(reply), "error");
    if (error == "authorization_pending") continue;
    if (error == "slow_down") {
      interval += timing_.slow_down_increment;
      spdlog::debug("graph: sign-in polling slowed down to {} ms", interval.count());
      continue;
    }
    return LoginError(error);
  }
}

void Authenticator::SetRefreshToken(SecretBytes refresh_token) {
  std::lock_guard lock(mu_);
  refresh_token_ = std::move(refresh_token);
  access_token_ = SecretBytes();
  renew_at_ = Clock::time_point();
}

void Authenticator::SetRefreshTokenSink(RefreshTokenSink sink) {
  std::lock_guard lock(mu_);
  sink_ = std::move(sink);
}

void Authenticator::SetRefreshTokenSource(RefreshTokenSource source) {
  std::lock_guard lock(mu_);
  source_ = std::move(source);
}

void Authenticator::Sleep(Duration wait) {
  if (timing_.clock.sleep) {
    timing_.clock.sleep(wait);
  } else {
    std::this_thread::sleep_for(wait);
  }
}

Status Authenticator::RenewLocked() {
  Status renewed = RedeemRefreshTokenLocked();
  if (renewed.code() != Code::kPermissionDenied || !source_) return renewed;
  std::optional<SecretBytes> successor = SuccessorFromSourceLocked();
  if (!successor) return renewed;
  refresh_token_ = std::move(*successor);
  return RedeemRefreshTokenLocked();
}

// Another process that redeemed our refresh token saves its successor a moment after
// the service answered it, so a file still holding ours is looked at again for a while.
std::optional<SecretBytes> Authenticator::SuccessorFromSourceLocked() {
  const auto deadline = timing_.clock.now() + timing_.rotation_wait;
  while (true) {
    std::optional<SecretBytes> stored = source_();
    if (stored && !stored->empty() && !ConstantTimeEqual(stored->span(), refresh_token_.span())) {
      return stored;
    }
    if (timing_.clock.now() >= deadline) return std::nullopt;
    Sleep(timing_.rotation_poll);
  }
}

Status Authenticator::RedeemRefreshTokenLocked() {
  if (refresh_token_.empty()) {
    return Status::Error(Code::kPermissionDenied, "not signed in: run cadcanfs login first");
  }
  std::string form;
  AppendFormField(form, "client_id", settings_.client_id);
  AppendFormField(form, "grant_type", "refresh_token");
  AppendFormField(form, "refresh_token", AsChars(refresh_token_.span()));
  AppendFormField(form, "scope", settings_.scope);
  CADCANFS_ASSIGN_OR_RETURN(HttpResponse reply, PostForm("token", form));
  if (reply.status != 200) {
    const std::string error = StringField(ParseReplyJson(reply), "error");
    if (reply.status >= 500) return MapGraphError(reply);
    return LoginError(error.empty() ? "invalid_grant" : error);
  }
  Status accepted = AcceptTokens(reply);
  Wipe(reply.body);
  return accepted;
}

Result<SecretBytes> Authenticator::AccessToken() {
  std::lock_guard lock(mu_);
  if (access_token_.empty() || timing_.clock.now() >= renew_at_) {
    CADCANFS_RETURN_IF_ERROR(RenewLocked());
  }
  return SecretBytes::CopyOf(access_token_.span());
}

Status Authenticator::RenewAfterRejection(const SecretBytes& rejected) {
  std::lock_guard lock(mu_);
  if (!access_token_.empty() && !ConstantTimeEqual(access_token_.span(), rejected.span())) {
    return Status::Ok();  // another request renewed it meanwhile
  }
  return RenewLocked();
}

}  // namespace cadcanfs::graph
