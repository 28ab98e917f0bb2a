#include <sys/stat.h>

#include "cadcanfs/store/store.h"

namespace cadcanfs {

ObjectId ObjectId::OfLocalInode(uint64_t device, uint64_t inode) {
  std::string bytes(16, '\0');
  for (int i = 0; i < 8; ++i) {
    bytes[7 - i] = static_cast<char>(device >> (8 * i));
    bytes[15 - i] = static_cast<char>(inode >> (8 * i));
  }
  return ObjectId(std::move(bytes));
}

Status ValidateStorePath(std::string_view path) {
  if (path.empty()) return Status::Ok();
  if (path.find('\0') != std::string_view::npos) {
    return Status::Error(Code::kInvalidArgument, "malformed store path");
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string_view part = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part.empty() || part == "." || part == "..") {
      return Status::Error(Code::kInvalidArgument, "malformed store path");
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return Status::Ok();
}

std::string JoinStorePath(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string out(dir);
  out += '/';
  out += name;
  return out;
}

std::string_view StoreParent(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : path.substr(0, slash);
}

std::string_view StoreBaseName(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

uint32_t FileTypeBits(ObjectType type) {
  switch (type) {
    case ObjectType::kDirectory:
      return S_IFDIR;
    case ObjectType::kSymlink:
      return S_IFLNK;
    case ObjectType::kFifo:
      return S_IFIFO;
    case ObjectType::kSocket:
      return S_IFSOCK;
    case ObjectType::kCharDevice:
      return S_IFCHR;
    case ObjectType::kBlockDevice:
      return S_IFBLK;
    default:
      return S_IFREG;
  }
}

Status WholeObjectFile::Reserve(uint64_t, uint64_t) {
  return Status::Error(Code::kUnsupported, "this store reserves no space");
}
Status WholeObjectFile::SetMode(uint32_t) {
  return Status::Error(Code::kUnsupported, "this store keeps no file modes");
}
Status WholeObjectFile::SetOwner(uid_t, gid_t) {
  return Status::Error(Code::kUnsupported, "this store keeps no file owners");
}

}  // namespace cadcanfs
