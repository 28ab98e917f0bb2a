#include "cadcanfs/access/policy.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "cadcanfs/common/unique_fd.h"

namespace cadcanfs::access {

using json = nlohmann::json;

namespace {

constexpr int kPolicyVersion = 1;
constexpr size_t kMaxPolicyFileSize = 4 << 20;

Status Invalid(const std::string& sentence) {
  return Status::Error(Code::kCorrupt, "the access policy is invalid: " + sentence);
}

// As the vault config: a member named twice is refused, since the parser would keep
// the last one silently and two readers could disagree.
json ParseWithoutDuplicateKeys(std::string_view text, bool& duplicate) {
  std::vector<std::set<std::string>> open_objects;
  json::parser_callback_t check = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.empty() && parsed.is_string() &&
               !open_objects.back().insert(parsed.get<std::string>()).second) {
      duplicate = true;
    }
    return true;
  };
  return json::parse(text, check, /*allow_exceptions=*/false);
}

// The first member of `obj` not in `allowed`, if any.
std::optional<std::string> UnknownMember(const json& obj,
                                         std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : obj.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) return key;
  }
  return std::nullopt;
}

std::optional<uint32_t> LookupUser(const std::string& name) {
  struct passwd pw;
  struct passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (getpwnam_r(name.c_str(), &pw, buffer.data(), buffer.size(), &found) != 0 || !found) {
    return std::nullopt;
  }
  return found->pw_uid;
}

std::optional<uint32_t> LookupGroup(const std::string& name) {
  struct group gr;
  struct group* found = nullptr;
  std::vector<char> buffer(65536);
  if (getgrnam_r(name.c_str(), &gr, buffer.data(), buffer.size(), &found) != 0 || !found) {
    return std::nullopt;
  }
  return found->gr_gid;
}

Access Stronger(Access a, Access b) { return std::max(a, b); }

}  // namespace

IdLookup SystemIdLookup() { return IdLookup{LookupUser, LookupGroup}; }

Result<std::vector<uint32_t>> SupplementaryGroupsOf(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  if (!status) return Status::Error(Code::kNotFound, "the calling process is gone");
  std::string line;
  while (std::getline(status, line)) {
    if (!line.starts_with("Groups:")) continue;
    std::istringstream ids(line.substr(7));
    std::vector<uint32_t> groups;
    uint32_t gid = 0;
    while (ids >> gid) groups.push_back(gid);
    return groups;
  }
  return Status::Error(Code::kNotFound, "the calling process has no group list");
}

// Builds a Policy from parsed JSON, one section at a time.
class PolicyParser {
 public:
  PolicyParser(const IdLookup& ids, Policy& out) : ids_(ids), out_(out) {}

  Status Parse(const json& root) {
    if (!root.is_object()) return Invalid("the top level must be a JSON object");
    if (auto unknown = UnknownMember(
            root, {"version", "case_depth", "root_bypass", "principals", "assignments"})) {
      return Invalid("unknown member '" + *unknown + "' at the top level");
    }
    if (!root.contains("version") || !root["version"].is_number_integer() ||
        root["version"].get<int64_t>() != kPolicyVersion) {
      return Invalid("\"version\" must be 1");
    }
    if (root.contains("case_depth")) {
      const json& depth = root["case_depth"];
      if (!depth.is_number_integer() || depth.get<int64_t>() < 2 ||
          depth.get<int64_t>() > kMaxCaseDepth) {
        return Invalid("\"case_depth\" must be an integer from 2 to 16");
      }
      out_.case_depth_ = static_cast<int>(depth.get<int64_t>());
    }
    if (root.contains("root_bypass")) {
      if (!root["root_bypass"].is_boolean())
        return Invalid("\"root_bypass\" must be true or false");
      out_.root_bypass_ = root["root_bypass"].get<bool>();
    }
    if (!root.contains("principals") || !root["principals"].is_object()) {
      return Invalid("\"principals\" must be an object of named principals");
    }
    for (const auto& [name, value] : root["principals"].items()) {
      CADCANFS_RETURN_IF_ERROR(ParsePrincipal(name, value));
    }
    if (root.contains("assignments")) {
      const json& list = root["assignments"];
      if (!list.is_array()) return Invalid("\"assignments\" must be an array");
      for (size_t i = 0; i < list.size(); ++i) {
        CADCANFS_RETURN_IF_ERROR(ParseAssignment(i, list[i]));
      }
    }
    return Status::Ok();
  }

