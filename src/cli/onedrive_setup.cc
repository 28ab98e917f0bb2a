#include "onedrive_setup.h"

#include <unistd.h>

#include <iostream>

#include "cadcanfs/graph/auth.h"
#include "cadcanfs/graph/graph_client.h"
#include "cadcanfs/graph/http_client.h"
#include "cadcanfs/graph/pacer.h"
#include "cadcanfs/graph/token_store.h"
#include "cadcanfs/store/forwarding_store.h"
#include "cadcanfs/store/onedrive_store.h"
#include "exit_codes.h"
#include "login_commands.h"
#include "support.h"

namespace cadcanfs::cli {

namespace {

// Everything a OneDrive store talks through, alive as long as the store.
struct OneDriveConnection {
  std::unique_ptr<graph::HttpClient> http;
  graph::Pacer pacer;
  std::unique_ptr<graph::TokenStore> tokens;
  std::unique_ptr<graph::Authenticator> auth;
  std::unique_ptr<graph::GraphClient> client;
};

// The OneDrive store together with its connection. The store goes first: its open
// files and session cancels still use the client.
class ConnectedStore final : public ForwardingStore {
 public:
  ConnectedStore(std::unique_ptr<OneDriveConnection> connection, std::unique_ptr<Store> store)
      : ForwardingStore(*store), connection_(std::move(connection)), store_(std::move(store)) {}

 private:
  const std::unique_ptr<OneDriveConnection> connection_;
  const std::unique_ptr<Store> store_;
};

int ReportUrl(const char* flag, const Status& refused) {
  return UsageError(std::string(flag) + ": " + refused.message());
}

// Signs in from the token file: the stored refresh token, kept in step with the
// service's rotations. False after a report.
bool SignInFromTokenStoreOrReport(const OneDriveAccess& access, OneDriveConnection& connection,
                                  int& exit_code) {
  std::optional<graph::StoredLogin> login =
      LoadStoredLoginOrReport(*access.token_file, access.keys, exit_code);
  if (!login) return false;
  auto key = TokenStoreKeyOrReport(access.keys, exit_code);
  if (!key) return false;
  connection.tokens = std::make_unique<graph::TokenStore>(*access.token_file, std::move(*key));
  connection.auth = std::make_unique<graph::Authenticator>(*connection.http, login->settings);
  connection.auth->SetRefreshToken(std::move(login->refresh_token));
  graph::TokenStore* tokens = connection.tokens.get();
  const graph::LoginSettings settings = login->settings;
  connection.auth->SetRefreshTokenSink(
      [tokens, settings](const SecretBytes& refresh) { return tokens->Save(settings, refresh); });
  // A command run beside the daemon shares the token file, and each redeems the
  // refresh token the other may just have rotated.
  connection.auth->SetRefreshTokenSource([tokens]() -> std::optional<SecretBytes> {
    auto stored = tokens->Load();
    if (!stored.ok()) return std::nullopt;
    return std::move(stored->refresh_token);
  });
  return true;
}

// --no-token-store: a device-code sign-in now; its tokens live in this process only.
bool SignInForThisProcessOrReport(const OneDriveAccess& access, OneDriveConnection& connection,
                                  int& exit_code) {
  std::string refused;
  const graph::LoginSettings settings =
      LoginSettingsFrom(access.login_url, access.tenant, access.client_id, access.drive, refused);
  if (!refused.empty()) {
    exit_code = UsageError(refused);
    return false;
  }
  connection.auth = std::make_unique<graph::Authenticator>(*connection.http, settings);
  exit_code = SignInWithDeviceCode(*connection.auth);
  return exit_code == exit_code::kOk;
}

// Signs in and makes the Graph client; nullptr after a report.
std::unique_ptr<OneDriveConnection> ConnectOrReport(const OneDriveAccess& access, int& exit_code) {
  if (!access.token_file && !access.no_token_store) {
    exit_code = UsageError(
        "a onedrive: location needs --token-file FILE (made by cadcanfs login) or "
        "--no-token-store");
    return nullptr;
  }
  if (access.token_file && access.no_token_store) {
    exit_code = UsageError("--token-file and --no-token-store exclude each other");
    return nullptr;
  }
  const std::string graph_url =
      access.graph_url.empty() ? graph::kDefaultGraphUrl : access.graph_url;
  if (Status allowed = graph::CheckUrlAllowed(graph_url); !allowed.ok()) {
    exit_code = ReportUrl("--graph-url", allowed);
    return nullptr;
  }
  auto connection = std::make_unique<OneDriveConnection>();
  auto http = graph::HttpClient::Create(graph::HttpClientOptions{});
  if (!http.ok()) {
    exit_code = Fail(http.status(), Stage::kData);
    return nullptr;
  }
  connection->http = std::move(http).value();
  const bool signed_in = access.no_token_store
                             ? SignInForThisProcessOrReport(access, *connection, exit_code)
                             : SignInFromTokenStoreOrReport(access, *connection, exit_code);
  if (!signed_in) return nullptr;
  graph::GraphClientOptions options;
  options.graph_url = graph_url;
  options.delta_page_size = 1000;  // the first poll enumerates the drive: fewer pages
  if (!access.drive.empty() && access.drive != "me") options.drive_id = access.drive;
  connection->client = std::make_unique<graph::GraphClient>(*connection->http, connection->pacer,
                                                            *connection->auth, options);
  return connection;
}

// Creates the folder `path` of the drive and its missing parents, through a store at the
// drive's root.
Status MakeFolderPath(graph::GraphClient& client, const std::string& path,
                      const OneDriveStoreOptions& options) {
  CADCANFS_ASSIGN_OR_RETURN(std::unique_ptr<Store> drive, OpenOneDriveStore(client, "/", options));
  std::string prefix;
  for (size_t start = 1; start <= path.size();) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (end > start) {
      if (!prefix.empty()) prefix.push_back('/');
      prefix.append(path, start, end - start);
      Status made = drive->MakeDir(prefix, 0700);
      if (!made.ok() && made.code() != Code::kAlreadyExists) return made;
    }
    start = end + 1;
  }
  return Status::Ok();
}

}  // namespace

