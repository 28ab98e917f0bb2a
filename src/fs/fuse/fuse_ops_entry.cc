// Entry, attribute and extended-attribute operations.
#include <sys/xattr.h>

#include <algorithm>
#include <cstring>

#include "fuse_ops.h"

namespace cadcanfs::fuse_ops {

Caller CallerOf(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return Caller{ctx->uid, ctx->gid};
}

RequestCredentials CredentialsOf(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  RequestCredentials credentials{ctx->uid, ctx->gid, ctx->pid, {}, {}};
  credentials.pseudonymized_view = Ctx(req).pseudonymized_view;
  if (!Fs(req).policy_enabled()) return credentials;
  // Called only while the core serves the request, before its reply frees `req`.
  credentials.fetch_groups = [req] { return Ctx(req).groups.Get(req); };
  return credentials;
}

std::vector<gid_t> GroupsCache::Get(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    auto it = by_pid_.find(ctx->pid);
    // A reused pid or a process that changed its ids is looked up again.
    if (it != by_pid_.end() && it->second.uid == ctx->uid && it->second.gid == ctx->gid &&
        now - it->second.at < kMaxAge) {
      return it->second.groups;
    }
  }
  constexpr int kMaxGroups = 256;
  gid_t buffer[kMaxGroups];
  const int n = fuse_req_getgroups(req, kMaxGroups, buffer);
  // A caller with more groups than fit is matched on the first ones only.
  std::vector<gid_t> groups =
      n > 0 ? std::vector<gid_t>(buffer, buffer + std::min(n, kMaxGroups)) : std::vector<gid_t>();
  std::lock_guard lock(mu_);
  if (by_pid_.size() >= kMaxEntries) by_pid_.clear();
  by_pid_[ctx->pid] = Cached{ctx->uid, ctx->gid, now, groups};
  return groups;
}

double EntryTimeoutFor(fuse_req_t req, fuse_ino_t ino) {
  // A user's own view has one caller: its dentries are that user's answers only.
  if (Ctx(req).only_uid) return Ctx(req).entry_timeout;
  return Fs(req).AnswersVaryByCaller(ino) ? 0.0 : Ctx(req).entry_timeout;
}

// The same for every caller: an object's attributes do not depend on who asks, and a
// caller reaches them by path only through a dentry that a zero entry timeout makes the
// kernel revalidate with that caller's credentials first (docs/access-policy.md 7).
double AttrTimeoutFor(fuse_req_t req, fuse_ino_t) { return Ctx(req).attr_timeout; }

bool InGroup(fuse_req_t req, gid_t gid) {
  if (fuse_req_ctx(req)->gid == gid) return true;
  gid_t groups[256];
  const int n = fuse_req_getgroups(req, 256, groups);
  for (int i = 0; i < n && i < 256; ++i) {
    if (groups[i] == gid) return true;
  }
  return false;
}

uint32_t PrivilegeBitsToClearFor(fuse_req_t req, const struct stat& before) {
  const uid_t uid = fuse_req_ctx(req)->uid;
  if (uid == 0 || (before.st_mode & (S_ISUID | S_ISGID)) == 0) return 0;
  // Group membership matters only for setgid without group-execute; asking for the
  // supplementary groups reads /proc, so only then.
  const bool needs_groups = (before.st_mode & (S_ISGID | S_IXGRP)) == S_ISGID;
  return PrivilegeBitsToClear(before, uid, !needs_groups || InGroup(req, before.st_gid));
}

fuse_entry_param EntryParam(fuse_req_t req, const Entry& entry) {
  fuse_entry_param e;
  std::memset(&e, 0, sizeof(e));
  e.ino = entry.ino;
  e.attr = entry.attr;
  e.attr_timeout = AttrTimeoutFor(req, entry.ino);
  e.entry_timeout = EntryTimeoutFor(req, entry.ino);
  return e;
}

void ReplyEntry(fuse_req_t req, const Result<Entry>& entry) {
  if (!entry.ok()) return ReplyStatus(req, entry.status());
  fuse_entry_param e = EntryParam(req, *entry);
  fuse_reply_entry(req, &e);
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  spdlog::debug("lookup parent={}", parent);
  RunAfterInitOnce(req);
  Guarded(req, [&] {
    auto entry = Fs(req).Lookup(parent, name);
    // Under a policy a missing name may exist for another caller: never cached.
    if (!entry.ok() && entry.status().code() == Code::kNotFound && !Fs(req).policy_enabled()) {
      // A negative entry, cached by the kernel for entry_timeout.
      fuse_entry_param e;
      std::memset(&e, 0, sizeof(e));
      e.entry_timeout = Ctx(req).entry_timeout;
      fuse_reply_entry(req, &e);
      return;
    }
    ReplyEntry(req, entry);
  });
}

void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  Fs(req).Forget(ino, nlookup);
  fuse_reply_none(req);
}

void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) Fs(req).Forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  spdlog::debug("getattr ino={}", ino);
  RunAfterInitOnce(req);
  GuardedUnlessHandle(req, fi, [&] {
    // The kernel passes the handle for fstat(2) on a file it has open (not directories).
    std::optional<HandleId> fh;
    if (fi != nullptr) fh = fi->fh;
    auto attr = Fs(req).GetAttr(ino, fh);
    if (!attr.ok()) return ReplyStatus(req, attr.status());
    fuse_reply_attr(req, &*attr, AttrTimeoutFor(req, ino));
  });
}

namespace {

struct timespec TimeOf(const struct timespec& given, bool now) {
  return now ? timespec{0, UTIME_NOW} : given;
}

}  // namespace

