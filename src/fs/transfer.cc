// ImportTree and ExportTree: plaintext in and out of a vault, offline.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "cadcanfs/fs/offline.h"

namespace cadcanfs {

namespace {

namespace stdfs = std::filesystem;
constexpr size_t kCopyChunk = 1 << 20;

// Returns the DirId of plaintext directory `plain_dir`, creating missing components.
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
    std::string child = JoinStorePath(cipher, name.stored);
    auto info = vault.store().Stat(child);
    if (!info.ok()) {
      CADCANFS_RETURN_IF_ERROR(vault.PrepareEntry(cipher, name));
      CADCANFS_RETURN_IF_ERROR(vault.MakeDirectory(child, 0755).status());
    } else if (info->type != ObjectType::kDirectory) {
      return Status::Error(Code::kNotADirectory, "a destination component is not a directory");
    }
    cipher = std::move(child);
    CADCANFS_ASSIGN_OR_RETURN(dir, vault.ReadDirId(cipher));
  }
  return std::make_pair(cipher, dir);
}

Status ImportFile(Vault& vault, const std::string& source, const std::string& cipher_path,
                  const struct stat& st, TransferStats& stats) {
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
  }
  close(fd);
  if (s.ok()) s = (*file)->Sync();
  if (!s.ok()) return s;
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  CADCANFS_RETURN_IF_ERROR(vault.store().SetTimes(cipher_path, times));
  stats.files++;
  stats.bytes += offset;
  return Status::Ok();
}

Status ImportEntry(Vault& vault, const std::string& source, const std::string& cipher_dir,
                   const DirId& dir, std::string_view name, TransferStats& stats);

Status ImportDirectoryContents(Vault& vault, const std::string& source,
                               const std::string& cipher_dir, const DirId& dir,
                               TransferStats& stats) {
  std::error_code ec;
  stdfs::directory_iterator it(source, ec);
  if (ec) return Status::Error(Code::kIoError, "cannot list a source directory: " + ec.message());
  for (const auto& entry : it) {
    std::string child_name = entry.path().filename().string();
    CADCANFS_RETURN_IF_ERROR(
        ImportEntry(vault, entry.path().string(), cipher_dir, dir, child_name, stats));
  }
  return Status::Ok();
}

Status ImportEntry(Vault& vault, const std::string& source, const std::string& cipher_dir,
                   const DirId& dir, std::string_view name, TransferStats& stats) {
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
    return ImportDirectoryContents(vault, source, cipher_path, child_id, stats);
  }
  if (S_ISLNK(st.st_mode)) {
    std::string target(PATH_MAX, '\0');
    ssize_t n = readlink(source.c_str(), target.data(), target.size());
    if (n < 0) return Status::FromErrno(errno, "readlink source");
    target.resize(static_cast<size_t>(n));
    CADCANFS_ASSIGN_OR_RETURN(std::string stored, vault.names().EncryptSymlinkTarget(dir, target));
    (void)vault.store().Remove(cipher_path);
    CADCANFS_RETURN_IF_ERROR(vault.store().Symlink(stored, cipher_path));
    stats.symlinks++;
    return Status::Ok();
  }
  if (S_ISREG(st.st_mode)) return ImportFile(vault, source, cipher_path, st, stats);
  return Status::Ok();  // sockets, devices and fifos are not content
}

Status ExportEntry(Vault& vault, const std::string& cipher_path, const DirId& parent_dir,
                   ObjectType type, const std::string& out_path, TransferStats& stats);

Status ExportFile(Vault& vault, const std::string& cipher_path, const std::string& out_path,
                  TransferStats& stats) {
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, vault.store().Stat(cipher_path));
  CADCANFS_ASSIGN_OR_RETURN(auto file, vault.OpenFile(cipher_path, false));
  int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                info.mode & 07777);
  if (fd < 0) return Status::FromErrno(errno, "create output file");
  std::vector<uint8_t> buffer(kCopyChunk);
  uint64_t offset = 0;
  Status s;
  while (s.ok()) {
    auto n = file->Read(offset, buffer);
    if (!n.ok()) {
      s = n.status().WithContext(file->file_id_for_log());
      break;
    }
    if (*n == 0) break;
    if (write(fd, buffer.data(), *n) != static_cast<ssize_t>(*n)) {
      s = Status::FromErrno(errno, "write output file");
      break;
    }
    offset += *n;
  }
  if (s.ok() && fsync(fd) != 0) s = Status::FromErrno(errno, "fsync output file");
  struct timespec times[2] = {info.atime, info.mtime};
  if (s.ok()) futimens(fd, times);
  close(fd);
  if (s.ok()) {
    stats.files++;
    stats.bytes += offset;
  }
  return s;
}

