// Directory operations. A listing is decrypted once per pass (offset 0) and served
// from that snapshot; offsets are positions in it, with "." and ".." first.
#include <cstring>
#include <vector>

#include "fuse_ops.h"

namespace cadcanfs::fuse_ops {

namespace {

constexpr uint64_t kDotEntries = 2;

// Adds "." or ".."; readdirplus gives them no inode, so the kernel counts no lookup.
size_t AddDot(fuse_req_t req, char* buf, size_t room, uint64_t index, bool plus) {
  const char* name = index == 0 ? "." : "..";
  struct stat st {};
  st.st_ino = 1;
  st.st_mode = S_IFDIR;
  const off_t next = static_cast<off_t>(index + 1);
  if (!plus) return fuse_add_direntry(req, buf, room, name, &st, next);
  fuse_entry_param e;
  std::memset(&e, 0, sizeof(e));
  e.attr = st;
  return fuse_add_direntry_plus(req, buf, room, name, &e, next);
}

void ServeReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi,
                  bool plus) {
  spdlog::debug("readdir{} ino={} off={}", plus ? "plus" : "", ino, off);
  auto snapshot = Fs(req).ReadDir(fi->fh, static_cast<uint64_t>(off));
  if (!snapshot.ok()) return ReplyStatus(req, snapshot.status());
  const DirSnapshot& entries = **snapshot;
  std::vector<char> buf(size);
  size_t used = 0;
  for (uint64_t index = static_cast<uint64_t>(off); index < entries.size() + kDotEntries; ++index) {
    char* at = buf.data() + used;
    const size_t room = size - used;
    size_t need;
    if (index < kDotEntries) {
      need = AddDot(req, at, room, index, plus);
    } else {
      const PlainDirEntry& entry = entries[index - kDotEntries];
      const std::string& name = entry.shown.empty() ? entry.name : entry.shown;
      const off_t next = static_cast<off_t>(index + 1);
      if (plus) {
        auto found = Fs(req).LookupListed(ino, entry);
        if (!found.ok()) continue;  // removed since the listing was taken
        fuse_entry_param e = EntryParam(req, *found);
        need = fuse_add_direntry_plus(req, at, room, name.c_str(), &e, next);
        // An entry that did not fit was not returned, so its lookup does not count.
        if (need > room) Fs(req).Forget(found->ino, 1);
      } else {
        struct stat st {};
        st.st_ino = entry.info ? entry.info->inode_hint : index + 1;
        st.st_mode = FileTypeBits(entry.type);
        need = fuse_add_direntry(req, at, room, name.c_str(), &st, next);
      }
    }
    if (need > room) break;
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

}  // namespace

void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  spdlog::debug("opendir ino={}", ino);
  Guarded(req, [&] {
    // relatime for listings: when this one is due to update atime, the kernel drops its
    // cached listing and asks us, and listing the store records the access.
    const Result<struct stat> before = Fs(req).GetAttr(ino);
    auto handle = Fs(req).OpenDir(ino);
    if (!handle.ok()) return ReplyStatus(req, handle.status());
    fi->fh = *handle;
    if (Fs(req).ListingVariesByCaller(ino) || Ctx(req).options->shared_store) {
      // Filtered per caller: the kernel must not serve this listing to anyone else. Or
      // other writers change the store: every listing reads it afresh.
      fi->cache_readdir = 0;
      fi->keep_cache = 0;
    } else {
      fi->cache_readdir = 1;
      struct timespec now;
      clock_gettime(CLOCK_REALTIME, &now);
      fi->keep_cache = !before.ok() || !AccessTimeUpdateDue(*before, now);
    }
    if (fuse_reply_open(req, fi) == -ENOENT) Fs(req).ReleaseDir(*handle);
  });
}

void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  GuardedAnyCaller(req, [&] { ServeReadDir(req, ino, size, off, fi, false); });
}

void ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  GuardedAnyCaller(req, [&] { ServeReadDir(req, ino, size, off, fi, true); });
}

void ReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  GuardedAnyCaller(req, [&] {
    Fs(req).ReleaseDir(fi->fh);
    fuse_reply_err(req, 0);
  });
}

void FsyncDir(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
  GuardedAnyCaller(req, [&] { ReplyStatus(req, Fs(req).FsyncDir(ino)); });
}

}  // namespace cadcanfs::fuse_ops
