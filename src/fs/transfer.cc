// ImportTree and ExportTree: plaintext in and out of a vault, offline.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <vector>

#include "cadcanfs/common/unique_fd.h"
#include "cadcanfs/fs/offline.h"
#include "cipher_walk.h"

namespace cadcanfs {

namespace {

namespace stdfs = std::filesystem;
constexpr size_t kCopyChunk = 1 << 20;

ProgressObserver& NoProgress() {
  static ProgressObserver none;
  return none;
}

// The plaintext size a ciphertext file of this size holds, for display only: a file
// whose size no valid file can have (to be reported as damaged later) counts as 0.
uint64_t PlainSizeForDisplay(Vault& vault, const std::string& cipher_path,
                             const std::optional<ObjectInfo>& listed) {
  std::optional<ObjectInfo> info = listed;
  if (!info) {
    auto stat = vault.store().Stat(cipher_path);
    if (!stat.ok()) return 0;
    info = *stat;
  }
  auto plain = vault.layout().PlainSizeOfCipherSize(info->size);
  return plain.ok() ? *plain : 0;
}

// Adds the regular files below the vault directory whose entry is `cipher_path` to
// `totals`, by stored names alone (no decryption).
Status MeasureCipherDirectory(Vault& vault, const std::string& cipher_path, WorkTotals& totals) {
  CADCANFS_ASSIGN_OR_RETURN(std::string entries_dir, vault.EntriesDirOf(cipher_path));
  CADCANFS_ASSIGN_OR_RETURN(std::vector<DirEntry> entries, vault.store().List(entries_dir));
  for (const DirEntry& e : entries) {
    if (!IsContentName(ClassifyStoredName(e.name))) continue;
    std::string path = JoinStorePath(entries_dir, e.name);
    if (e.type == ObjectType::kDirectory) {
      CADCANFS_RETURN_IF_ERROR(MeasureCipherDirectory(vault, path, totals));
    } else if (e.type == ObjectType::kFile) {
      totals.files++;
      totals.bytes += PlainSizeForDisplay(vault, path, e.info);
    }
  }
  return Status::Ok();
}

// Returns where the entries of plaintext directory `plain_dir` live, and its DirId,
// creating missing components.
Result<std::pair<std::string, DirId>> EnsurePlainDirectory(Vault& vault,
                                                           std::string_view plain_dir) {
  std::string cipher;
  CADCANFS_ASSIGN_OR_RETURN(DirId dir, vault.ReadDirId(cipher));
  size_t start = 0;
  while (start < plain_dir.size()) {
    size_t slash = plain_dir.find('/', start);
    if (slash == std::string_view::npos) slash = plain_dir.size();
    std::string_view part = plain_dir.substr(start, slash - start);
    start = slash + 1;
    if (part.empty()) continue;
    CADCANFS_ASSIGN_OR_RETURN(EncryptedName name, vault.EncryptName(dir, part));
    const std::string entries_dir = vault.EntriesDir(cipher, dir);
    std::string child = JoinStorePath(entries_dir, name.stored);
    auto info = vault.store().Stat(child);
    if (!info.ok()) {
      CADCANFS_RETURN_IF_ERROR(vault.PrepareEntry(entries_dir, name));
      CADCANFS_RETURN_IF_ERROR(vault.MakeDirectory(child, 0755).status());
    } else if (info->type != ObjectType::kDirectory) {
      return Status::Error(Code::kNotADirectory, "a destination component is not a directory");
    }
    cipher = std::move(child);
    CADCANFS_ASSIGN_OR_RETURN(dir, vault.ReadDirId(cipher));
  }
  return std::make_pair(vault.EntriesDir(cipher, dir), dir);
}

Status ImportFile(Vault& vault, const std::string& source, const std::string& cipher_path,
                  const struct stat& st, TransferStats& stats, ProgressObserver& progress) {
  int fd = open(source.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Status::FromErrno(errno, "open source file");
  // Replace an existing file of the same name, like cp does.
  Status removed = vault.store().Remove(cipher_path);
  if (!removed.ok() && removed.code() != Code::kNotFound) {
    close(fd);
    return removed;
  }
  auto file = vault.CreateFile(cipher_path, st.st_mode & 07777);
  if (!file.ok()) {
    close(fd);
    return file.status();
  }
  std::vector<uint8_t> buffer(kCopyChunk);
  uint64_t offset = 0;
  Status s;
  while (s.ok()) {
    ssize_t n = read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      s = Status::FromErrno(errno, "read source file");
      break;
    }
    if (n == 0) break;
    s = (*file)->Write(offset, ByteSpan(buffer.data(), static_cast<size_t>(n)));
    offset += static_cast<uint64_t>(n);
    progress.OnBytes(static_cast<uint64_t>(n));
  }
  close(fd);
  if (s.ok()) s = (*file)->Sync();
  if (!s.ok()) return s;
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  CADCANFS_RETURN_IF_ERROR(vault.store().SetTimes(cipher_path, times));
  stats.files++;
  stats.bytes += offset;
  progress.OnFileDone();
  return Status::Ok();
}

Status ImportEntry(Vault& vault, const std::string& source, const std::string& cipher_dir,
                   const DirId& dir, std::string_view name, TransferStats& stats,
                   ProgressObserver& progress);

Status ImportDirectoryContents(Vault& vault, const std::string& source,
                               const std::string& cipher_dir, const DirId& dir,
                               TransferStats& stats, ProgressObserver& progress) {
  std::error_code ec;
  stdfs::directory_iterator it(source, ec);
  if (ec) return Status::Error(Code::kIoError, "cannot list a source directory: " + ec.message());
  for (const auto& entry : it) {
    std::string child_name = entry.path().filename().string();
    CADCANFS_RETURN_IF_ERROR(
        ImportEntry(vault, entry.path().string(), cipher_dir, dir, child_name, stats, progress));
  }
  return Status::Ok();
}

Status ImportEntry(Vault& vault, const std::string& source, const std::string& cipher_dir,
                   const DirId& dir, std::string_view name, TransferStats& stats,
                   ProgressObserver& progress) {
  struct stat st;
  if (lstat(source.c_str(), &st) != 0) return Status::FromErrno(errno, "stat source");
  CADCANFS_ASSIGN_OR_RETURN(EncryptedName encrypted, vault.EncryptName(dir, name));
  std::string cipher_path = JoinStorePath(cipher_dir, encrypted.stored);
  CADCANFS_RETURN_IF_ERROR(vault.PrepareEntry(cipher_dir, encrypted));
  if (S_ISDIR(st.st_mode)) {
    DirId child_id;
    auto existing = vault.store().Stat(cipher_path);
    if (existing.ok() && existing->type == ObjectType::kDirectory) {
      CADCANFS_ASSIGN_OR_RETURN(child_id, vault.ReadDirId(cipher_path));
    } else {
      CADCANFS_ASSIGN_OR_RETURN(child_id, vault.MakeDirectory(cipher_path, st.st_mode & 07777));
    }
    stats.directories++;
    return ImportDirectoryContents(vault, source, vault.EntriesDir(cipher_path, child_id), child_id,
                                   stats, progress);
  }
  if (S_ISLNK(st.st_mode)) {
    std::string target(PATH_MAX, '\0');
    ssize_t n = readlink(source.c_str(), target.data(), target.size());
    if (n < 0) return Status::FromErrno(errno, "readlink source");
    target.resize(static_cast<size_t>(n));
    CADCANFS_ASSIGN_OR_RETURN(std::string stored, vault.names().EncryptSymlinkTarget(target));
    (void)vault.store().Remove(cipher_path);
    CADCANFS_RETURN_IF_ERROR(vault.store().Symlink(stored, cipher_path));
    stats.symlinks++;
    return Status::Ok();
  }
  if (S_ISREG(st.st_mode)) return ImportFile(vault, source, cipher_path, st, stats, progress);
  std::optional<ObjectType> special = S_ISFIFO(st.st_mode)   ? ObjectType::kFifo
                                      : S_ISSOCK(st.st_mode) ? ObjectType::kSocket
                                      : S_ISCHR(st.st_mode)  ? ObjectType::kCharDevice
                                      : S_ISBLK(st.st_mode)  ? ObjectType::kBlockDevice
                                                             : std::optional<ObjectType>();
  if (special) {
    // Stored as the same node type under the encrypted name: a node has no content, and
    // its type, mode and device number are metadata like any entry's.
    bool device = *special == ObjectType::kCharDevice || *special == ObjectType::kBlockDevice;
    (void)vault.store().Remove(cipher_path);
    Status made = vault.store().MakeNode(cipher_path, *special, st.st_mode & 07777,
                                         device ? static_cast<uint64_t>(st.st_rdev) : 0);
    if (!made.ok() &&
        ((device && made.code() == Code::kPermissionDenied) || made.code() == Code::kUnsupported)) {
      // Without CAP_MKNOD (or on a store without nodes): counted, never silently dropped.
      CADCANFS_RETURN_IF_ERROR(vault.CleanupEntry(cipher_dir, encrypted));
      stats.skipped++;
      return Status::Ok();
    }
    CADCANFS_RETURN_IF_ERROR(made);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    CADCANFS_RETURN_IF_ERROR(vault.store().SetTimes(cipher_path, times));
    stats.special_files++;
    return Status::Ok();
  }
  CADCANFS_RETURN_IF_ERROR(vault.CleanupEntry(cipher_dir, encrypted));
  stats.skipped++;  // a type this build does not know
  return Status::Ok();
}

// Output directories are opened like this: never through a symlink, and always as a
// real descriptor (not O_PATH) so that fchmod works on it.
constexpr int kOutDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

Status NotADirectoryOnOutput() {
  return Status::Error(Code::kNotADirectory,
                       "an existing output entry where a directory belongs is not a directory "
                       "(a symlink is never followed)",
                       ENOTDIR);
}

// Opens the output directory `name` in `parent`, creating it (0700 until its mode is
// restored) if missing.
Result<UniqueFd> OpenOutputDirectory(int parent, const std::string& name) {
  if (mkdirat(parent, name.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "create output directory");
  }
  int fd = openat(parent, name.c_str(), kOutDirFlags);
  if (fd < 0) {
    if (errno == ELOOP || errno == ENOTDIR) return NotADirectoryOnOutput();
    return Status::FromErrno(errno, "open output directory");
  }
  return UniqueFd(fd);
}

// Makes room for a new non-directory output entry `name` in `dirfd`: an existing file,
// symlink or node is removed (unlinkat never follows anything), so the new one is
// created with O_EXCL and nothing that was there before is ever opened or written
// through. An existing directory is an error.
Status ClearOutputName(int dirfd, const std::string& name) {
  struct stat st;
  if (fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::FromErrno(errno, "stat output entry");
  }
  if (S_ISDIR(st.st_mode)) {
    return Status::Error(Code::kIsADirectory, "an output directory is in the way of a file",
                         EISDIR);
  }
  if (unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) {
    return Status::FromErrno(errno, "replace output entry");
  }
  return Status::Ok();
}

Status ExportEntry(Vault& vault, const std::string& cipher_path, const DirId& parent_dir,
                   ObjectType type, int out_dir, const std::string& out_name, TransferStats& stats,
                   ProgressObserver& progress);

Status ExportFile(Vault& vault, const std::string& cipher_path, int out_dir,
                  const std::string& out_name, TransferStats& stats, ProgressObserver& progress) {
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, vault.store().Stat(cipher_path));
  CADCANFS_ASSIGN_OR_RETURN(auto file, vault.OpenFile(cipher_path, false));
  CADCANFS_RETURN_IF_ERROR(ClearOutputName(out_dir, out_name));
  int raw = openat(out_dir, out_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                   info.mode & 07777);
  if (raw < 0) return Status::FromErrno(errno, "create output file");
  UniqueFd fd(raw);
  std::vector<uint8_t> buffer(kCopyChunk);
  uint64_t offset = 0;
  for (;;) {
    auto n = file->Read(offset, buffer);
    if (!n.ok()) return n.status().WithContext(file->id_for_log());
    if (*n == 0) break;
    size_t written = 0;
    while (written < *n) {
      ssize_t w = write(fd.get(), buffer.data() + written, *n - written);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return Status::FromErrno(errno, "write output file");
      written += static_cast<size_t>(w);
    }
    offset += *n;
    progress.OnBytes(*n);
  }
  if (fsync(fd.get()) != 0) return Status::FromErrno(errno, "fsync output file");
  struct timespec times[2] = {info.atime, info.mtime};
  futimens(fd.get(), times);
  stats.files++;
  stats.bytes += offset;
  progress.OnFileDone();
  return Status::Ok();
}

// Exports the contents of the vault directory whose entry is `cipher_dir` into the open
// output directory `out_dir`, then gives it the vault directory's mode.
Status ExportDirectory(Vault& vault, const std::string& cipher_dir, int out_dir,
                       TransferStats& stats, ProgressObserver& progress) {
  CADCANFS_ASSIGN_OR_RETURN(DirId dir, vault.ReadDirId(cipher_dir));
  const std::string entries_dir = vault.EntriesDir(cipher_dir, dir);
  CADCANFS_ASSIGN_OR_RETURN(DirListing listing, vault.ListDirectory(entries_dir));
  if (!listing.damaged.empty()) return listing.damaged.front().status;
  // Two entries with one plaintext name cannot come from cadcanfs: refuse rather than let
  // the second replace (or be written into) the first.
  std::set<std::string_view> seen;
  for (const PlainDirEntry& e : listing.entries) {
    if (!seen.insert(e.name).second) {
      return Status::Error(Code::kCorrupt, "two entries of a directory decrypt to the same name");
    }
  }
  for (const PlainDirEntry& e : listing.entries) {
    CADCANFS_RETURN_IF_ERROR(ExportEntry(vault, JoinStorePath(entries_dir, e.stored_name), dir,
                                         e.type, out_dir, e.name, stats, progress));
  }
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, vault.store().Stat(cipher_dir));
  fchmod(out_dir, info.mode & 07777);
  stats.directories++;
  return Status::Ok();
}

