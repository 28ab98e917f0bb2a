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

}  // namespace cadcanfs
