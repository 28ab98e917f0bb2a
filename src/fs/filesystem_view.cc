// FileSystem: the pseudonymized view (docs/access-policy.md, sections 5 and 7). A
// second mountpoint of the same daemon shows case folders under their case codes and,
// inside a case, names with the patient's name replaced by the code. The names a
// directory shows are worked out from all of its entries, never from what one caller
// may see, so the mapping is the same for every caller and one to one; the policy then
// decides on the real path as everywhere else.
#include <algorithm>
#include <chrono>
#include <mutex>

#include "cadcanfs/fs/filesystem.h"
#include "filesystem_internal.h"

namespace cadcanfs {

using namespace fs_internal;  // NOLINT: the core's own helpers

namespace {

// How long a directory's view is reused for lookups, unless the namespace changed:
// what the kernel's own caches allow without a policy.
constexpr std::chrono::milliseconds kViewCacheAge{1000};
constexpr size_t kMaxCachedViews = 4096;

Status NotShown() { return Status::Error(Code::kNotFound, "no such entry"); }

// Case codes compare case-insensitively (their alphabet is ASCII).
std::string UpperAscii(std::string_view text) {
  std::string upper(text);
  for (char& c : upper) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return upper;
}

}  // namespace

struct FileSystem::ViewNames {
  uint64_t generation = 0;
  std::chrono::steady_clock::time_point at;
  // The level of the case folders: their names are codes, matched as CaseCoder says.
  bool case_folders_level = false;
  std::vector<std::string> case_folders;
  std::unordered_map<std::string, std::string> shown_of;  // real name -> shown name
  // shown name -> real name (at the case folders' level, the code in upper case)
  std::unordered_map<std::string, std::string> real_of;
};

bool FileSystem::InPseudonymizedView() const {
  return RequestScope::Current().pseudonymized_view && options_.access.case_coder != nullptr;
}

Result<std::shared_ptr<const FileSystem::ViewNames>> FileSystem::ViewNamesFromListing(
    Inode& dir, const std::vector<PlainDirEntry>& entries) {
  CADCANFS_ASSIGN_OR_RETURN(std::vector<std::string> components, PlainPathOf(dir));
  const size_t case_depth = static_cast<size_t>(CaseDepth());
  // Office and other structure folders carry no patient names.
  if (components.size() + 1 < case_depth) return std::shared_ptr<const ViewNames>();
  auto view = std::make_shared<ViewNames>();
  view->generation = namespace_generation_.load();
  view->at = std::chrono::steady_clock::now();
  const access::CaseCoder& coder = *options_.access.case_coder;
  if (components.size() + 1 == case_depth) {
    // Case folders show as codes; anything else at their level belongs to no case and
    // may carry a name, so the view leaves it out.
    view->case_folders_level = true;
    for (const PlainDirEntry& entry : entries) {
      if (entry.type == ObjectType::kDirectory) view->case_folders.push_back(entry.name);
    }
    const std::vector<std::string> codes = coder.DisplayCodes(view->case_folders);
    for (size_t i = 0; i < codes.size(); ++i) {
      view->shown_of.emplace(view->case_folders[i], codes[i]);
      view->real_of.emplace(UpperAscii(codes[i]), view->case_folders[i]);
    }
    return std::shared_ptr<const ViewNames>(std::move(view));
  }
  const std::string& case_folder = components[case_depth - 1];
  std::vector<std::string> names;
  names.reserve(entries.size());
  for (const PlainDirEntry& entry : entries) names.push_back(entry.name);
  const std::vector<std::string> shown = access::PseudonymizeListing(
      names, access::PatientNameTokensOf(case_folder), coder.CodeOf(case_folder));
  for (size_t i = 0; i < names.size(); ++i) {
    view->shown_of.emplace(names[i], shown[i]);
    view->real_of.emplace(shown[i], names[i]);
  }
  return std::shared_ptr<const ViewNames>(std::move(view));
}

Result<std::shared_ptr<const FileSystem::ViewNames>> FileSystem::ViewNamesOf(Inode& dir) {
  const auto now = std::chrono::steady_clock::now();
  const uint64_t generation = namespace_generation_.load();
  {
    std::lock_guard lock(view_cache_mu_);
    auto it = view_cache_.find(dir.number);
    if (it != view_cache_.end() && it->second->generation == generation &&
        now - it->second->at < kViewCacheAge) {
      return it->second;
    }
  }
  CADCANFS_ASSIGN_OR_RETURN(std::string entries_dir, names_.EntriesDirOf(dir));
  CADCANFS_ASSIGN_OR_RETURN(DirState state, names_.DirStateOf(dir));
  CADCANFS_ASSIGN_OR_RETURN(DirListing listing, format_->ListDirectory(entries_dir, state));
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<const ViewNames> view,
                            ViewNamesFromListing(dir, listing.entries));
  if (view) {
    std::lock_guard lock(view_cache_mu_);
    if (view_cache_.size() >= kMaxCachedViews) view_cache_.clear();
    view_cache_[dir.number] = view;
  }
  return view;
}

Result<std::optional<std::string>> FileSystem::RealNameInView(InodeNumber parent,
                                                              std::string_view name, NameUse use) {
  if (!InPseudonymizedView()) return std::optional<std::string>();
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Inode> dir, InodeOf(parent));
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<const ViewNames> view, ViewNamesOf(*dir));
  if (!view) return std::optional<std::string>();
  if (view->case_folders_level) {
    if (auto real = view->real_of.find(UpperAscii(name)); real != view->real_of.end()) {
      return std::optional(real->second);
    }
    // The 6-character code of a folder shown with a lengthened one (a collision).
    const std::vector<size_t> matches =
        options_.access.case_coder->Reverse(name, view->case_folders);
    if (matches.size() == 1) return std::optional(view->case_folders[matches[0]]);
    if (use == NameUse::kExisting || !matches.empty()) return NotShown();
    // A new case folder would carry a patient's name: cases are made in the real view.
    return Status::Error(Code::kPermissionDenied, "cases are created in the real view");
  }
  const std::string key(name);
  if (auto real = view->real_of.find(key); real != view->real_of.end()) {
    return std::optional(real->second);
  }
  if (use == NameUse::kExisting) return NotShown();
  // A real name this view shows under another name is taken.
  if (view->shown_of.contains(key)) return Status::Error(Code::kAlreadyExists, "the name is taken");
  return std::optional<std::string>();  // a new name, stored as typed
}

Result<std::string> FileSystem::TargetInView(Inode& link, std::string target) {
  if (!InPseudonymizedView()) return target;
  CADCANFS_ASSIGN_OR_RETURN(std::vector<std::string> components, PlainPathOf(link));
  const size_t case_depth = static_cast<size_t>(CaseDepth());
  if (components.size() <= case_depth) return target;
  const std::string& case_folder = components[case_depth - 1];
  return access::PseudonymizeName(target, access::PatientNameTokensOf(case_folder),
                                  options_.access.case_coder->CodeOf(case_folder));
}

DirSnapshot FileSystem::ShowInView(const ViewNames& view, DirSnapshot entries) const {
  DirSnapshot shown;
  shown.reserve(entries.size());
  for (PlainDirEntry& entry : entries) {
    auto it = view.shown_of.find(entry.name);
    if (it == view.shown_of.end()) continue;
    if (it->second != entry.name) entry.shown = it->second;
    shown.push_back(std::move(entry));
  }
  return shown;
}

}  // namespace cadcanfs
