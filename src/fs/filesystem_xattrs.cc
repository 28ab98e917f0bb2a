// FileSystem: extended attributes (user.* only, encrypted).
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>

#include "cadcanfs/fs/filesystem.h"
#include "filesystem_internal.h"

namespace cadcanfs {

using namespace fs_internal;  // NOLINT: the core's own helpers

Result<Bytes> FileSystem::GetXattr(InodeNumber ino, std::string_view name) {
  // The kernel asks for this on every write; answer from memory.
  if (name == kCapabilityXattr) return Status::Error(Code::kNotFound, "no such attribute", ENODATA);
  // Only user.* is kept. Other namespaces (security.selinux, system.posix_acl_access)
  // are unsupported, as SetXattr says: tools such as `ls -l` then stop asking for them
  // on this filesystem, each ask being a path walk (under a policy, a LOOKUP per
  // structure and case folder). Not ENOSYS: the kernel would stop forwarding user.* too.
  if (name.substr(0, kUserPrefix.size()) != kUserPrefix) {
    return Status::Error(Code::kUnsupported, "only user.* extended attributes are kept");
  }
  CADCANFS_ASSIGN_OR_RETURN(std::string stored, format_->EncodeXattrName(name));
  std::shared_lock ns(namespace_mu_);
  CADCANFS_RETURN_IF_ERROR(CheckVisibleNumber(ino));
  CADCANFS_ASSIGN_OR_RETURN(std::string path, names_.PathOf(ino));
  CADCANFS_ASSIGN_OR_RETURN(Bytes sealed, store_.GetXattr(path, stored));
  return format_->OpenXattrValue(stored, sealed);
}

Status FileSystem::SetXattr(InodeNumber ino, std::string_view name, ByteSpan value, int flags) {
  CADCANFS_RETURN_IF_ERROR(CheckWritable());
  CADCANFS_ASSIGN_OR_RETURN(std::string stored, format_->EncodeXattrName(name));
  CADCANFS_ASSIGN_OR_RETURN(Bytes sealed, format_->SealXattrValue(stored, value));
  std::shared_lock ns(namespace_mu_);
  CADCANFS_RETURN_IF_ERROR(CheckChangeableNumber(ino, "setxattr"));
  CADCANFS_ASSIGN_OR_RETURN(std::string path, names_.PathOf(ino));
  return store_.SetXattr(path, stored, sealed, flags);
}

Result<std::vector<std::string>> FileSystem::ListXattrs(InodeNumber ino) {
  std::shared_lock ns(namespace_mu_);
  CADCANFS_RETURN_IF_ERROR(CheckVisibleNumber(ino));
  CADCANFS_ASSIGN_OR_RETURN(std::string path, names_.PathOf(ino));
  auto stored = store_.ListXattrs(path);
  if (!stored.ok()) {
    if (stored.status().code() == Code::kUnsupported) return std::vector<std::string>{};
    return stored.status();
  }
  std::vector<std::string> names;
  for (const std::string& s : *stored) {
    // Attributes that are not ours, or fail to decrypt, are not shown.
    if (auto plain = format_->DecodeXattrName(s); plain.ok()) names.push_back(*plain);
  }
  return names;
}

Status FileSystem::RemoveXattr(InodeNumber ino, std::string_view name) {
  CADCANFS_RETURN_IF_ERROR(CheckWritable());
  CADCANFS_ASSIGN_OR_RETURN(std::string stored, format_->EncodeXattrName(name));
  std::shared_lock ns(namespace_mu_);
  CADCANFS_RETURN_IF_ERROR(CheckChangeableNumber(ino, "removexattr"));
  CADCANFS_ASSIGN_OR_RETURN(std::string path, names_.PathOf(ino));
  return store_.RemoveXattr(path, stored);
}

}  // namespace cadcanfs
