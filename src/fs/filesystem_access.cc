// FileSystem: the access policy and the audit log, applied per request
// (docs/access-policy.md, sections 3, 7 and 8). The policy itself lives in src/access and
// knows nothing of inodes; here an inode becomes the plaintext path it decides on.
#include <fcntl.h>

#include <cerrno>
#include <mutex>

#include "cadcanfs/fs/filesystem.h"
#include "filesystem_internal.h"

namespace cadcanfs {

using namespace fs_internal;  // NOLINT: the core's own helpers

namespace {

thread_local RequestScope* current_request = nullptr;

access::EntryKind KindOf(ObjectType type) {
  return type == ObjectType::kDirectory ? access::EntryKind::kDirectory : access::EntryKind::kOther;
}

Status Invisible() { return Status::Error(Code::kNotFound, "no such entry"); }

Status Refused() {
  return Status::Error(Code::kPermissionDenied, "the access policy allows reading only");
}

// The 32 hex digits of a vault file id from FileContent::id_for_log ("fid:<hex>"); a
// plain file has no such id.
std::string FileIdHex(std::string_view id_for_log) {
  constexpr std::string_view kPrefix = "fid:";
  if (id_for_log.substr(0, kPrefix.size()) != kPrefix) return {};
  std::string_view hex = id_for_log.substr(kPrefix.size());
  return hex.size() == 32 ? std::string(hex) : std::string();
}

}  // namespace

RequestScope::RequestScope(RequestCredentials credentials)
    : credentials_(std::move(credentials)), outer_(current_request) {
  current_request = this;
}

RequestScope::~RequestScope() { current_request = outer_; }

const std::vector<gid_t>& RequestScope::CurrentGroups() {
  if (current_request == nullptr) return Current().groups;
  RequestScope& scope = *current_request;
  if (!scope.groups_fetched_ && scope.credentials_.fetch_groups) {
    scope.credentials_.groups = scope.credentials_.fetch_groups();
  }
  scope.groups_fetched_ = true;
  return scope.credentials_.groups;
}

const RequestCredentials& RequestScope::Current() {
  static const RequestCredentials kNobody;
  return current_request != nullptr ? current_request->credentials_ : kNobody;
}

Result<std::vector<std::string>> FileSystem::PlainPathOf(Inode& inode) {
  std::vector<std::string> reversed;
  Inode* current = &inode;
  std::shared_ptr<Inode> hold;  // keeps the parent alive while we climb
  while (current->number != kRootInode) {
    if (reversed.size() > kMaxPathDepth) return Stale();
    std::lock_guard lock(current->mu);
    if (current->links.empty()) return Status::Error(Code::kNotFound, "object has no name");
    reversed.push_back(current->links.front().plain);
    hold = current->links.front().parent;
    current = hold.get();
  }
  return std::vector<std::string>(reversed.rbegin(), reversed.rend());
}

std::optional<size_t> FileSystem::DepthOf(Inode& inode) {
  size_t depth = 0;
  Inode* current = &inode;
  std::shared_ptr<Inode> hold;
  while (current->number != kRootInode) {
    if (depth > kMaxPathDepth) return std::nullopt;
    std::lock_guard lock(current->mu);
    if (current->links.empty()) return std::nullopt;
    ++depth;
    hold = current->links.front().parent;
    current = hold.get();
  }
  return depth;
}

int FileSystem::CaseDepth() const {
  if (!options_.access.policy) return access::kDefaultCaseDepth;
  return options_.access.policy->Current()->case_depth();
}

bool FileSystem::AnswersVaryByCaller(InodeNumber ino) {
  if (!policy_enabled()) return false;
  std::shared_ptr<Inode> inode = inodes_.Find(ino);
  if (!inode) return true;
  std::optional<size_t> depth = DepthOf(*inode);
  return !depth || *depth <= static_cast<size_t>(CaseDepth());
}

bool FileSystem::ListingVariesByCaller(InodeNumber ino) {
  if (!policy_enabled()) return false;
  std::shared_ptr<Inode> inode = inodes_.Find(ino);
  if (!inode) return true;
  std::optional<size_t> depth = DepthOf(*inode);
  return !depth || *depth < static_cast<size_t>(CaseDepth());
}

access::Decision FileSystem::DecideFor(const std::vector<std::string>& components,
                                       ObjectType type) {
  if (!options_.access.policy) return access::Decision{access::Access::kReadWrite, false};
  const RequestCredentials& who = RequestScope::Current();
  const std::vector<gid_t>& groups = RequestScope::CurrentGroups();
  access::Caller caller{who.uid, who.gid, {groups.begin(), groups.end()}};
  access::Decision decision =
      options_.access.policy->Current()->Decide(caller, components, KindOf(type));
  // A pseudonymized caller sees its cases only through the pseudonymized view; in the
  // real one, nothing of them rather than the patients' names (docs/access-policy.md 5).
  if (decision.pseudonymized && !who.pseudonymized_view) return access::Decision{};
  return decision;
}

Status FileSystem::CheckVisible(Inode& inode) {
  if (!policy_enabled() || inode.number == kRootInode) return Status::Ok();
  auto path = PlainPathOf(inode);
  // An orphan (its last name removed) stays usable through the fds that hold it.
  if (!path.ok()) return OrphanInfo(inode) ? Status::Ok() : Invisible();
  return DecideFor(*path, inode.type).visible() ? Status::Ok() : Invisible();
}

Status FileSystem::CheckVisibleNumber(InodeNumber ino) {
  if (!policy_enabled()) return Status::Ok();
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Inode> inode, InodeOf(ino));
  return CheckVisible(*inode);
}

