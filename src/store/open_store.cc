#include "cadcanfs/store/open_store.h"

#include <chrono>

#include "cadcanfs/store/local_store.h"
#include "cadcanfs/store/remote_like_store.h"

namespace cadcanfs {

namespace {

constexpr std::string_view kFileScheme = "file://";
constexpr std::string_view kOneDriveScheme = "onedrive:";
constexpr std::string_view kRemoteLikeScheme = "remote-like:";

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

// Applies one "name=value" option of a remote-like: location.
Status ApplyRemoteLikeOption(std::string_view option, RemoteLikeOptions& options) {
  const size_t equals = option.find('=');
  const std::string_view name = option.substr(0, equals);
  const std::string_view value =
      equals == std::string_view::npos ? std::string_view() : option.substr(equals + 1);
  if (name == "latency_ms") {
    if (value.empty() || value.size() > 6 ||
        value.find_first_not_of("0123456789") != std::string_view::npos) {
      return Status::Error(Code::kInvalidArgument, "latency_ms must be a number of milliseconds");
    }
    options.latency = std::chrono::milliseconds(std::stoul(std::string(value)));
    return Status::Ok();
  }
  if (name == "counts") {
    if (!StartsWith(value, "/")) {
      return Status::Error(Code::kInvalidArgument, "counts must be an absolute file path");
    }
    options.counts_file = std::string(value);
    return Status::Ok();
  }
  return Status::Error(Code::kInvalidArgument,
                       "a remote-like: location takes only the options latency_ms and counts");
}

// "remote-like:/dir[?option=value[&option=value...]]": the directory as OneDrive would
// hold it; options latency_ms=N (added to every call) and counts=FILE (call counts
// for benchmarks).
Result<std::unique_ptr<Store>> OpenRemoteLikeStore(std::string_view spec) {
  RemoteLikeOptions options;
  if (size_t query = spec.find('?'); query != std::string_view::npos) {
    std::string_view rest = spec.substr(query + 1);
    spec = spec.substr(0, query);
    for (;;) {
      const size_t amp = rest.find('&');
      CADCANFS_RETURN_IF_ERROR(ApplyRemoteLikeOption(rest.substr(0, amp), options));
      if (amp == std::string_view::npos) break;
      rest = rest.substr(amp + 1);
    }
  }
  if (!StartsWith(spec, "/")) {
    return Status::Error(Code::kInvalidArgument, "a remote-like: location needs an absolute path");
  }
  auto base = OpenLocalStore(std::string(spec));
  if (!base.ok() && base.status().code() == Code::kNotFound) {
    return Status::Error(Code::kNotFound, "the directory does not exist");
  }
  CADCANFS_RETURN_IF_ERROR(base.status());
  return std::unique_ptr<Store>(NewRemoteLikeStore(std::move(base).value(), std::move(options)));
}

Result<std::unique_ptr<Store>> OpenStore(std::string_view location) {
  if (StartsWith(location, kRemoteLikeScheme)) {
    return OpenRemoteLikeStore(location.substr(kRemoteLikeScheme.size()));
  }
  CADCANFS_ASSIGN_OR_RETURN(std::optional<std::string> local, LocalPathOfStore(location));
  if (!local) {
    return Status::Error(Code::kUnsupported,
                         "a OneDrive folder needs a sign-in: open it with the OneDrive flags");
  }
  auto store = OpenLocalStore(*local);
  if (!store.ok() && store.status().code() == Code::kNotFound) {
    return Status::Error(Code::kNotFound, "the vault directory does not exist");
  }
  return store;
}

}  // namespace cadcanfs