void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  spdlog::debug("setattr ino={} fields={:#x}", ino, to_set);
  GuardedUnlessHandle(req, fi, [&] {
    AttrChanges changes;
    if (to_set & FUSE_SET_ATTR_MODE) changes.mode = attr->st_mode;
    if (to_set & FUSE_SET_ATTR_UID) changes.uid = attr->st_uid;
    if (to_set & FUSE_SET_ATTR_GID) changes.gid = attr->st_gid;
    if (to_set & FUSE_SET_ATTR_SIZE) changes.size = static_cast<uint64_t>(attr->st_size);
    if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
      changes.atime = TimeOf(attr->st_atim, to_set & FUSE_SET_ATTR_ATIME_NOW);
    }
    if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
      changes.mtime = TimeOf(attr->st_mtim, to_set & FUSE_SET_ATTR_MTIME_NOW);
    }
    std::optional<HandleId> fh;
    if (fi != nullptr) fh = fi->fh;
    if (changes.size && !changes.mode) {
      // The kernel asks for a mode change with a truncate only when setgid goes with
      // group-execute; ext4 also clears setgid for a truncater outside the file's group.
      auto before = Fs(req).GetAttr(ino);
      const uint32_t clear = before.ok() ? PrivilegeBitsToClearFor(req, *before) : 0;
      if (clear != 0) changes.mode = before->st_mode & 07777 & ~clear;
    }
    auto result = Fs(req).SetAttr(ino, changes, fh);
    if (!result.ok()) return ReplyStatus(req, result.status());
    fuse_reply_attr(req, &*result, AttrTimeoutFor(req, ino));
  });
}

void ReadLink(fuse_req_t req, fuse_ino_t ino) {
  spdlog::debug("readlink ino={}", ino);
  Guarded(req, [&] {
    auto target = Fs(req).ReadLink(ino);
    if (!target.ok()) return ReplyStatus(req, target.status());
    fuse_reply_readlink(req, target->c_str());
  });
}

void MkDir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  spdlog::debug("mkdir parent={}", parent);
  Guarded(req, [&] { ReplyEntry(req, Fs(req).MakeDir(parent, name, mode, CallerOf(req))); });
}

void MkNod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  spdlog::debug("mknod parent={} mode={:#o}", parent, mode);
  Guarded(req, [&] { ReplyEntry(req, Fs(req).MakeNode(parent, name, mode, rdev, CallerOf(req))); });
}

void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  spdlog::debug("unlink parent={}", parent);
  Guarded(req, [&] { ReplyStatus(req, Fs(req).Unlink(parent, name)); });
}

void RmDir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  spdlog::debug("rmdir parent={}", parent);
  Guarded(req, [&] { ReplyStatus(req, Fs(req).RemoveDir(parent, name)); });
}

void Symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  spdlog::debug("symlink parent={}", parent);
  Guarded(req, [&] { ReplyEntry(req, Fs(req).Symlink(parent, name, link, CallerOf(req))); });
}

void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
            const char* newname, unsigned int flags) {
  spdlog::debug("rename parent={} newparent={} flags={}", parent, newparent, flags);
  Guarded(req, [&] {
    RenameMode mode = RenameMode::kReplace;
    if (flags == RENAME_NOREPLACE) {
      mode = RenameMode::kNoReplace;
    } else if (flags == RENAME_EXCHANGE) {
      mode = RenameMode::kExchange;
    } else if (flags != 0) {
      fuse_reply_err(req, EINVAL);  // RENAME_WHITEOUT and combinations
      return;
    }
    ReplyStatus(req, Fs(req).Rename(parent, name, newparent, newname, mode));
  });
}

void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  spdlog::debug("link ino={} newparent={}", ino, newparent);
  Guarded(req, [&] { ReplyEntry(req, Fs(req).Link(ino, newparent, newname)); });
}

void StatFs(fuse_req_t req, fuse_ino_t) {
  Guarded(req, [&] {
    auto sv = Fs(req).StatFs();
    if (!sv.ok()) return ReplyStatus(req, sv.status());
    fuse_reply_statfs(req, &*sv);
  });
}

void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
              int flags) {
  spdlog::debug("setxattr ino={} size={}", ino, size);
  Guarded(req, [&] {
    ByteSpan bytes(reinterpret_cast<const uint8_t*>(value), size);
    ReplyStatus(req, Fs(req).SetXattr(ino, name, bytes, flags));
  });
}

namespace {

// getxattr/listxattr protocol: size 0 asks for the length; too small a buffer is ERANGE.
void ReplySized(fuse_req_t req, const void* data, size_t length, size_t size) {
  if (size == 0) {
    fuse_reply_xattr(req, length);
  } else if (length > size) {
    fuse_reply_err(req, ERANGE);
  } else {
    fuse_reply_buf(req, static_cast<const char*>(data), length);
  }
}

}  // namespace

void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  Guarded(req, [&] {
    auto value = Fs(req).GetXattr(ino, name);
    if (!value.ok()) return ReplyStatus(req, value.status());
    ReplySized(req, value->data(), value->size(), size);
  });
}

void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Guarded(req, [&] {
    auto names = Fs(req).ListXattrs(ino);
    if (!names.ok()) return ReplyStatus(req, names.status());
    std::string joined;
    for (const std::string& n : *names) {
      joined += n;
      joined.push_back('\0');
    }
    ReplySized(req, joined.data(), joined.size(), size);
  });
}

void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  Guarded(req, [&] { ReplyStatus(req, Fs(req).RemoveXattr(ino, name)); });
}

}  // namespace cadcanfs::fuse_ops