Status ExportSpecial(Vault& vault, const std::string& cipher_path, ObjectType type, int out_dir,
                     const std::string& out_name, TransferStats& stats) {
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, vault.store().Stat(cipher_path));
  if (info.type != type) return Status::Error(Code::kCorrupt, "an entry changed type");
  CADCANFS_RETURN_IF_ERROR(ClearOutputName(out_dir, out_name));
  bool device = type == ObjectType::kCharDevice || type == ObjectType::kBlockDevice;
  mode_t mode = static_cast<mode_t>(FileTypeBits(type) | (info.mode & 07777));
  if (mknodat(out_dir, out_name.c_str(), mode, device ? static_cast<dev_t>(info.rdev) : 0) != 0) {
    // Device nodes need CAP_MKNOD: without it they are left out and counted, so the
    // restore reports itself incomplete instead of failing half-way.
    if (device && (errno == EPERM || errno == EACCES)) {
      stats.skipped++;
      return Status::Ok();
    }
    return Status::FromErrno(errno, "create output node");
  }
  // The umask may have cleared bits; never follow a name swapped in meanwhile.
  fchmodat(out_dir, out_name.c_str(), info.mode & 07777, AT_SYMLINK_NOFOLLOW);
  stats.special_files++;
  return Status::Ok();
}

