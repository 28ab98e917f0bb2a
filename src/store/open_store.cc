#include "cadcanfs/store/open_store.h"

#include <chrono>

#include "cadcanfs/store/local_store.h"
#include "cadcanfs/store/remote_like_store.h"

namespace cadcanfs {

namespace {

constexpr std::string_view kFileScheme = "file://";
constexpr std::string_view kOneDriveScheme = "onedrive:";
constexpr std::string_view kRemoteLikeScheme = "remote-like:";
constexpr std::string_view kLatencyQuery = "?latency_ms=";

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

}  // namespace

Result<std::optional<std::string>> LocalPathOfStore(std::string_view location) {
  if (StartsWith(location, kFileScheme)) {
    std::string_view path = location.substr(kFileScheme.size());
    if (!StartsWith(path, "/")) {
      return Status::Error(Code::kInvalidArgument, "a file:// location needs an absolute path");
    }
    return std::optional<std::string>(std::string(path));
  }
  if (StartsWith(location, kOneDriveScheme) || StartsWith(location, kRemoteLikeScheme)) {
    return std::optional<std::string>();
  }
  // Anything else that looks like a URI is a scheme we do not know; a path may still
  // contain ':' (but not "://" before its first '/').
  const size_t scheme_end = location.find("://");
  if (scheme_end != std::string_view::npos && location.find('/') > scheme_end) {
    return Status::Error(Code::kInvalidArgument, "unknown store location scheme");
  }
  return std::optional<std::string>(std::string(location));
}

// "remote-like:/dir[?latency_ms=N]": the directory as OneDrive would hold it.
Result<std::unique_ptr<Store>> OpenRemoteLikeStore(std::string_view spec) {
  std::chrono::milliseconds latency{0};
  if (size_t query = spec.find(kLatencyQuery); query != std::string_view::npos) {
    const std::string_view digits = spec.substr(query + kLatencyQuery.size());
    if (digits.empty() || digits.size() > 6 ||
        digits.find_first_not_of("0123456789") != std::string_view::npos) {
      return Status::Error(Code::kInvalidArgument, "latency_ms must be a number of milliseconds");
    }
    latency = std::chrono::milliseconds(std::stoul(std::string(digits)));
    spec = spec.substr(0, query);
  }
  if (!StartsWith(spec, "/")) {
    return Status::Error(Code::kInvalidArgument, "a remote-like: location needs an absolute path");
  }
  auto base = OpenLocalStore(std::string(spec));
  if (!base.ok() && base.status().code() == Code::kNotFound) {
    return Status::Error(Code::kNotFound, "the directory does not exist");
  }
  CADCANFS_RETURN_IF_ERROR(base.status());
  return std::unique_ptr<Store>(
      NewRemoteLikeStore(std::move(base).value(), RemoteLikeOptions{.latency = latency}));
}

Result<std::unique_ptr<Store>> OpenStore(std::string_view location) {
  if (StartsWith(location, kRemoteLikeScheme)) {
    return OpenRemoteLikeStore(location.substr(kRemoteLikeScheme.size()));
  }
  CADCANFS_ASSIGN_OR_RETURN(std::optional<std::string> local, LocalPathOfStore(location));
  if (!local) {
    return Status::Error(Code::kUnsupported, "OneDrive stores are not available in this build");
  }
  auto store = OpenLocalStore(*local);
  if (!store.ok() && store.status().code() == Code::kNotFound) {
    return Status::Error(Code::kNotFound, "the vault directory does not exist");
  }
  return store;
}

}  // namespace cadcanfs
