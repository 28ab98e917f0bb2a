// Open-file operations. Reads decrypt into a per-thread buffer that becomes the reply.
#include <vector>

#include "fuse_ops.h"

namespace cadcanfs::fuse_ops {

namespace {

void SetOpenFlags(fuse_req_t req, fuse_file_info* fi) {
  // Only this daemon changes the vault, so cached pages stay valid across opens; with
  // other writers (--shared-store) every open reads what the store holds now.
  // A view's session keeps no pages across opens either: another session may have
  // written the file since (the main one is told when a view writes).
  fi->keep_cache = Ctx(req).options->shared_store || Ctx(req).further_session ? 0 : 1;
  // Writes reach the store as they arrive, so close(2) owes us nothing: skip the
  // synchronous FLUSH round trip (the kernel still flushes when writeback caching).
  // A store that defers its commits (staging) needs the FLUSH: it journals the file
  // then, so that a crash between close(2) and the last release loses nothing.
  fi->noflush = Fs(req).wants_flush() ? 0 : 1;
}

// relatime: when the next read is due to update atime, drop the cached pages so that
// the read reaches us and the store records the access (the kernel never tells us about
// reads it serves from its cache). Otherwise cached pages stay, as their reads would
// change nothing on ext4 either.
bool KeepCache(const Result<struct stat>& before, int flags) {
  if (!before.ok() || (flags & O_NOATIME) != 0) return true;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return !AccessTimeUpdateDue(*before, now);
}

// open(O_TRUNC) truncates inside OPEN (atomic_o_trunc), and the kernel then sends no
// mode change: clear the setuid and setgid bits ext4 would clear for this caller.
Status ClearPrivilegesOnTruncate(fuse_req_t req, fuse_ino_t ino, const struct stat& before,
                                 HandleId fh) {
  const uint32_t clear = PrivilegeBitsToClearFor(req, before);
  if (clear == 0) return Status::Ok();
  AttrChanges changes;
  changes.mode = before.st_mode & 07777 & ~clear;
  return Fs(req).SetAttr(ino, changes, fh).status();
}

std::vector<uint8_t>& ReadBuffer(size_t size) {
  thread_local std::vector<uint8_t> buffer;
  if (buffer.size() < size) buffer.resize(size);
  return buffer;
}

}  // namespace

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  spdlog::debug("open ino={} flags={:#o}", ino, fi->flags);
  Guarded(req, [&] {
    // The attributes before the open decide the relatime refresh and what O_TRUNC
    // clears; the open itself reads the header, which would already count as an access.
    const Result<struct stat> before = Fs(req).GetAttr(ino);
    auto handle = Fs(req).Open(ino, OpenFlagsOf(req, fi));
    if (!handle.ok()) return ReplyStatus(req, handle.status());
    if ((fi->flags & O_TRUNC) != 0 && before.ok()) {
      Status cleared = ClearPrivilegesOnTruncate(req, ino, *before, *handle);
      if (!cleared.ok()) {
        Fs(req).Release(*handle);
        return ReplyStatus(req, cleared);
      }
    }
    fi->fh = *handle;
    SetOpenFlags(req, fi);
    fi->keep_cache = fi->keep_cache && KeepCache(before, fi->flags);
    if (fuse_reply_open(req, fi) == -ENOENT) Fs(req).Release(*handle);  // interrupted
  });
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  spdlog::debug("create parent={} flags={:#o}", parent, fi->flags);
  Guarded(req, [&] {
    auto created = Fs(req).Create(parent, name, mode, OpenFlagsOf(req, fi), CallerOf(req));
    if (!created.ok()) return ReplyStatus(req, created.status());
    fi->fh = created->second;
    SetOpenFlags(req, fi);
    fuse_entry_param e = EntryParam(req, created->first);
    if (fuse_reply_create(req, &e, fi) == -ENOENT) Fs(req).Release(created->second);
  });
}

void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  spdlog::debug("read ino={} off={} size={}", ino, off, size);
  GuardedAnyCaller(req, [&] {
    std::vector<uint8_t>& buffer = ReadBuffer(size);
    auto n = Fs(req).Read(fi->fh, static_cast<uint64_t>(off), std::span(buffer.data(), size));
    if (!n.ok()) return ReplyStatus(req, n.status());
    fuse_reply_buf(req, reinterpret_cast<const char*>(buffer.data()), *n);
  });
}

void Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
           fuse_file_info* fi) {
  spdlog::debug("write ino={} off={} size={}", ino, off, size);
  GuardedAnyCaller(req, [&] {
    ByteSpan data(reinterpret_cast<const uint8_t*>(buf), size);
    auto n = Fs(req).Write(fi->fh, static_cast<uint64_t>(off), data);
    if (!n.ok()) return ReplyStatus(req, n.status());
    fuse_reply_write(req, *n);
  });
}

void Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  // Sent at every close(2) when the store defers its commits, else only with
  // --writeback-cache after the kernel wrote its dirty pages back. A store writing in
  // place has nothing to do then (as on ext4); a staging store journals the file.
  spdlog::debug("flush ino={}", ino);
  GuardedAnyCaller(req, [&] { ReplyStatus(req, Fs(req).Flush(fi->fh)); });
}

void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  spdlog::debug("release ino={}", ino);
  GuardedAnyCaller(req, [&] {
    Fs(req).Release(fi->fh);
    // Written through a view: the main session's cached pages are stale.
    if ((fi->flags & O_ACCMODE) != O_RDONLY && Ctx(req).invalidate_in_peer) {
      Ctx(req).invalidate_in_peer(ino);
    }
    fuse_reply_err(req, 0);
  });
}

void Fsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info* fi) {
  spdlog::debug("fsync ino={}", ino);
  GuardedAnyCaller(req, [&] { ReplyStatus(req, Fs(req).Fsync(fi->fh)); });
}

void Fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
               fuse_file_info* fi) {
  spdlog::debug("fallocate ino={} mode={} off={} len={}", ino, mode, offset, length);
  GuardedAnyCaller(req, [&] {
    if (offset < 0 || length <= 0) {
      fuse_reply_err(req, EINVAL);
      return;
    }
    ReplyStatus(req, Fs(req).Allocate(fi->fh, mode, static_cast<uint64_t>(offset),
                                      static_cast<uint64_t>(length)));
  });
}

}  // namespace cadcanfs::fuse_ops