Status ExportEntry(Vault& vault, const std::string& cipher_path, const DirId& parent_dir,
                   ObjectType type, int out_dir, const std::string& out_name, TransferStats& stats,
                   ProgressObserver& progress) {
  switch (type) {
    case ObjectType::kDirectory: {
      CADCANFS_ASSIGN_OR_RETURN(UniqueFd child, OpenOutputDirectory(out_dir, out_name));
      return ExportDirectory(vault, cipher_path, child.get(), stats, progress);
    }
    case ObjectType::kFile:
      return ExportFile(vault, cipher_path, out_dir, out_name, stats, progress);
    case ObjectType::kSymlink: {
      CADCANFS_ASSIGN_OR_RETURN(std::string stored, vault.store().ReadLink(cipher_path));
      CADCANFS_ASSIGN_OR_RETURN(std::string target,
                                vault.names().DecryptSymlinkTarget(parent_dir, stored));
      CADCANFS_RETURN_IF_ERROR(ClearOutputName(out_dir, out_name));
      if (symlinkat(target.c_str(), out_dir, out_name.c_str()) != 0) {
        return Status::FromErrno(errno, "create output symlink");
      }
      stats.symlinks++;
      return Status::Ok();
    }
    case ObjectType::kFifo:
    case ObjectType::kSocket:
    case ObjectType::kCharDevice:
    case ObjectType::kBlockDevice:
      return ExportSpecial(vault, cipher_path, type, out_dir, out_name, stats);
    case ObjectType::kOther:
      break;
  }
  stats.skipped++;  // a type the store cannot name: counted, so the restore is incomplete
  return Status::Ok();
}

}  // namespace

