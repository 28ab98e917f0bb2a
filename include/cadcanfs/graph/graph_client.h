// GraphClient: typed OneDrive driveItem calls for one drive, on HttpClient + Pacer.
//
// Items are addressed by id; a path is resolved only for the mount root. Listing fills
// every field a stat needs in one request per 1000 children. Downloads follow the 302
// themselves and never send the token to the download host. Uploads use a simple PUT
// below 4 MiB (and for empty files) and an upload session above, resuming from
// nextExpectedRanges after a lost fragment and checking QuickXorHash when the
// service returns one. Nothing here logs a name, a path, a URL or a token.
//
// Thread safety: all methods may be called concurrently.
#ifndef CADCANFS_GRAPH_GRAPH_CLIENT_H_
#define CADCANFS_GRAPH_GRAPH_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/common/status.h"
#include "cadcanfs/graph/auth.h"
#include "cadcanfs/graph/http_client.h"
#include "cadcanfs/graph/pacer.h"
#include "cadcanfs/graph/quick_xor_hash.h"

namespace cadcanfs::graph {

inline constexpr char kDefaultGraphUrl[] = "https://graph.microsoft.com/v1.0";
inline constexpr uint64_t kSimpleUploadMax = 4 * 1024 * 1024;         // below: PUT /content
inline constexpr uint64_t kFragmentUnit = 327'680;                    // 320 KiB
inline constexpr uint64_t kDefaultFragmentSize = 32 * kFragmentUnit;  // 10 MiB
inline constexpr uint64_t kMaxFragmentSize = 60 * 1024 * 1024;        // exclusive

using TimePoint = std::chrono::sys_time<std::chrono::nanoseconds>;

// What a stat or a listing needs of a driveItem.
struct DriveItem {
  std::string id;
  std::string name;
  std::string parent_id;
  int64_t size = 0;
  std::string etag;
  std::string ctag;   // empty for folders on Business
  TimePoint mtime{};  // fileSystemInfo, else the service's times
  TimePoint ctime{};
  bool is_folder = false;
  bool is_file = false;
  bool deleted = false;        // delta tombstones carry only id and parent
  std::string quick_xor_hash;  // base64, when the service has one
};

enum class ConflictBehavior { kFail, kReplace, kRename };

// Where an upload goes: an existing item, or a new name under a parent.
struct UploadTarget {
  std::string item_id;    // replace this item, or
  std::string parent_id;  // create `name` under this folder
  std::string name;
};

struct UploadOptions {
  std::optional<ConflictBehavior> conflict;  // nullopt: the service's default
  std::string if_match;                      // eTag the target must still have
  std::optional<TimePoint> mtime;            // sent as fileSystemInfo
};

// Moves, renames and time changes in one PATCH. Empty fields are left alone.
struct ItemUpdate {
  std::string new_name;
  std::string new_parent_id;
  std::optional<TimePoint> mtime;  // a move resets the mtime unless it is sent again
  std::string if_match;
  std::optional<ConflictBehavior> conflict;
};

// What the drive's quota facet says, in bytes.
struct DriveQuota {
  uint64_t total = 0;
  uint64_t used = 0;
  uint64_t remaining = 0;
};

// An upload session the caller may persist (in its encrypted journal) to resume
// after a restart. Holds a pre-authenticated URL: a secret.
struct UploadSessionState {
  std::string upload_url;
  TimePoint expires_at{};
  uint64_t total_size = 0;
  uint64_t next_offset = 0;  // the service's first nextExpectedRanges start
  uint64_t hashed_upto = 0;  // bytes [0, hashed_upto) are in `hash`
  QuickXorHash::State hash{};
  UploadTarget target;
  UploadOptions options;

  std::string Serialize() const;
  static Result<UploadSessionState> Deserialize(std::string_view text);
};

// Reads `out.size()` bytes of the content being uploaded, at `offset`.
using ContentReader = std::function<Status(uint64_t offset, MutableByteSpan out)>;

// A folder's children, listed by path: the folder's id comes from the children's
// parentReference (empty when there are none).
struct FolderListing {
  std::string folder_id;
  std::vector<DriveItem> children;
};

struct DeltaResult {
  std::vector<DriveItem> changes;  // one entry per item id, its last state
  std::string delta_link;          // for the next call
  bool resync_required = false;    // 410: start over with a full enumeration
  std::string resync_link;         // the Location of the 410, if any
};

struct GraphClientOptions {
  std::string graph_url = kDefaultGraphUrl;
  std::string drive_id;  // empty: the signed-in user's drive (/me/drive)
  uint64_t fragment_size = kDefaultFragmentSize;
  int max_fragment_failures = 8;  // consecutive failures without progress, then kIoError
  int max_session_recreations = 2;
  int delta_page_size = 0;  // 0: the service's default
};

class GraphClient {
 public:
  // REQUIRES: `http`, `pacer` and `tokens` outlive the client.
  GraphClient(HttpClient& http, Pacer& pacer, TokenSource& tokens, GraphClientOptions options);

  // The drive's quota (GET the drive, $select=quota); nullopt for a drive that shows
  // none.
  Result<std::optional<DriveQuota>> Quota();