Status ExportDirectory(Vault& vault, const std::string& cipher_dir, const std::string& out_dir,
                       TransferStats& stats) {
  if (mkdir(out_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "create output directory");
  }
  CADCANFS_ASSIGN_OR_RETURN(DirId dir, vault.ReadDirId(cipher_dir));
  CADCANFS_ASSIGN_OR_RETURN(DirListing listing, vault.ListDirectory(cipher_dir));
  if (!listing.damaged.empty()) return listing.damaged.front().status;
  for (const PlainDirEntry& e : listing.entries) {
    CADCANFS_RETURN_IF_ERROR(ExportEntry(vault, JoinStorePath(cipher_dir, e.stored_name), dir,
                                         e.type, out_dir + "/" + e.name, stats));
  }
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, vault.store().Stat(cipher_dir));
  chmod(out_dir.c_str(), info.mode & 07777);
  stats.directories++;
  return Status::Ok();
}

Status ExportEntry(Vault& vault, const std::string& cipher_path, const DirId& parent_dir,
                   ObjectType type, const std::string& out_path, TransferStats& stats) {
  switch (type) {
    case ObjectType::kDirectory:
      return ExportDirectory(vault, cipher_path, out_path, stats);
    case ObjectType::kFile:
      return ExportFile(vault, cipher_path, out_path, stats);
    case ObjectType::kSymlink: {
      CADCANFS_ASSIGN_OR_RETURN(std::string stored, vault.store().ReadLink(cipher_path));
      CADCANFS_ASSIGN_OR_RETURN(std::string target,
                                vault.names().DecryptSymlinkTarget(parent_dir, stored));
      unlink(out_path.c_str());
      if (symlink(target.c_str(), out_path.c_str()) != 0) {
        return Status::FromErrno(errno, "create output symlink");
      }
      stats.symlinks++;
      return Status::Ok();
    }
    default:
      return Status::Ok();
  }
}

}  // namespace

Result<TransferStats> ImportTree(Vault& vault, const std::string& source,
                                 std::string_view plain_dest, bool contents_only) {
  TransferStats stats;
  CADCANFS_ASSIGN_OR_RETURN(auto dest, EnsurePlainDirectory(vault, plain_dest));
  struct stat st;
  if (lstat(source.c_str(), &st) != 0) return Status::FromErrno(errno, "stat source");
  if (contents_only && S_ISDIR(st.st_mode)) {
    CADCANFS_RETURN_IF_ERROR(
        ImportDirectoryContents(vault, source, dest.first, dest.second, stats));
  } else {
    std::string name = stdfs::path(source).lexically_normal().filename().string();
    if (name.empty()) name = stdfs::path(source).lexically_normal().parent_path().filename();
    CADCANFS_RETURN_IF_ERROR(ImportEntry(vault, source, dest.first, dest.second, name, stats));
  }
  return stats;
}

Result<TransferStats> ExportTree(Vault& vault, std::string_view plain_path,
                                 const std::string& out_dir) {
  TransferStats stats;
  CADCANFS_ASSIGN_OR_RETURN(std::string cipher_path, vault.CipherPathOf(plain_path));
  std::string out = out_dir;
  if (!cipher_path.empty()) {
    // Recreate the vault-relative parents of the requested item.
    std::string relative(plain_path);
    while (!relative.empty() && relative.front() == '/') relative.erase(0, 1);
    while (!relative.empty() && relative.back() == '/') relative.pop_back();
    out = out_dir + "/" + relative;
    std::error_code ec;
    stdfs::create_directories(stdfs::path(out).parent_path(), ec);
    if (ec) return Status::Error(Code::kIoError, "cannot create output directories");
  }
  auto info = vault.store().Stat(cipher_path);
  if (!info.ok() && info.status().code() == Code::kNotFound) {
    return NoSuchVaultPath();
  }
  if (!info.ok()) return info.status();
  CADCANFS_ASSIGN_OR_RETURN(DirId parent, vault.ReadDirId(StoreParent(cipher_path)));
  CADCANFS_RETURN_IF_ERROR(ExportEntry(vault, cipher_path, parent, info->type, out, stats));
  return stats;
}

}  // namespace cadcanfs