Status FileSystem::CheckChangeableNumber(InodeNumber ino, std::string_view attempt) {
  if (!policy_enabled()) return Status::Ok();
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Inode> inode, InodeOf(ino));
  return CheckChangeable(*inode, attempt);
}

Status FileSystem::CheckChangeable(Inode& inode, std::string_view attempt) {
  if (!policy_enabled()) return Status::Ok();
  auto path = PlainPathOf(inode);  // empty for the root
  if (!path.ok()) return OrphanInfo(inode) ? Status::Ok() : Invisible();
  const access::Decision decision = DecideFor(*path, inode.type);
  if (!decision.visible()) return Invisible();
  if (decision.writable()) return Status::Ok();
  CADCANFS_RETURN_IF_ERROR(Audit(access::AuditOp::kDenied, *path, {}, EACCES, attempt));
  return Refused();
}

Status FileSystem::CheckFound(Inode& parent, std::string_view name, ObjectType type) {
  if (!policy_enabled()) return Status::Ok();
  CADCANFS_ASSIGN_OR_RETURN(std::vector<std::string> path, PlainPathOf(parent));
  path.emplace_back(name);
  if (DecideFor(path, type).visible()) return Status::Ok();
  // A probe for a name that exists but is hidden from this caller.
  CADCANFS_RETURN_IF_ERROR(Audit(access::AuditOp::kDenied, path, {}, ENOENT, "lookup"));
  return Invisible();
}

Status FileSystem::CheckEntryChange(Inode& parent, std::string_view name, ObjectType type,
                                    std::string_view attempt, std::vector<std::string>* path) {
  if (!policy_enabled() && !audit_enabled()) return Status::Ok();
  CADCANFS_ASSIGN_OR_RETURN(std::vector<std::string> components, PlainPathOf(parent));
  if (policy_enabled()) {
    const access::Decision on_parent = DecideFor(components, ObjectType::kDirectory);
    if (!on_parent.visible()) return Invisible();
    components.emplace_back(name);
    const access::Decision on_entry = DecideFor(components, type);
    if (!on_parent.writable() || !on_entry.writable()) {
      // An entry the caller could not see is refused as if the parent were read-only:
      // the answer must not tell whether such a name exists.
      CADCANFS_RETURN_IF_ERROR(Audit(access::AuditOp::kDenied, components, {}, EACCES, attempt));
      return Refused();
    }
  } else {
    components.emplace_back(name);
  }
  if (path != nullptr) *path = std::move(components);
  return Status::Ok();
}

Result<DirSnapshot> FileSystem::FilterListing(Inode& dir, DirSnapshot entries) {
  if (!policy_enabled()) return entries;
  CADCANFS_ASSIGN_OR_RETURN(std::vector<std::string> components, PlainPathOf(dir));
  // Inside a case every caller who may open the directory sees the same entries.
  if (components.size() >= static_cast<size_t>(CaseDepth())) return entries;
  DirSnapshot shown;
  components.emplace_back();
  for (PlainDirEntry& entry : entries) {
    components.back() = entry.name;
    if (DecideFor(components, entry.type).visible()) shown.push_back(std::move(entry));
  }
  return shown;
}

bool FileSystem::CachesPolicyAnswers(Inode& inode) {
  if (!policy_enabled() || inode.type != ObjectType::kDirectory) return false;
  std::optional<size_t> depth = DepthOf(inode);
  return depth && *depth <= static_cast<size_t>(CaseDepth());
}

namespace {
std::string LookupKey(InodeNumber parent, std::string_view name) {
  std::string key = std::to_string(parent);
  key.push_back('/');
  key.append(name);
  return key;
}
}  // namespace

std::optional<FileSystem::CachedLookup> FileSystem::CachedChild(Inode& parent,
                                                                std::string_view name) {
  if (!OnlyWriterOfRemoteStore() && !CachesPolicyAnswers(parent)) return std::nullopt;
  CachedLookup hit;
  {
    std::lock_guard lock(lookup_cache_mu_);
    auto it = lookup_cache_.find(LookupKey(parent.number, name));
    if (it == lookup_cache_.end()) return std::nullopt;
    hit = it->second;
  }
  const auto max_age = OnlyWriterOfRemoteStore() ? kRemoteAttrCacheAge : kPolicyCacheAge;
  if (hit.generation != namespace_generation_.load() ||
      std::chrono::steady_clock::now() - hit.at >= max_age) {
    return std::nullopt;
  }
  return hit;
}

