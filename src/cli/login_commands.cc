// cadcanfs login: the OAuth device-code sign-in; the refresh token goes, encrypted
// under a key derived from KEYOPTS, into the token file. cadcanfs logout deletes it.
#include "login_commands.h"

#include <iostream>

#include "cadcanfs/graph/auth.h"
#include "cadcanfs/graph/http_client.h"
#include "exit_codes.h"
#include "support.h"

namespace cadcanfs::cli {
namespace {

// The token store's key from KEYOPTS. A passphrase needs a salt, and the only salt
// there is lives in the vault, which cannot be reached before signing in.
Result<SecretBytes> TokenStoreKey(const KeyOptions& keys) {
  if (!keys.key_file && keys.passphrase_file && !getenv("CREDENTIALS_DIRECTORY")) {
    return Status::Error(Code::kInvalidArgument,
                         "the token store needs a key file (--key-file or the systemd "
                         "credential cadcanfs.key), not a passphrase");
  }
  KeyOptions raw_only = keys;
  raw_only.passphrase_file.reset();
  CADCANFS_ASSIGN_OR_RETURN(LoadedKey loaded, LoadKeyForNewVault(raw_only));
  return SecretBytes::CopyOf(loaded.master.token_store_key().span());
}

int LoginFailed(const Status& status) {
  std::cerr << "cadcanfs: login failed: " << status.message() << "\n";
  return exit_code::kLoginFailed;
}

void ShowPrompt(const graph::DeviceCodePrompt& prompt) {
  // The code goes to the person at the terminal: it is the point of the flow, and it
  // is useless without the sign-in that follows.
  std::cout << "To sign in, open " << prompt.verification_uri << " in a browser and enter the code "
            << prompt.user_code << "\n"
            << std::flush;
}

}  // namespace

std::optional<SecretBytes> TokenStoreKeyOrReport(const KeyOptions& keys, int& exit_code) {
  auto key = TokenStoreKey(keys);
  if (!key.ok()) {
    exit_code = Fail(key.status(), Stage::kKey);
    return std::nullopt;
  }
  return std::move(key).value();
}

std::optional<graph::StoredLogin> LoadStoredLoginOrReport(const std::string& token_file,
                                                          const KeyOptions& keys, int& exit_code) {
  std::optional<SecretBytes> key = TokenStoreKeyOrReport(keys, exit_code);
  if (!key) return std::nullopt;
  auto login = graph::TokenStore(token_file, std::move(*key)).Load();
  if (login.ok()) return std::move(login).value();
  std::cerr << "cadcanfs: " << login.status().message() << "\n";
  exit_code = login.status().code() == Code::kNotFound ? exit_code::kLoginFailed
                                                       : exit_code::kTokenStoreUnreadable;
  return std::nullopt;
}

int SignInWithDeviceCode(graph::Authenticator& auth) {
  Status login = auth.LoginWithDeviceCode(ShowPrompt);
  return login.ok() ? exit_code::kOk : LoginFailed(login);
}

graph::LoginSettings LoginSettingsFrom(const std::optional<std::string>& login_url,
                                       const std::optional<std::string>& tenant,
                                       const std::optional<std::string>& client_id,
                                       const std::string& drive, std::string& error) {
  graph::LoginSettings settings;
  settings.login_url = login_url.value_or(graph::kDefaultLoginUrl);
  settings.tenant = tenant.value_or(graph::kDefaultTenant);
  settings.client_id = client_id.value_or(graph::kPlaceholderClientId);
  settings.scope = graph::ScopeFor(!drive.empty() && drive != "me");
  if (Status allowed = graph::CheckUrlAllowed(settings.login_url); !allowed.ok()) {
    error = "--login-url: " + allowed.message();
  }
  return settings;
}

int RunLogin(const std::vector<std::string>& argv) {
  Args args(WithKeyFlags({"tenant", "client-id", "login-url", "token-file", "drive"}), {});
  if (auto error = args.Parse(argv); !error.empty()) return UsageError(error);
  if (!args.positional().empty()) return UsageError("login takes no arguments, only options");
  auto token_file = args.Value("token-file");
  if (!token_file) return UsageError("login needs --token-file FILE");

  std::string refused;
  const graph::LoginSettings settings =
      LoginSettingsFrom(args.Value("login-url"), args.Value("tenant"), args.Value("client-id"),
                        args.Value("drive").value_or(""), refused);
  if (!refused.empty()) return UsageError(refused);

  auto key = TokenStoreKey(KeyOptionsFrom(args));
  if (!key.ok()) return Fail(key.status(), Stage::kKey);
  graph::TokenStore store(*token_file, std::move(key).value());

  auto http = graph::HttpClient::Create(graph::HttpClientOptions{});
  if (!http.ok()) return Fail(http.status(), Stage::kData);
  graph::Authenticator auth(**http, settings);
  Status saved = Status::Error(Code::kInternal, "the service returned no refresh token");
  auth.SetRefreshTokenSink([&](const SecretBytes& refresh_token) {
    saved = store.Save(settings, refresh_token);
    return saved;
  });
  if (int code = SignInWithDeviceCode(auth); code != exit_code::kOk) return code;
  if (!saved.ok()) {
    std::cerr << "cadcanfs: signed in, but the token could not be stored: " << saved.message()
              << "\n";
    return exit_code::kIoError;
  }
  std::cout << "Signed in; the encrypted token is stored.\n";
  return exit_code::kOk;
}

int RunLogout(const std::vector<std::string>& argv) {
  Args args({"token-file"}, {});
  if (auto error = args.Parse(argv); !error.empty()) return UsageError(error);
  if (!args.positional().empty()) return UsageError("logout takes no arguments, only options");
  auto token_file = args.Value("token-file");
  if (!token_file) return UsageError("logout needs --token-file FILE");
  Status removed = graph::TokenStore::Remove(*token_file);
  if (removed.code() == Code::kNotFound) {
    std::cout << "There was no stored sign-in.\n";
    return exit_code::kOk;
  }
  if (removed.code() == Code::kCorrupt) {
    std::cerr << "cadcanfs: " << removed.message() << "\n";
    return exit_code::kTokenStoreUnreadable;
  }
  if (!removed.ok()) return Fail(removed, Stage::kData);
  std::cout << "Signed out; the stored token is deleted.\n";
  return exit_code::kOk;
}

}  // namespace cadcanfs::cli