 private:
  Status ParsePrincipal(const std::string& name, const json& value) {
    const std::string where = "principals." + name;
    if (!value.is_object()) return Invalid(where + " must be an object");
    if (auto unknown =
            UnknownMember(value, {"users", "groups", "role", "office", "access", "pseudonymize"})) {
      return Invalid("unknown member '" + *unknown + "' in " + where);
    }
    Policy::Principal principal;
    if (!value.contains("role") || !value["role"].is_string()) {
      return Invalid(where + ".role must be \"office\" or \"designer\"");
    }
    const std::string role = value["role"].get<std::string>();
    if (role == "office") {
      principal.role = Policy::Role::kOffice;
      if (!value.contains("office") || !value["office"].is_string() ||
          !ValidComponent(value["office"].get<std::string>())) {
        return Invalid(where + ".office must name the office's top-level folder");
      }
      if (value.contains("pseudonymize")) {
        return Invalid(where + ".pseudonymize is for designers only");
      }
      principal.office = value["office"].get<std::string>();
      principal.access = Access::kReadWrite;
      if (value.contains("access")) {
        auto access = ParseAccess(value["access"]);
        if (!access) return Invalid(where + ".access must be \"read\" or \"write\"");
        principal.access = *access;
      }
    } else if (role == "designer") {
      principal.role = Policy::Role::kDesigner;
      if (value.contains("office") || value.contains("access")) {
        return Invalid(where + ": a designer gets offices and access from \"assignments\"");
      }
      if (value.contains("pseudonymize")) {
        if (!value["pseudonymize"].is_boolean()) {
          return Invalid(where + ".pseudonymize must be true or false");
        }
        principal.pseudonymize = value["pseudonymize"].get<bool>();
      }
    } else {
      return Invalid(where + ".role must be \"office\" or \"designer\"");
    }
    const size_t index = out_.principals_.size();
    size_t members = 0;
    CADCANFS_RETURN_IF_ERROR(
        ParseIds(where, "users", value, ids_.user, out_.principals_by_uid_, index, members));
    CADCANFS_RETURN_IF_ERROR(
        ParseIds(where, "groups", value, ids_.group, out_.principals_by_gid_, index, members));
    if (members == 0) return Invalid(where + " has no users and no groups");
    out_.principals_.push_back(std::move(principal));
    principal_index_[name] = index;
    return Status::Ok();
  }

  // Adds every entry of value[member] (names or numeric ids) to `by_id`.
  Status ParseIds(const std::string& where, const char* member, const json& value,
                  const std::function<std::optional<uint32_t>(const std::string&)>& lookup,
                  std::unordered_map<uint32_t, std::vector<size_t>>& by_id, size_t index,
                  size_t& members) {
    if (!value.contains(member)) return Status::Ok();
    const json& list = value[member];
    const std::string what = where + "." + member;
    if (!list.is_array()) return Invalid(what + " must be an array of names or ids");
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string item = what + "[" + std::to_string(i) + "]";
      std::optional<uint32_t> id;
      if (list[i].is_number_unsigned() && list[i].get<uint64_t>() < UINT32_MAX) {
        id = static_cast<uint32_t>(list[i].get<uint64_t>());
      } else if (list[i].is_string()) {
        id = lookup(list[i].get<std::string>());
        if (!id) {
          return Invalid(item + " names no " +
                         (std::string_view(member) == "users" ? "user" : "group") +
                         " known to this system");
        }
      } else {
        return Invalid(item + " must be a name or a numeric id");
      }
      std::vector<size_t>& entry = by_id[*id];
      if (std::find(entry.begin(), entry.end(), index) == entry.end()) entry.push_back(index);
      ++members;
    }
    return Status::Ok();
  }

  Status ParseAssignment(size_t i, const json& value) {
    const std::string where = "assignments[" + std::to_string(i) + "]";
    if (!value.is_object()) return Invalid(where + " must be an object");
    if (auto unknown = UnknownMember(value, {"principal", "office", "case", "access"})) {
      return Invalid("unknown member '" + *unknown + "' in " + where);
    }
    Policy::Assignment assignment;
    if (!value.contains("principal") || !value["principal"].is_string()) {
      return Invalid(where + ".principal must name a principal");
    }
    auto principal = principal_index_.find(value["principal"].get<std::string>());
    if (principal == principal_index_.end()) {
      return Invalid(where + ".principal names no principal in \"principals\"");
    }
    if (out_.principals_[principal->second].role != Policy::Role::kDesigner) {
      return Invalid(where + ".principal must be a designer (offices reach their cases already)");
    }
    assignment.principal = principal->second;
    if (!value.contains("office") || !value["office"].is_string() ||
        !ValidComponent(value["office"].get<std::string>())) {
      return Invalid(where + ".office must name an office's top-level folder");
    }
    assignment.office = value["office"].get<std::string>();
    if (!value.contains("case") || !value["case"].is_string() ||
        !ValidComponent(value["case"].get<std::string>())) {
      return Invalid(where + ".case must be a case folder name or a glob pattern");
    }
    assignment.case_pattern = value["case"].get<std::string>();
    if (!value.contains("access")) return Invalid(where + ".access must be \"read\" or \"write\"");
    auto access = ParseAccess(value["access"]);
    if (!access) return Invalid(where + ".access must be \"read\" or \"write\"");
    assignment.access = *access;
    out_.assignments_.push_back(std::move(assignment));
    return Status::Ok();
  }

  static std::optional<Access> ParseAccess(const json& value) {
    if (!value.is_string()) return std::nullopt;
    if (value.get<std::string>() == "read") return Access::kRead;
    if (value.get<std::string>() == "write") return Access::kReadWrite;
    return std::nullopt;
  }

  static bool ValidComponent(const std::string& name) {
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
           name.find('\0') == std::string::npos;
  }

  const IdLookup& ids_;
  Policy& out_;
  std::map<std::string, size_t> principal_index_;
};