void FileSystem::RememberChild(Inode& parent, std::string_view name, const Entry& entry,
                               uint64_t generation) {
  // Under a policy only directories (the case folders every path walk passes); on a
  // remote store every entry, so that opening a listed file needs no round trip.
  const bool directory = S_ISDIR(entry.attr.st_mode);
  if (!OnlyWriterOfRemoteStore() && !(directory && CachesPolicyAnswers(parent))) return;
  constexpr size_t kMaxEntries = 65536;
  std::lock_guard lock(lookup_cache_mu_);
  if (lookup_cache_.size() >= kMaxEntries) lookup_cache_.clear();
  lookup_cache_[LookupKey(parent.number, name)] =
      CachedLookup{entry.ino, directory ? ObjectType::kDirectory : ObjectType::kFile, entry.attr,
                   generation, std::chrono::steady_clock::now()};
}

std::optional<Entry> FileSystem::KnownChild(Inode& parent, std::string_view name) {
  std::optional<CachedLookup> hit = CachedChild(parent, name);
  if (!hit) return std::nullopt;
  // Counts the kernel's lookup, as recording it would; gone if it was dropped.
  std::shared_ptr<Inode> child = inodes_.Revive(hit->child);
  if (!child) return std::nullopt;
  if (hit->type == ObjectType::kDirectory) return Entry{hit->child, hit->attr};
  // A file's size and times change with writes, which change no name: its attributes
  // come from its open file or from what was read since it was last closed.
  std::optional<struct stat> attr = KnownAttr(*child);
  if (!attr) {
    inodes_.Forget(hit->child, 1);
    return std::nullopt;
  }
  return Entry{hit->child, *attr};
}

bool FileSystem::OnlyWriterOfRemoteStore() const {
  return !options_.shared_store && store_.capabilities().remote;
}

bool FileSystem::CachesAttributes(Inode& inode) {
  return OnlyWriterOfRemoteStore() || CachesPolicyAnswers(inode);
}

std::optional<struct stat> FileSystem::CachedAttr(Inode& inode) {
  if (!CachesAttributes(inode)) return std::nullopt;
  std::lock_guard lock(inode.mu);
  const auto max_age = OnlyWriterOfRemoteStore() ? kRemoteAttrCacheAge : kPolicyCacheAge;
  if (!inode.cached_attr || inode.cached_attr_generation != namespace_generation_.load() ||
      std::chrono::steady_clock::now() - inode.cached_attr_at >= max_age) {
    return std::nullopt;
  }
  return inode.cached_attr;
}

std::optional<struct stat> FileSystem::KnownAttr(Inode& inode) {
  std::shared_ptr<FileContent> file;
  {
    std::lock_guard lock(inode.mu);
    file = inode.file;
  }
  if (!file) return CachedAttr(inode);
  auto info = file->Stat();
  if (!info.ok()) return std::nullopt;
  return AttrOf(*info);
}

void FileSystem::RememberAttr(Inode& inode, const struct stat& attr, uint64_t generation) {
  if (!CachesAttributes(inode)) return;
  std::lock_guard lock(inode.mu);
  // An object open here answers from its open file: what was read may be behind it.
  if (inode.file) return;
  inode.cached_attr = attr;
  inode.cached_attr_generation = generation;
  inode.cached_attr_at = std::chrono::steady_clock::now();
}

std::string FileSystem::CaseCodeOf(const std::vector<std::string>& components) const {
  const size_t depth = static_cast<size_t>(CaseDepth());
  if (!options_.access.case_coder || components.size() < depth) return {};
  return options_.access.case_coder->CodeOf(components[depth - 1]);
}

Status FileSystem::Audit(access::AuditOp op, const std::vector<std::string>& components,
                         std::string_view file_id, int error, std::string_view attempt,
                         const std::vector<std::string>* to_components) {
  if (!audit_enabled()) return Status::Ok();
  const RequestCredentials& who = RequestScope::Current();
  access::AuditEvent event;
  event.op = op;
  event.uid = who.uid;
  event.pid = who.pid;
  event.case_code = CaseCodeOf(components);
  event.file_id = FileIdHex(file_id);
  if (to_components != nullptr) {
    std::string to_case = CaseCodeOf(*to_components);
    if (to_case != event.case_code) event.to_case = std::move(to_case);
  }
  event.attempt = std::string(attempt);
  event.error = error;
  Status s = options_.access.audit->Append(event);
  if (!s.ok()) {
    spdlog::error("audit line not written: {}", s.message());
    return Status::Error(Code::kIoError, "the audit log cannot be written");
  }
  return s;
}

Status FileSystem::AuditInode(access::AuditOp op, Inode& inode, std::string_view file_id,
                              int error) {
  if (!audit_enabled()) return Status::Ok();
  auto path = PlainPathOf(inode);
  // An orphan has no path left: its line carries no case code.
  return Audit(op, path.ok() ? *path : std::vector<std::string>{}, file_id, error);
}

void FileSystem::AuditTamper(Inode& inode, const Status& status, std::string_view file_id) {
  if (!IsTamper(status)) return;
  // The operation fails with EIO anyway; a lost tamper line is already logged.
  (void)AuditInode(access::AuditOp::kTamper, inode, file_id, EIO);
}

}  // namespace cadcanfs
