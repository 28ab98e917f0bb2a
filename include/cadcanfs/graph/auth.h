// Sign-in to Microsoft identity: the OAuth 2.0 device-code flow (RFC 8628) and
// refresh-token renewal, for a public client (no secret).
//
// Access tokens live only in memory, in SecretBytes. They are renewed before they
// expire (at 80 % of their lifetime), one renewal at a time, and once more when Graph
// rejects one (401). Every new refresh token the service returns is handed to the
// rotation sink (the token store saves it atomically); the old one is never reused.
// No token, device code or Authorization header is ever logged.
//
// Thread safety: Authenticator is safe to use from many threads once signed in.
#ifndef CADCANFS_GRAPH_AUTH_H_
#define CADCANFS_GRAPH_AUTH_H_

#include <functional>
#include <mutex>
#include <string>

#include "cadcanfs/common/status.h"
#include "cadcanfs/crypto/secret.h"
#include "cadcanfs/graph/http_client.h"
#include "cadcanfs/graph/pacer.h"

namespace cadcanfs::graph {

// A placeholder, not a registered application: an administrator registers a public
// client application (device-code flow enabled) in Entra ID and passes its id with
// --client-id. The service refuses this one with invalid_client / unauthorized_client.
inline constexpr char kPlaceholderClientId[] = "00000000-0000-0000-0000-000000000000";
inline constexpr char kDefaultLoginUrl[] = "https://login.microsoftonline.com";
inline constexpr char kDefaultTenant[] = "common";

// The scopes to ask for: Files.ReadWrite for the user's own drive, .All for a drive id.
std::string ScopeFor(bool specific_drive);

struct LoginSettings {
  std::string login_url = kDefaultLoginUrl;
  std::string tenant = kDefaultTenant;
  std::string client_id = kPlaceholderClientId;
  std::string scope = ScopeFor(false);
};

// What the user must do: open `verification_uri` and enter `user_code`.
struct DeviceCodePrompt {
  std::string verification_uri;
  std::string user_code;
  std::string message;
};

// Supplies access tokens to the Graph client.
class TokenSource {
 public:
  virtual ~TokenSource() = default;
  // A valid access token, renewed first if it is near its end.
  virtual Result<SecretBytes> AccessToken() = 0;
  // Graph answered 401 to `rejected`: renew unless another thread already did.
  virtual Status RenewAfterRejection(const SecretBytes& rejected) = 0;
};

struct AuthTiming {
  PacerClock clock;
  Duration slow_down_increment{5000};  // RFC 8628 section 3.5
  double renew_at_fraction = 0.8;      // of an access token's lifetime
  // How long a refused refresh token waits for another process's successor to reach
  // the token file (it redeems, then saves), and how often it looks.
  Duration rotation_wait{3000};
  Duration rotation_poll{100};
};

class Authenticator : public TokenSource {
 public:
  using RefreshTokenSink = std::function<Status(const SecretBytes& refresh_token)>;
  // The refresh token as stored now, or nullopt.
  using RefreshTokenSource = std::function<std::optional<SecretBytes>()>;

  Authenticator(HttpClient& http, LoginSettings settings, AuthTiming timing = {});

  // Runs the device-code flow: shows the prompt, then polls until the user signs in.
  // kPermissionDenied when declined or refused (invalid_grant, invalid_client...),
  // kStale when the code expired first.
  Status LoginWithDeviceCode(const std::function<void(const DeviceCodePrompt&)>& prompt);

  // Signs in from a stored refresh token; the first AccessToken() call redeems it.
  void SetRefreshToken(SecretBytes refresh_token);
  // Called with every new refresh token (after login and after each rotation).
  void SetRefreshTokenSink(RefreshTokenSink sink);
  // Where the refresh token is stored, when other processes share it (a daemon and the
  // commands run beside it use one token file): if the service refuses ours, another
  // process may have redeemed it and be storing its successor, which is awaited for
  // AuthTiming::rotation_wait and tried once.
  void SetRefreshTokenSource(RefreshTokenSource source);

  Result<SecretBytes> AccessToken() override;
  Status RenewAfterRejection(const SecretBytes& rejected) override;

  const LoginSettings& settings() const { return settings_; }

 private:
  Result<HttpResponse> PostForm(const std::string& endpoint, std::string& form);
  Status AcceptTokens(const HttpResponse& reply);          // REQUIRES: mu_ held
  Status RenewLocked();                                    // REQUIRES: mu_ held
  Status RedeemRefreshTokenLocked();                       // REQUIRES: mu_ held
  std::optional<SecretBytes> SuccessorFromSourceLocked();  // REQUIRES: mu_ held
  void Sleep(Duration wait);
  std::string Endpoint(const std::string& name) const;

  HttpClient& http_;
  LoginSettings settings_;
  AuthTiming timing_;
  Pacer pacer_;
  std::mutex mu_;  // one renewal at a time
  SecretBytes access_token_;
  SecretBytes refresh_token_;
  Clock::time_point renew_at_;
  RefreshTokenSink sink_;
  RefreshTokenSource source_;
};

}  // namespace cadcanfs::graph

#endif  // CADCANFS_GRAPH_AUTH_H_