  // The item at a root-relative path ("" or "/" is the root).
  Result<DriveItem> ItemByPath(const std::string& path);
  Result<DriveItem> Item(const std::string& id);
  // The child named `name` (in any case) of the folder `parent_id`: one GET, no listing.
  Result<DriveItem> ChildByName(const std::string& parent_id, const std::string& name);
  // The item at `relative_path` ("a/b/c") below the folder `ancestor_id`: one GET.
  Result<DriveItem> DescendantByPath(const std::string& ancestor_id,
                                     const std::string& relative_path);
  // Every child, following @odata.nextLink ($top=1000).
  Result<std::vector<DriveItem>> ListChildren(const std::string& folder_id);
  // Every child of the folder at `relative_path` below `ancestor_id`, with no GET of the
  // folder first. (A file there lists no children.)
  Result<FolderListing> ListChildrenAt(const std::string& ancestor_id,
                                       const std::string& relative_path);
  // kAlreadyExists when the name is taken (case-insensitively).
  Result<DriveItem> CreateFolder(const std::string& parent_id, const std::string& name);
  Result<DriveItem> Update(const std::string& id, const ItemUpdate& update);
  Status Delete(const std::string& id, const std::string& if_match = {});

  // Reads up to out.size() bytes at `offset` into `out`; returns the count, which is
  // short only where the object ends (0 at or past the end). Reuses the item's
  // download URL while it works.
  Result<size_t> Download(const std::string& id, uint64_t offset, MutableByteSpan out);
  // As Download, for the file at `relative_path` below `ancestor_id`, with no GET of
  // the item first (its download URL is not kept).
  Result<size_t> DownloadAt(const std::string& ancestor_id, const std::string& relative_path,
                            uint64_t offset, MutableByteSpan out);

  // Uploads `size` bytes from `reader`: a simple PUT below 4 MiB, else a session.
  Result<DriveItem> Upload(const UploadTarget& target, uint64_t size, const ContentReader& reader,
                           const UploadOptions& options = {});
  Result<DriveItem> UploadSimple(const UploadTarget& target, ByteSpan content,
                                 const UploadOptions& options = {});
  Result<UploadSessionState> CreateUploadSession(const UploadTarget& target, uint64_t size,
                                                 const UploadOptions& options);
  // Sends the rest of a session; `progress` (optional) sees the state after each
  // fragment, so the caller can persist it.
  Result<DriveItem> ContinueUploadSession(
      UploadSessionState& state, const ContentReader& reader,
      const std::function<void(const UploadSessionState&)>& progress = {});
  Status CancelUploadSession(const UploadSessionState& state);

  // Changes since `delta_link` (empty: a full enumeration), following every page.
  Result<DeltaResult> Delta(const std::string& delta_link);

  const std::string& drive_base() const { return drive_base_; }

 private:
  struct Call {
    Call(std::string method_in, std::string url_in)
        : method(std::move(method_in)), url(std::move(url_in)) {}
    std::string method;
    std::string url;
    std::vector<std::pair<std::string, std::string>> headers;
    Bytes body;
    std::string json_body;
  };
  Result<HttpResponse> Authorized(const Call& call);
  Result<DriveItem> AuthorizedItem(const Call& call);
  // The item `id`, or the one at `relative_path` below it (whose URL is not kept).
  Result<std::string> FreshDownloadUrl(const std::string& id, const std::string& relative_path);
  Result<size_t> DownloadVia(const std::string& id, const std::string& relative_path,
                             uint64_t offset, MutableByteSpan out);
  Result<std::vector<DriveItem>> ListPages(std::string url);
  std::string ItemUrl(const std::string& id) const;
  // The item at `relative_path` ("a/b") below `ancestor_id`, each segment encoded.
  std::string DescendantUrl(const std::string& ancestor_id, const std::string& relative_path) const;
  std::string TargetUrl(const UploadTarget& target, const std::string& action) const;
  Result<HttpResponse> SendFragment(const UploadSessionState& state, uint64_t offset,
                                    const Bytes& data);
  Result<uint64_t> QuerySessionOffset(const UploadSessionState& state);
  Status RecreateSession(UploadSessionState& state);
  Status VerifyHash(const UploadSessionState& state, const DriveItem& item) const;
  // The target item, if it already holds exactly the session's content (hash checked).
  std::optional<DriveItem> CommittedUpload(const UploadSessionState& state);

  HttpClient& http_;
  Pacer& pacer_;
  TokenSource& tokens_;
  GraphClientOptions options_;
  std::string drive_base_;  // e.g. https://graph.microsoft.com/v1.0/me/drive
  std::mutex urls_mu_;
  std::map<std::string, std::string> download_urls_;  // GUARDED_BY(urls_mu_)
};

// Parses one driveItem JSON object (exposed for tests).
Result<DriveItem> ParseDriveItem(std::string_view json);
// ISO-8601 UTC with an optional fraction, as Graph writes it.
std::optional<TimePoint> ParseGraphTime(std::string_view text);
std::string FormatGraphTime(TimePoint time);  // whole seconds, "Z"

}  // namespace cadcanfs::graph

#endif  // CADCANFS_GRAPH_GRAPH_CLIENT_H_