WorkTotals MeasureSourceTree(const std::string& source) {
  WorkTotals totals;
  std::error_code ec;
  auto count = [&totals](const stdfs::directory_entry& entry) {
    std::error_code type_ec;
    if (entry.is_regular_file(type_ec) && !entry.is_symlink(type_ec)) {
      totals.files++;
      totals.bytes += entry.file_size(type_ec);
    }
  };
  stdfs::directory_entry top(source, ec);
  if (ec) return totals;
  if (!top.is_directory(ec) || top.is_symlink(ec)) {
    count(top);
    return totals;
  }
  for (stdfs::recursive_directory_iterator it(source, ec), end; !ec && it != end;
       it.increment(ec)) {
    count(*it);
  }
  return totals;
}

Result<WorkTotals> MeasureVaultTree(Vault& vault, std::string_view plain_path) {
  WorkTotals totals;
  CADCANFS_ASSIGN_OR_RETURN(std::string cipher_path, vault.CipherPathOf(plain_path));
  auto info = vault.store().Stat(cipher_path);
  if (!info.ok() && info.status().code() == Code::kNotFound) return NoSuchVaultPath();
  if (!info.ok()) return info.status();
  if (info->type == ObjectType::kDirectory) {
    CADCANFS_RETURN_IF_ERROR(MeasureCipherDirectory(vault, cipher_path, totals));
  } else if (info->type == ObjectType::kFile) {
    totals.files = 1;
    totals.bytes = PlainSizeForDisplay(vault, cipher_path, *info);
  }
  return totals;
}