Result<Policy> Policy::Parse(std::string_view text, const IdLookup& ids) {
  bool duplicate = false;
  const json root = ParseWithoutDuplicateKeys(text, duplicate);
  if (root.is_discarded()) return Invalid("the file is not valid JSON");
  if (duplicate) return Invalid("an object names one member twice");
  Policy policy;
  PolicyParser parser(ids, policy);
  CADCANFS_RETURN_IF_ERROR(parser.Parse(root));
  return policy;
}

Result<Policy> Policy::LoadFile(const std::string& path, const IdLookup& ids) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    int err = errno;
    return Status::Error(err == ENOENT ? Code::kNotFound : Code::kPermissionDenied,
                         std::string("cannot open the access policy file: ") + std::strerror(err),
                         err);
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Invalid("the policy file is not a regular file");
  }
  if ((st.st_mode & 022) != 0) {
    return Status::Error(Code::kPermissionDenied,
                         "the access policy file is writable by group or others; run chmod go-w "
                         "on it");
  }
  if (st.st_uid != 0 && st.st_uid != geteuid()) {
    return Status::Error(Code::kPermissionDenied,
                         "the access policy file must belong to root or to the mount's user");
  }
  if (static_cast<size_t>(st.st_size) > kMaxPolicyFileSize) {
    return Invalid("the policy file is larger than 4 MiB");
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t total = 0;
  while (total < text.size()) {
    ssize_t n = read(fd.get(), text.data() + total, text.size() - total);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "reading the access policy file");
    if (n == 0) break;
    total += static_cast<size_t>(n);
  }
  text.resize(total);
  return Parse(text, ids);
}

std::vector<size_t> Policy::PrincipalsOf(const Caller& caller) const {
  std::vector<size_t> found;
  auto add = [&](const std::unordered_map<uint32_t, std::vector<size_t>>& map, uint32_t id) {
    auto it = map.find(id);
    if (it == map.end()) return;
    for (size_t p : it->second) {
      if (std::find(found.begin(), found.end(), p) == found.end()) found.push_back(p);
    }
  };
  add(principals_by_uid_, caller.uid);
  add(principals_by_gid_, caller.gid);
  for (uint32_t gid : caller.groups) add(principals_by_gid_, gid);
  return found;
}

Decision Policy::Decide(const Caller& caller, std::span<const std::string_view> components,
                        EntryKind kind) const {
  if (root_bypass_ && caller.uid == 0) return Decision{Access::kReadWrite, false};
  // The mount root: everyone may list it (and sees only what they may see in it).
  if (components.empty()) return Decision{Access::kRead, false};
  const std::vector<size_t> mine = PrincipalsOf(caller);
  if (mine.empty()) return Decision{};
  const std::string_view office = components[0];
  const bool at_or_below_case = components.size() >= static_cast<size_t>(case_depth_);

  Access staff_access = Access::kNone;
  for (size_t p : mine) {
    const Principal& principal = principals_[p];
    if (principal.role == Role::kOffice && principal.office == office) {
      staff_access = Stronger(staff_access, principal.access);
    }
  }
  Access designer_access = Access::kNone;
  bool pseudonymized = false;
  for (const Assignment& assignment : assignments_) {
    if (assignment.office != office ||
        std::find(mine.begin(), mine.end(), assignment.principal) == mine.end()) {
      continue;
    }
    if (!at_or_below_case) {
      // Designers see the directories leading to their offices' cases, read-only.
      if (kind == EntryKind::kDirectory) designer_access = Access::kRead;
      continue;
    }
    const std::string case_folder(components[case_depth_ - 1]);
    if (fnmatch(assignment.case_pattern.c_str(), case_folder.c_str(), 0) != 0) continue;
    designer_access = Stronger(designer_access, assignment.access);
    pseudonymized = pseudonymized || principals_[assignment.principal].pseudonymize;
  }
  if (staff_access != Access::kNone) {
    return Decision{Stronger(staff_access, designer_access), false};
  }
  return Decision{designer_access, designer_access != Access::kNone && pseudonymized};
}

Decision Policy::Decide(const Caller& caller, const std::vector<std::string>& components,
                        EntryKind kind) const {
  std::vector<std::string_view> views(components.begin(), components.end());
  return Decide(caller, views, kind);
}

}  // namespace cadcanfs::access