bool IsOneDriveLocation(std::string_view location) {
  return location.substr(0, kOneDriveScheme.size()) == kOneDriveScheme;
}

OneDriveAccess OneDriveAccessFrom(const Args& args) {
  OneDriveAccess access;
  // A daemon rewrites the file when the service rotates the token, after leaving its
  // working directory.
  if (auto token_file = args.Value("token-file")) access.token_file = AbsolutePath(*token_file);
  access.no_token_store = args.Has("no-token-store");
  access.graph_url = args.Value("graph-url").value_or("");
  access.drive = args.Value("drive").value_or("");
  access.keys = KeyOptionsFrom(args);
  access.login_url = args.Value("login-url");
  access.tenant = args.Value("tenant");
  access.client_id = args.Value("client-id");
  return access;
}

std::unique_ptr<Store> OpenOneDriveOrReport(std::string_view location, const OneDriveAccess& access,
                                            int& exit_code, bool create_folder) {
  const std::string root(location.substr(kOneDriveScheme.size()));
  if (root.empty() || root[0] != '/') {
    exit_code = UsageError(
        "a onedrive: location needs an absolute folder path, such as "
        "onedrive:/Vaults/Office");
    return nullptr;
  }
  std::unique_ptr<OneDriveConnection> connection = ConnectOrReport(access, exit_code);
  if (!connection) return nullptr;
  OneDriveStoreOptions options;
  options.uid = getuid();
  options.gid = getgid();
  auto store = OpenOneDriveStore(*connection->client, root, options);
  if (create_folder && store.status().code() == Code::kNotFound) {
    if (Status made = MakeFolderPath(*connection->client, root, options); !made.ok()) {
      exit_code = Fail(made.WithContext("cannot create the OneDrive folder"), Stage::kData);
      return nullptr;
    }
    store = OpenOneDriveStore(*connection->client, root, options);
  }
  if (!store.ok()) {
    switch (store.status().code()) {
      case Code::kNotFound:
      case Code::kNotADirectory:
        exit_code = Fail(Status::Error(Code::kNotFound, "the OneDrive folder does not exist"),
                         Stage::kVault);
        break;
      case Code::kPermissionDenied:
        std::cerr << "cadcanfs: OneDrive refused the sign-in: " << store.status().message()
                  << " (run cadcanfs login again)\n";
        exit_code = exit_code::kLoginFailed;
        break;
      default:
        exit_code = Fail(store.status().WithContext("cannot reach OneDrive"), Stage::kData);
        break;
    }
    return nullptr;
  }
  return std::make_unique<ConnectedStore>(std::move(connection), std::move(store).value());
}

}  // namespace cadcanfs::cli
