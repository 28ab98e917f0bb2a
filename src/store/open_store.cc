#include "cadcanfs/store/open_store.h"

#include "cadcanfs/store/local_store.h"

namespace cadcanfs {

namespace {

constexpr std::string_view kFileScheme = "file://";
constexpr std::string_view kOneDriveScheme = "onedrive:";

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
  if (StartsWith(location, kOneDriveScheme)) return std::optional<std::string>();
  // Anything else that looks like a URI is a scheme we do not know; a path may still
  // contain ':' (but not "://" before its first '/').
  const size_t scheme_end = location.find("://");
  if (scheme_end != std::string_view::npos && location.find('/') > scheme_end) {
    return Status::Error(Code::kInvalidArgument, "unknown store location scheme");
  }
  return std::optional<std::string>(std::string(location));
}

Result<std::unique_ptr<Store>> OpenStore(std::string_view location) {
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
