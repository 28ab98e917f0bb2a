// The access policy: who may see, read and change which case, and who sees cases
// under pseudonyms. docs/access-policy.md specifies the file format and semantics.
//
// A Policy is parsed once (user and group names resolved to ids at that moment) and
// is then immutable; decisions are pure functions of (caller, plaintext path).
//
// Layout of the tree under the mount root, for case_depth N (default 2):
//   depth 0            the mount root
//   depth 1 .. N-1     "structure" directories; component 0 is the office
//   depth N            a case (component N-1 is the case folder name)
//   depth > N          inside that case
//
// Thread safety: immutable after Parse; share it freely (PolicyHolder hands out
// shared_ptr<const Policy>).
#ifndef CADCANFS_ACCESS_POLICY_H_
#define CADCANFS_ACCESS_POLICY_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cadcanfs/common/status.h"

namespace cadcanfs::access {

// The credentials of a FUSE request: fuse_req_ctx()'s uid and gid plus the caller's
// supplementary groups (fuse_req_getgroups, or SupplementaryGroupsOf below).
struct Caller {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> groups;
};

// The supplementary groups of process `pid`, from the "Groups:" line of
// /proc/PID/status. kNotFound if the process is gone.
Result<std::vector<uint32_t>> SupplementaryGroupsOf(pid_t pid);

enum class Access : uint8_t { kNone, kRead, kReadWrite };

struct Decision {
  Access access = Access::kNone;
  // The case's folder name is shown as its case code and names inside the case are
  // pseudonymized (pseudonym.h). Only ever set at and below case depth.
  bool pseudonymized = false;

  bool visible() const { return access != Access::kNone; }
  bool writable() const { return access == Access::kReadWrite; }
  bool operator==(const Decision&) const = default;
};

enum class EntryKind { kDirectory, kOther };

// Resolves user and group names at load time. Tests may substitute their own.
struct IdLookup {
  std::function<std::optional<uint32_t>(const std::string&)> user;
  std::function<std::optional<uint32_t>(const std::string&)> group;
};
// getpwnam_r and getgrnam_r.
IdLookup SystemIdLookup();

inline constexpr int kDefaultCaseDepth = 2;
inline constexpr int kMaxCaseDepth = 16;

class Policy {
 public:
  // Strict: unknown members, duplicate members, wrong types, unknown users, groups or
  // principals and inconsistent roles are kCorrupt with one sentence saying where.
  // Messages name JSON members and array indexes, never a case name.
  static Result<Policy> Parse(std::string_view json, const IdLookup& ids = SystemIdLookup());
  // Reads `path` (a regular file, not a symlink, owned by root or by this process's
  // user, not writable by group or others: whoever can write it grants access) and
  // parses it. Any error means "the policy is invalid" (CLI exit code 41).
  static Result<Policy> LoadFile(const std::string& path, const IdLookup& ids = SystemIdLookup());

  int case_depth() const { return case_depth_; }
  size_t principal_count() const { return principals_.size(); }
  size_t assignment_count() const { return assignments_.size(); }
  bool root_bypass() const { return root_bypass_; }

  // What `caller` may do with the entry at `components` (the plaintext path below the
  // mount root, no "." or ".." components; empty for the root), of kind `kind`.
  // `kind` matters only above case depth, where designers see directories only.
  Decision Decide(const Caller& caller, std::span<const std::string_view> components,
                  EntryKind kind) const;
  Decision Decide(const Caller& caller, const std::vector<std::string>& components,
                  EntryKind kind) const;

  // Index of the case folder component in a path of `depth` components, if the path
  // is at or below case depth.
  std::optional<size_t> CaseComponent(size_t depth) const {
    if (depth < static_cast<size_t>(case_depth_)) return std::nullopt;
    return static_cast<size_t>(case_depth_ - 1);
  }

 private:
  enum class Role { kOffice, kDesigner };
  struct Principal {
    Role role = Role::kDesigner;
    std::string office;             // office role only
    Access access = Access::kNone;  // office role: its access to the office's cases
    bool pseudonymize = false;      // designer role only
  };
  struct Assignment {
    size_t principal = 0;
    std::string office;
    std::string case_pattern;  // fnmatch(3) pattern, or an exact folder name
    Access access = Access::kNone;
  };
  friend class PolicyParser;

  // The principals `caller` belongs to, deduplicated.
  std::vector<size_t> PrincipalsOf(const Caller& caller) const;

  int case_depth_ = kDefaultCaseDepth;
  bool root_bypass_ = false;
  std::vector<Principal> principals_;
  std::vector<Assignment> assignments_;
  std::unordered_map<uint32_t, std::vector<size_t>> principals_by_uid_;
  std::unordered_map<uint32_t, std::vector<size_t>> principals_by_gid_;
};

}  // namespace cadcanfs::access

#endif  // CADCANFS_ACCESS_POLICY_H_