Result<TransferStats> ImportTree(Vault& vault, const std::string& source,
                                 std::string_view plain_dest, bool contents_only,
                                 ProgressObserver* progress) {
  TransferStats stats;
  ProgressObserver& observer = progress != nullptr ? *progress : NoProgress();
  CADCANFS_ASSIGN_OR_RETURN(auto dest, EnsurePlainDirectory(vault, plain_dest));
  struct stat st;
  if (lstat(source.c_str(), &st) != 0) return Status::FromErrno(errno, "stat source");
  if (contents_only && S_ISDIR(st.st_mode)) {
    CADCANFS_RETURN_IF_ERROR(
        ImportDirectoryContents(vault, source, dest.first, dest.second, stats, observer));
  } else {
    std::string name = stdfs::path(source).lexically_normal().filename().string();
    if (name.empty()) name = stdfs::path(source).lexically_normal().parent_path().filename();
    CADCANFS_RETURN_IF_ERROR(
        ImportEntry(vault, source, dest.first, dest.second, name, stats, observer));
  }
  return stats;
}

Result<TransferStats> ExportTree(Vault& vault, std::string_view plain_path,
                                 const std::string& out_dir, ProgressObserver* progress) {
  TransferStats stats;
  ProgressObserver& observer = progress != nullptr ? *progress : NoProgress();
  CADCANFS_ASSIGN_OR_RETURN(std::string cipher_path, vault.CipherPathOf(plain_path));
  auto info = vault.store().Stat(cipher_path);
  if (!info.ok() && info.status().code() == Code::kNotFound) {
    return NoSuchVaultPath();
  }
  if (!info.ok()) return info.status();
  // OUTDIR itself is the one path resolved by name (following links, as the user gave
  // it); everything below is reached through descriptors.
  if (mkdir(out_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "create output directory");
  }
  int raw = open(out_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (raw < 0) return Status::FromErrno(errno, "open output directory");
  UniqueFd out(raw);
  if (cipher_path.empty()) {
    CADCANFS_RETURN_IF_ERROR(ExportDirectory(vault, cipher_path, out.get(), stats, observer));
    return stats;
  }
  // Recreate the vault-relative parents of the requested item, one component at a time.
  std::vector<std::string> parts;
  for (size_t start = 0; start < plain_path.size();) {
    size_t slash = plain_path.find('/', start);
    if (slash == std::string_view::npos) slash = plain_path.size();
    std::string_view part = plain_path.substr(start, slash - start);
    start = slash + 1;
    if (part.empty()) continue;
    if (part == "." || part == "..") {
      return Status::Error(Code::kInvalidArgument, "a path component is . or ..");
    }
    parts.emplace_back(part);
  }
  if (parts.empty()) return NoSuchVaultPath();
  UniqueFd parent = std::move(out);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    CADCANFS_ASSIGN_OR_RETURN(UniqueFd next, OpenOutputDirectory(parent.get(), parts[i]));
    parent = std::move(next);
  }
  CADCANFS_ASSIGN_OR_RETURN(DirId parent_id, vault.ReadDirId(StoreParent(cipher_path)));
  CADCANFS_RETURN_IF_ERROR(ExportEntry(vault, cipher_path, parent_id, info->type, parent.get(),
                                       parts.back(), stats, observer));
  return stats;
}

}  // namespace cadcanfs
