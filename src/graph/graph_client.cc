#include "cadcanfs/graph/graph_client.h"

#include <spdlog/spdlog.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_map>

#include "url_encoding.h"

namespace cadcanfs::graph {
namespace {

using nlohmann::json;

constexpr char kItemSelect[] =
    "$select=id,name,size,eTag,cTag,fileSystemInfo,createdDateTime,lastModifiedDateTime,"
    "folder,file,parentReference,deleted,root";
constexpr size_t kMaxErrorBody = 16 * 1024;

std::string ConflictName(ConflictBehavior behavior) {
  switch (behavior) {
    case ConflictBehavior::kFail:
      return "fail";
    case ConflictBehavior::kReplace:
      return "replace";
    case ConflictBehavior::kRename:
      return "rename";
  }
  return "fail";
}

json ParseJson(const HttpResponse& reply) {
  return json::parse(reply.body.begin(), reply.body.end(), nullptr, false);
}

std::string StringAt(const json& object, const char* name) {
  if (!object.is_object() || !object.contains(name) || !object[name].is_string()) return {};
  return object[name].get<std::string>();
}

const json* ObjectAt(const json& object, const char* name) {
  if (!object.is_object() || !object.contains(name) || !object[name].is_object()) return nullptr;
  return &object[name];
}

TimePoint TimeAt(const json& object, const char* name) {
  auto parsed = ParseGraphTime(StringAt(object, name));
  return parsed ? *parsed : TimePoint{};
}

DriveItem ItemFromJson(const json& object) {
  DriveItem item;
  item.id = StringAt(object, "id");
  item.name = StringAt(object, "name");
  if (object.contains("size") && object["size"].is_number_integer()) {
    item.size = object["size"].get<int64_t>();
  }
  item.etag = StringAt(object, "eTag");
  item.ctag = StringAt(object, "cTag");
  item.mtime = TimeAt(object, "lastModifiedDateTime");
  item.ctime = TimeAt(object, "createdDateTime");
  if (const json* info = ObjectAt(object, "fileSystemInfo")) {
    if (auto t = ParseGraphTime(StringAt(*info, "lastModifiedDateTime"))) item.mtime = *t;
    if (auto t = ParseGraphTime(StringAt(*info, "createdDateTime"))) item.ctime = *t;
  }
  item.is_folder = ObjectAt(object, "folder") != nullptr || ObjectAt(object, "root") != nullptr;
  if (const json* file = ObjectAt(object, "file")) {
    item.is_file = true;
    if (const json* hashes = ObjectAt(*file, "hashes")) {
      item.quick_xor_hash = StringAt(*hashes, "quickXorHash");
    }
  }
  if (const json* parent = ObjectAt(object, "parentReference"))
    item.parent_id = StringAt(*parent, "id");
  item.deleted = object.is_object() && object.contains("deleted");
  return item;
}

// The start of the first range in nextExpectedRanges ("12345-" or "12345-55232").
std::optional<uint64_t> FirstExpectedOffset(const json& reply) {
  if (!reply.is_object() || !reply.contains("nextExpectedRanges") ||
      !reply["nextExpectedRanges"].is_array() || reply["nextExpectedRanges"].empty() ||
      !reply["nextExpectedRanges"][0].is_string()) {
    return std::nullopt;
  }
  const std::string range = reply["nextExpectedRanges"][0].get<std::string>();
  uint64_t start = 0;
  if (std::sscanf(range.c_str(), "%lu", &start) != 1) return std::nullopt;
  return start;
}

void Sleep(Duration wait) { std::this_thread::sleep_for(wait); }

}  // namespace

std::optional<TimePoint> ParseGraphTime(std::string_view text) {
  if (text.size() < 20) return std::nullopt;
  const std::string copy(text);
  struct tm parts = {};
  int consumed = 0;
  if (std::sscanf(copy.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &parts.tm_year, &parts.tm_mon,
                  &parts.tm_mday, &parts.tm_hour, &parts.tm_min, &parts.tm_sec, &consumed) != 6) {
    return std::nullopt;
  }
  parts.tm_year -= 1900;
  parts.tm_mon -= 1;
  int64_t nanos = 0;
  size_t pos = static_cast<size_t>(consumed);
  if (pos < copy.size() && copy[pos] == '.') {
    int64_t scale = 100'000'000;
    for (++pos; pos < copy.size() && copy[pos] >= '0' && copy[pos] <= '9'; ++pos) {
      nanos += (copy[pos] - '0') * scale;
      scale /= 10;
    }
  }
  const std::string_view zone = std::string_view(copy).substr(pos);
  if (zone != "Z" && zone != "+00:00") return std::nullopt;
  const time_t seconds = timegm(&parts);
  return TimePoint(std::chrono::seconds(seconds) + std::chrono::nanoseconds(nanos));
}

std::string FormatGraphTime(TimePoint time) {
  const time_t seconds =
      std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count();
  struct tm parts = {};
  gmtime_r(&seconds, &parts);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return buffer;
}

Result<DriveItem> ParseDriveItem(std::string_view text) {
  auto object = json::parse(text, nullptr, false);
  if (object.is_discarded() || !object.is_object() || !object.contains("id")) {
    return Status::Error(Code::kCorrupt, "OneDrive sent an unreadable item");
  }
  return ItemFromJson(object);
}

std::string UploadSessionState::Serialize() const {
  json object = {{"version", 1},
                 {"upload_url", upload_url},
                 {"expires_at", FormatGraphTime(expires_at)},
                 {"total_size", total_size},
                 {"next_offset", next_offset},
                 {"hashed_upto", hashed_upto},
                 {"hash", Base64Encode(hash)},
                 {"item_id", target.item_id},
                 {"parent_id", target.parent_id},
                 {"name", target.name},
                 {"if_match", options.if_match}};
  if (options.conflict) object["conflict"] = ConflictName(*options.conflict);
  if (options.mtime) object["mtime"] = FormatGraphTime(*options.mtime);
  return object.dump();
}

Result<UploadSessionState> UploadSessionState::Deserialize(std::string_view text) {
  auto object = json::parse(text, nullptr, false);
  auto bad = [] { return Status::Error(Code::kCorrupt, "a saved upload session is unreadable"); };
  if (object.is_discarded() || !object.is_object() || object.value("version", 0) != 1) return bad();
  UploadSessionState state;
  try {
    state.upload_url = object.at("upload_url").get<std::string>();
    auto expires = ParseGraphTime(object.at("expires_at").get<std::string>());
    if (!expires) return bad();
    state.expires_at = *expires;
    state.total_size = object.at("total_size").get<uint64_t>();
    state.next_offset = object.at("next_offset").get<uint64_t>();
    state.hashed_upto = object.at("hashed_upto").get<uint64_t>();
    auto hash = Base64Decode(object.at("hash").get<std::string>());
    if (!hash || hash->size() != QuickXorHash::kSize) return bad();
    std::copy(hash->begin(), hash->end(), state.hash.begin());
    state.target.item_id = object.at("item_id").get<std::string>();
    state.target.parent_id = object.at("parent_id").get<std::string>();
    state.target.name = object.at("name").get<std::string>();
    state.options.if_match = object.at("if_match").get<std::string>();
    if (object.contains("conflict")) {
      const std::string conflict = object["conflict"].get<std::string>();
      state.options.conflict = conflict == "replace"  ? ConflictBehavior::kReplace
                               : conflict == "rename" ? ConflictBehavior::kRename
                                                      : ConflictBehavior::kFail;
    }
    if (object.contains("mtime")) {
      state.options.mtime = ParseGraphTime(object["mtime"].get<std::string>());
    }
  } catch (const json::exception&) {
    return bad();
  }
  return state;
}

GraphClient::GraphClient(HttpClient& http, Pacer& pacer, TokenSource& tokens,
                         GraphClientOptions options)
    : http_(http), pacer_(pacer), tokens_(tokens), options_(std::move(options)) {
  std::string base = options_.graph_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  drive_base_ = options_.drive_id.empty()
                    ? base + "/me/drive"
                    : base + "/drives/" + EncodePathSegment(options_.drive_id);
  if (options_.fragment_size == 0 || options_.fragment_size % kFragmentUnit != 0 ||
      options_.fragment_size >= kMaxFragmentSize) {
    options_.fragment_size = kDefaultFragmentSize;
  }
}

std::string GraphClient::ItemUrl(const std::string& id) const {
  return drive_base_ + "/items/" + EncodePathSegment(id);
}

std::string GraphClient::TargetUrl(const UploadTarget& target, const std::string& action) const {
  if (!target.item_id.empty()) return ItemUrl(target.item_id) + "/" + action;
  return ItemUrl(target.parent_id) + ":/" + EncodePathSegment(target.name) + ":/" + action;
}

Result<HttpResponse> GraphClient::Authorized(const Call& call) {
  SecretBytes token;
  HttpRequest request;
  request.method = call.method;
  request.url = call.url;
  request.headers = call.headers;
  if (!call.json_body.empty()) {
    request.headers.emplace_back("Content-Type", "application/json");
    request.body.assign(call.json_body.begin(), call.json_body.end());
  } else {
    request.body = call.body;
  }
  auto attempt = [&]() -> Result<HttpResponse> {
    CADCANFS_ASSIGN_OR_RETURN(token, tokens_.AccessToken());
    request.bearer_token = &token;
    return http_.Send(request);
  };
  auto renew = [&]() { return tokens_.RenewAfterRejection(token); };
  return pacer_.Run(attempt, renew);
}

Result<DriveItem> GraphClient::AuthorizedItem(const Call& call) {
  CADCANFS_ASSIGN_OR_RETURN(HttpResponse reply, Authorized(call));
  if (reply.status >= 400) return MapGraphError(reply);
  return ParseDriveItem(reply.BodyText());
}

Result<DriveItem> GraphClient::ItemByPath(const std::string& path) {
  std::string relative = path;
  while (!relative.empty() && relative.front() == '/') relative.erase(0, 1);
  while (!relative.empty() && relative.back() == '/') relative.pop_back();
  std::string url = drive_base_ + "/root";
  if (!relative.empty()) url += ":/" + EncodePath(relative) + ":";
  return AuthorizedItem(Call{"GET", url + "?" + kItemSelect});
}

Result<std::optional<DriveQuota>> GraphClient::Quota() {
  CADCANFS_ASSIGN_OR_RETURN(HttpResponse reply,
                            Authorized(Call{"GET", drive_base_ + "?$select=id,quota"}));
  if (reply.status >= 400) return MapGraphError(reply);
  const json drive = ParseJson(reply);
  auto quota = drive.find("quota");
  if (quota == drive.end() || !quota->is_object()) return std::optional<DriveQuota>();
  auto bytes = [&quota](const char* field) -> uint64_t {
    auto it = quota->find(field);
    return it != quota->end() && it->is_number() ? it->get<uint64_t>() : 0;
  };
  DriveQuota out{.total = bytes("total"), .used = bytes("used"), .remaining = bytes("remaining")};
  if (out.total == 0) return std::optional<DriveQuota>();  // a drive without a limit
  return std::optional<DriveQuota>(out);
}

Result<DriveItem> GraphClient::Item(const std::string& id) {
  return AuthorizedItem(Call{"GET", ItemUrl(id) + "?" + kItemSelect});
}

Result<DriveItem> GraphClient::ChildByName(const std::string& parent_id, const std::string& name) {
  return AuthorizedItem(
      Call{"GET", ItemUrl(parent_id) + ":/" + EncodePathSegment(name) + ":?" + kItemSelect});
}

std::string GraphClient::DescendantUrl(const std::string& ancestor_id,
                                       const std::string& relative_path) const {
  std::string encoded;
  for (size_t start = 0; start <= relative_path.size();) {
    size_t slash = relative_path.find('/', start);
    if (slash == std::string::npos) slash = relative_path.size();
    if (!encoded.empty()) encoded.push_back('/');
    encoded += EncodePathSegment(relative_path.substr(start, slash - start));
    start = slash + 1;
  }
  return ItemUrl(ancestor_id) + ":/" + encoded + ":";
}

Result<DriveItem> GraphClient::DescendantByPath(const std::string& ancestor_id,
                                                const std::string& relative_path) {
  return AuthorizedItem(Call{"GET", DescendantUrl(ancestor_id, relative_path) + "?" + kItemSelect});
}

Result<std::vector<DriveItem>> GraphClient::ListPages(std::string url) {
  std::vector<DriveItem> children;
  while (!url.empty()) {
    CADCANFS_ASSIGN_OR_RETURN(HttpResponse reply, Authorized(Call{"GET", url}));
    if (reply.status >= 400) return MapGraphError(reply);
    json page = ParseJson(reply);
    if (!page.is_object() || !page.contains("value") || !page["value"].is_array()) {
      return Status::Error(Code::kCorrupt, "OneDrive sent an unreadable folder listing");
    }
    for (const json& entry : page["value"]) children.push_back(ItemFromJson(entry));
    url = StringAt(page, "@odata.nextLink");
  }
  return children;
}

Result<std::vector<DriveItem>> GraphClient::ListChildren(const std::string& folder_id) {
  return ListPages(ItemUrl(folder_id) + "/children?$top=1000&" + kItemSelect);
}

Result<FolderListing> GraphClient::ListChildrenAt(const std::string& ancestor_id,
                                                  const std::string& relative_path) {
  FolderListing listing;
  CADCANFS_ASSIGN_OR_RETURN(listing.children, ListPages(DescendantUrl(ancestor_id, relative_path) +
                                                        "/children?$top=1000&" + kItemSelect));
  for (const DriveItem& child : listing.children) {
    if (child.parent_id.empty()) continue;
    if (!listing.folder_id.empty() && listing.folder_id != child.parent_id) {
      return Status::Error(Code::kCorrupt, "OneDrive listed children of several folders");
    }
    listing.folder_id = child.parent_id;
  }
  return listing;
}

Result<DriveItem> GraphClient::CreateFolder(const std::string& parent_id, const std::string& name) {
  json body = {
      {"name", name}, {"folder", json::object()}, {"@microsoft.graph.conflictBehavior", "fail"}};
  Call call{"POST", ItemUrl(parent_id) + "/children"};
  call.json_body = body.dump();
  return AuthorizedItem(call);
}

Result<DriveItem> GraphClient::Update(const std::string& id, const ItemUpdate& update) {
  json body = json::object();
  if (!update.new_name.empty()) body["name"] = update.new_name;
  if (!update.new_parent_id.empty()) body["parentReference"] = {{"id", update.new_parent_id}};
  if (update.mtime)
    body["fileSystemInfo"] = {{"lastModifiedDateTime", FormatGraphTime(*update.mtime)}};
  if (update.conflict) body["@microsoft.graph.conflictBehavior"] = ConflictName(*update.conflict);
  Call call{"PATCH", ItemUrl(id)};
  call.json_body = body.dump();
  if (!update.if_match.empty()) call.headers.emplace_back("If-Match", update.if_match);
  return AuthorizedItem(call);
}

Status GraphClient::Delete(const std::string& id, const std::string& if_match) {
  Call call{"DELETE", ItemUrl(id)};
  if (!if_match.empty()) call.headers.emplace_back("If-Match", if_match);
  CADCANFS_ASSIGN_OR_RETURN(HttpResponse reply, Authorized(call));
  if (reply.status >= 400) return MapGraphError(reply);
  return Status::Ok();
}

Result<std::string> GraphClient::FreshDownloadUrl(const std::string& id,
                                                  const std::string& relative_path) {
  const std::string content_url =
      (relative_path.empty() ? ItemUrl(id) : DescendantUrl(id, relative_path)) + "/content";
  CADCANFS_ASSIGN_OR_RETURN(HttpResponse reply, Authorized(Call{"GET", content_url}));
  if (reply.status >= 400) return MapGraphError(reply);
  auto location = reply.Header("location");
  if (reply.status != 302 || !location || location->empty()) {
    return Status::Error(Code::kIoError, "OneDrive gave no download location");
  }
  if (relative_path.empty()) {
    std::lock_guard lock(urls_mu_);
    download_urls_[id] = *location;
  }
  return *location;
}

Result<size_t> GraphClient::Download(const std::string& id, uint64_t offset, MutableByteSpan out) {
  return DownloadVia(id, std::string(), offset, out);
}

Result<size_t> GraphClient::DownloadAt(const std::string& ancestor_id,
                                       const std::string& relative_path, uint64_t offset,
                                       MutableByteSpan out) {
  return DownloadVia(ancestor_id, relative_path, offset, out);
}

Result<size_t> GraphClient::DownloadVia(const std::string& id, const std::string& relative_path,
                                        uint64_t offset, MutableByteSpan out) {
  if (out.empty()) return size_t{0};
  // Only an item addressed by id keeps its download URL.
  const bool cached_url = relative_path.empty();
  for (int round = 0; round < 2; ++round) {
    std::string url;
    if (cached_url) {
      std::lock_guard lock(urls_mu_);
      auto cached = download_urls_.find(id);
      if (cached != download_urls_.end()) url = cached->second;
    }
    if (url.empty()) {
      CADCANFS_ASSIGN_OR_RETURN(url, FreshDownloadUrl(id, relative_path));
    }
    size_t copied = 0;
    uint64_t seen = 0;  // body bytes received, counted from the body's first byte
    Bytes error_body;
    HttpRequest request;
    request.url = url;
    request.headers.emplace_back(
        "Range", "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + out.size() - 1));
    request.body_sink = [&](long status, ByteSpan chunk) {
      if (status != 200 && status != 206) {
        const size_t room = kMaxErrorBody - std::min(kMaxErrorBody, error_body.size());
        error_body.insert(error_body.end(), chunk.begin(),
                          chunk.begin() + static_cast<ptrdiff_t>(std::min(room, chunk.size())));
        return true;
      }
      // A 206 body starts at `offset`; a 200 that ignored Range starts at 0.
      const uint64_t body_start = status == 206 ? offset : 0;
      const uint64_t chunk_start = body_start + seen;
      seen += chunk.size();
      const uint64_t want_from = offset + copied;
      const uint64_t chunk_end = chunk_start + chunk.size();
      if (chunk_end > want_from && want_from >= chunk_start) {
        const size_t n =
            static_cast<size_t>(std::min<uint64_t>(chunk_end - want_from, out.size() - copied));
        std::memcpy(out.data() + copied, chunk.data() + (want_from - chunk_start), n);
        copied += n;
      }
      return copied < out.size();
    };
    auto attempt = [&]() -> Result<HttpResponse> {
      copied = 0;
      seen = 0;
      error_body.clear();
      return http_.Send(request);
    };
    CADCANFS_ASSIGN_OR_RETURN(HttpResponse reply, pacer_.Run(attempt));
    if (reply.status == 206 || reply.status == 200) {
      if (reply.status == 206) {
        auto range = reply.Header("content-range");
        uint64_t start = 0, last = 0, total = 0;
        const int fields =
            range ? std::sscanf(range->c_str(), "bytes %lu-%lu/%lu", &start, &last, &total) : 0;
        if (fields < 1 || start != offset) {
          return Status::Error(Code::kIoError, "OneDrive answered a different byte range");
        }
        // A range cut short before the object's end: the rest is asked for, so that a
        // short count always means the end.
        if (fields == 3 && copied > 0 && copied < out.size() && offset + copied < total) {
          CADCANFS_ASSIGN_OR_RETURN(
              size_t rest, DownloadVia(id, relative_path, offset + copied, out.subspan(copied)));
          return copied + rest;
        }
      }
      return copied;
    }
    if (reply.status == 416) return size_t{0};
    if (cached_url) {
      std::lock_guard lock(urls_mu_);
      download_urls_.erase(id);
    }
    if (reply.status == 401 || reply.status == 403 || reply.status == 410) {
      spdlog::debug("graph: download URL refused (HTTP {}), asking for a fresh one", reply.status);
      continue;
    }
    reply.body = std::move(error_body);
    return MapGraphError(reply);
  }
  return Status::Error(Code::kIoError, "OneDrive refused a fresh download URL too");
}

Result<DriveItem> GraphClient::UploadSimple(const UploadTarget& target, ByteSpan content,
                                            const UploadOptions& options) {
  std::string url = TargetUrl(target, "content");
  if (options.conflict)
    url += "?@microsoft.graph.conflictBehavior=" + ConflictName(*options.conflict);
  Call call{"PUT", url};
  call.headers.emplace_back("Content-Type", "application/octet-stream");
  if (!options.if_match.empty()) call.headers.emplace_back("If-Match", options.if_match);
  call.body.assign(content.begin(), content.end());
  CADCANFS_ASSIGN_OR_RETURN(DriveItem item, AuthorizedItem(call));
  if (!options.mtime) return item;
  // A simple PUT carries no fileSystemInfo; the time follows in a PATCH.
  ItemUpdate update;
  update.mtime = options.mtime;
  return Update(item.id, update);
}

Result<DriveItem> GraphClient::Upload(const UploadTarget& target, uint64_t size,
                                      const ContentReader& reader, const UploadOptions& options) {
  if (size < kSimpleUploadMax) {
    Bytes content(size);
    CADCANFS_RETURN_IF_ERROR(reader(0, content));
    return UploadSimple(target, content, options);
  }
  CADCANFS_ASSIGN_OR_RETURN(UploadSessionState state, CreateUploadSession(target, size, options));
  Result<DriveItem> done = ContinueUploadSession(state, reader);
  if (!done.ok()) {
    Status cancelled = CancelUploadSession(state);
    if (!cancelled.ok())
      spdlog::debug("graph: upload session not cancelled: {}", cancelled.message());
  }
  return done;
}

Result<UploadSessionState> GraphClient::CreateUploadSession(const UploadTarget& target,
                                                            uint64_t size,
                                                            const UploadOptions& options) {
  if (size == 0) {
    return Status::Error(Code::kInvalidArgument, "an empty file cannot use an upload session");
  }
  json item = {{"fileSize", size}};
  if (options.conflict) item["@microsoft.graph.conflictBehavior"] = ConflictName(*options.conflict);
  if (options.mtime) {
    item["fileSystemInfo"] = {{"lastModifiedDateTime", FormatGraphTime(*options.mtime)}};
  }
  Call call{"POST", TargetUrl(target, "createUploadSession")};
  call.json_body = json{{"item", item}}.dump();
  if (!options.if_match.empty()) call.headers.emplace_back("If-Match", options.if_match);
  CADCANFS_ASSIGN_OR_RETURN(HttpResponse reply, Authorized(call));
  if (reply.status >= 400) return MapGraphError(reply);
  json body = ParseJson(reply);
  UploadSessionState state;
  state.upload_url = StringAt(body, "uploadUrl");
  if (state.upload_url.empty()) {
    return Status::Error(Code::kIoError, "OneDrive created an upload session without a URL");
  }
  state.expires_at = TimeAt(body, "expirationDateTime");
  state.total_size = size;
  state.next_offset = FirstExpectedOffset(body).value_or(0);
  state.target = target;
  state.options = options;
  return state;
}

Result<HttpResponse> GraphClient::SendFragment(const UploadSessionState& state, uint64_t offset,
                                               const Bytes& data) {
  HttpRequest request;
  request.method = "PUT";
  request.url = state.upload_url;  // pre-authenticated: never with the bearer token
  request.headers.emplace_back("Content-Range", "bytes " + std::to_string(offset) + "-" +
                                                    std::to_string(offset + data.size() - 1) + "/" +
                                                    std::to_string(state.total_size));
  request.body = data;
  return http_.Send(request);
}

Result<uint64_t> GraphClient::QuerySessionOffset(const UploadSessionState& state) {
  HttpRequest request;
  request.url = state.upload_url;
  CADCANFS_ASSIGN_OR_RETURN(HttpResponse reply, http_.Send(request));
  if (reply.status >= 400) return MapGraphError(reply);
  auto offset = FirstExpectedOffset(ParseJson(reply));
  if (!offset) return Status::Error(Code::kIoError, "OneDrive did not say which bytes it expects");
  return *offset;
}

Status GraphClient::RecreateSession(UploadSessionState& state) {
  CADCANFS_ASSIGN_OR_RETURN(UploadSessionState fresh,
                            CreateUploadSession(state.target, state.total_size, state.options));
  // The content is the same, so the bytes already hashed stay hashed.
  fresh.hashed_upto = state.hashed_upto;
  fresh.hash = state.hash;
  state = std::move(fresh);
  return Status::Ok();
}

Status GraphClient::VerifyHash(const UploadSessionState& state, const DriveItem& item) const {
  if (item.quick_xor_hash.empty()) return Status::Ok();  // not every reply carries one
  if (state.hashed_upto != state.total_size) return Status::Ok();
  const std::string expected = QuickXorHash(state.hash).DigestBase64(state.total_size);
  if (expected != item.quick_xor_hash) {
    return Status::Error(Code::kIoError, "the uploaded content's hash does not match");
  }
  return Status::Ok();
}

std::optional<DriveItem> GraphClient::CommittedUpload(const UploadSessionState& state) {
  if (state.hashed_upto != state.total_size) return std::nullopt;
  Result<DriveItem> item =
      state.target.item_id.empty()
          ? AuthorizedItem(Call("GET", ItemUrl(state.target.parent_id) + ":/" +
                                           EncodePathSegment(state.target.name) + ":?" +
                                           kItemSelect))
          : Item(state.target.item_id);
  if (!item.ok() || item->size != static_cast<int64_t>(state.total_size)) return std::nullopt;
  // Only the hash tells our content from an older version of the same size.
  const std::string expected = QuickXorHash(state.hash).DigestBase64(state.total_size);
  if (item->quick_xor_hash != expected) return std::nullopt;
  spdlog::debug("graph: the final fragment's reply was lost, but the upload is committed");
  return std::move(item).value();
}

Result<DriveItem> GraphClient::ContinueUploadSession(
    UploadSessionState& state, const ContentReader& reader,
    const std::function<void(const UploadSessionState&)>& progress) {
  int failures = 0;
  int recreations = 0;
  auto note_failure = [&](const std::string& why) -> Status {
    if (++failures > options_.max_fragment_failures) {
      return Status::Error(Code::kIoError, "the upload kept failing: " + why);
    }
    spdlog::debug("graph: fragment failed ({}), attempt {}", why, failures);
    Sleep(pacer_.Backoff(failures));
    return Status::Ok();
  };
  auto recreate = [&]() -> Status {
    if (++recreations > options_.max_session_recreations) {
      return Status::Error(Code::kIoError, "the upload session was lost too often");
    }
    return RecreateSession(state);
  };
  // Asks the service where to continue; a vanished session starts over.
  // Asks the service where to continue. A session that vanished after its final
  // fragment may have committed with the reply lost: then the item is there already.
  std::optional<DriveItem> landed;
  auto resync = [&](bool final_fragment) -> Status {
    Result<uint64_t> offset = QuerySessionOffset(state);
    if (offset.ok()) {
      state.next_offset = *offset;
      return Status::Ok();
    }
    if (offset.status().code() != Code::kNotFound) return Status::Ok();  // retry the offset
    if (final_fragment) {
      landed = CommittedUpload(state);
      if (landed) return Status::Ok();
    }
    return recreate();
  };

  while (true) {
    if (state.expires_at != TimePoint{} && std::chrono::system_clock::now() >= state.expires_at) {
      CADCANFS_RETURN_IF_ERROR(recreate());
    }
    if (state.next_offset >= state.total_size) {
      return Status::Error(Code::kIoError, "the upload session expects no more bytes");
    }
    const uint64_t offset = state.next_offset;
    const uint64_t length = std::min(options_.fragment_size, state.total_size - offset);
    Bytes data(length);
    CADCANFS_RETURN_IF_ERROR(reader(offset, data));
    if (offset + length > state.hashed_upto && offset <= state.hashed_upto) {
      const uint64_t skip = state.hashed_upto - offset;
      QuickXorHash hash(state.hash);
      hash.AddAt(state.hashed_upto, ByteSpan(data).subspan(skip));
      state.hash = hash.state();
      state.hashed_upto = offset + length;
    }
    const bool final_fragment = offset + length == state.total_size;
    Result<HttpResponse> sent = SendFragment(state, offset, data);
    if (!sent.ok()) {
      if (sent.status().code() != Code::kIoError) return sent.status();
      CADCANFS_RETURN_IF_ERROR(note_failure("connection lost"));
      CADCANFS_RETURN_IF_ERROR(resync(final_fragment));
      if (landed) return *landed;
      continue;
    }
    const HttpResponse& reply = *sent;
    if (reply.status == 202) {
      json body = ParseJson(reply);
      state.next_offset = FirstExpectedOffset(body).value_or(offset + length);
      if (auto expires = ParseGraphTime(StringAt(body, "expirationDateTime"))) {
        state.expires_at = *expires;
      }
      failures = 0;
      if (progress) progress(state);
      continue;
    }
    if (reply.status == 200 || reply.status == 201) {
      CADCANFS_ASSIGN_OR_RETURN(DriveItem item, ParseDriveItem(reply.BodyText()));
      CADCANFS_RETURN_IF_ERROR(VerifyHash(state, item));
      return item;
    }
    if (reply.status == 404) {
      CADCANFS_RETURN_IF_ERROR(recreate());
      continue;
    }
    if (reply.status == 416 || reply.status >= 500 || reply.status == 429) {
      if (Pacer::IsThrottle(reply.status)) {
        if (auto wait = ParseRetryAfter(reply, std::chrono::system_clock::now())) Sleep(*wait);
      }
      CADCANFS_RETURN_IF_ERROR(note_failure("HTTP " + std::to_string(reply.status)));
      CADCANFS_RETURN_IF_ERROR(resync(final_fragment));
      if (landed) return *landed;
      continue;
    }
    return MapGraphError(reply);
  }
}

Status GraphClient::CancelUploadSession(const UploadSessionState& state) {
  HttpRequest request;
  request.method = "DELETE";
  request.url = state.upload_url;
  CADCANFS_ASSIGN_OR_RETURN(HttpResponse reply, http_.Send(request));
  if (reply.status >= 400 && reply.status != 404) return MapGraphError(reply);
  return Status::Ok();
}

Result<DeltaResult> GraphClient::Delta(const std::string& delta_link) {
  DeltaResult result;
  std::unordered_map<std::string, size_t> position;  // id -> index in result.changes
  std::vector<bool> superseded;
  std::string url = delta_link;
  if (url.empty()) {
    url = drive_base_ + "/root/delta?" + kItemSelect;
    if (options_.delta_page_size > 0) url += "&$top=" + std::to_string(options_.delta_page_size);
  }
  while (!url.empty()) {
    CADCANFS_ASSIGN_OR_RETURN(HttpResponse reply, Authorized(Call{"GET", url}));
    if (reply.status == 410) {
      DeltaResult resync;
      resync.resync_required = true;
      resync.resync_link = reply.Header("location").value_or("");
      return resync;
    }
    if (reply.status >= 400) return MapGraphError(reply);
    json page = ParseJson(reply);
    if (!page.is_object() || !page.contains("value") || !page["value"].is_array()) {
      return Status::Error(Code::kCorrupt, "OneDrive sent an unreadable change list");
    }
    for (const json& entry : page["value"]) {
      DriveItem item = ItemFromJson(entry);
      auto [it, inserted] = position.try_emplace(item.id, result.changes.size());
      if (!inserted) {
        superseded[it->second] = true;  // the last occurrence wins
        it->second = result.changes.size();
      }
      result.changes.push_back(std::move(item));
      superseded.push_back(false);
    }
    result.delta_link = StringAt(page, "@odata.deltaLink");
    url = StringAt(page, "@odata.nextLink");
  }
  std::vector<DriveItem> latest;
  latest.reserve(result.changes.size());
  for (size_t i = 0; i < result.changes.size(); ++i) {
    if (!superseded[i]) latest.push_back(std::move(result.changes[i]));
  }
  result.changes = std::move(latest);
  return result;
}

}  // namespace cadcanfs::graph
