// Issue 12, items 12 to 15, on a real mount: special files, deep paths, handles on
// replaced directories and O_DIRECT coherence. Each test runs in both cache modes.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/aio_abi.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "fs/fuse/mount_fixture.h"

namespace cadcanfs {
namespace {

using testing::Mount;
using testing::PatternBytes;

enum class CacheMode { kWriteThrough, kWriteback };

// Changes the working directory for a scope (bind(2) and PATH_MAX tests need short
// relative paths), and always changes it back.
class WorkingDirectory {
 public:
  explicit WorkingDirectory(const std::string& dir) : saved_(open(".", O_RDONLY | O_DIRECTORY)) {
    ok_ = chdir(dir.c_str()) == 0;
  }
  ~WorkingDirectory() {
    if (fchdir(saved_) != 0) std::abort();
    close(saved_);
  }
  bool ok() const { return ok_; }

 private:
  int saved_;
  bool ok_ = false;
};

// One O_DIRECT write through the kernel's asynchronous I/O interface (io_submit), as
// fio's libaio engine and xfstests' aio-dio tests issue it.
ssize_t AsyncDirectWrite(int fd, const void* buf, size_t size, off_t offset) {
  aio_context_t ctx = 0;
  if (syscall(SYS_io_setup, 1, &ctx) != 0) return -1;
  iocb cb{};
  cb.aio_fildes = static_cast<uint32_t>(fd);
  cb.aio_lio_opcode = IOCB_CMD_PWRITE;
  cb.aio_buf = reinterpret_cast<uint64_t>(buf);
  cb.aio_nbytes = size;
  cb.aio_offset = offset;
  iocb* list[] = {&cb};
  ssize_t result = -1;
  if (syscall(SYS_io_submit, ctx, 1, list) == 1) {
    io_event event{};
    if (syscall(SYS_io_getevents, ctx, 1, 1, &event, nullptr) == 1) result = event.res;
  }
  syscall(SYS_io_destroy, ctx);
  return result;
}

class Issue12MountTest : public ::testing::TestWithParam<CacheMode> {
 protected:
  Issue12MountTest() : mount_(32768, Extra()) {}
  void SetUp() override { ASSERT_TRUE(mount_.mounted()) << mount_.Log(); }

  static std::vector<std::string> Extra() {
    if (GetParam() == CacheMode::kWriteback) return {"--writeback-cache"};
    return {};
  }
  std::string P(const std::string& rel) { return mount_.path(rel); }

  // Every entry name in the ciphertext tree, recursively.
  std::vector<std::string> CipherNames() {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::recursive_directory_iterator(mount_.vault().root())) {
      names.push_back(e.path().filename().string());
    }
    return names;
  }

  Mount mount_;
};

// Item 1: a symlink keeps working after every kind of rename, exchange and link into
// another directory, read back through a fresh daemon (no kernel cache); fsck stays clean.
TEST_P(Issue12MountTest, Item01SymlinksSurviveMovesBetweenDirectories) {
  ASSERT_EQ(mkdir(P("a").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(P("b").c_str(), 0755), 0);
  ASSERT_EQ(symlink("target-one", P("a/l1").c_str()), 0);
  ASSERT_EQ(symlink("target-two", P("a/l2").c_str()), 0);
  ASSERT_EQ(symlink("target-three", P("b/l3").c_str()), 0);
  ASSERT_EQ(symlink("target-four", P("a/l4").c_str()), 0);
  ASSERT_EQ(rename(P("a/l1").c_str(), P("b/moved").c_str()), 0);
  ASSERT_EQ(renameat2(AT_FDCWD, P("a/l2").c_str(), AT_FDCWD, P("b/l3").c_str(), RENAME_EXCHANGE),
            0);
  ASSERT_EQ(link(P("a/l4").c_str(), P("b/linked").c_str()), 0);
  ASSERT_EQ(rename(P("a").c_str(), P("b/a-moved").c_str()), 0);

  mount_.Remount();
  ASSERT_TRUE(mount_.mounted());
  auto target = [&](const std::string& rel) {
    char buf[256] = {};
    ssize_t n = readlink(P(rel).c_str(), buf, sizeof(buf) - 1);
    return n < 0 ? std::string("error: ") + strerror(errno) : std::string(buf, n);
  };
  EXPECT_EQ(target("b/moved"), "target-one");
  EXPECT_EQ(target("b/l3"), "target-two");
  EXPECT_EQ(target("b/a-moved/l2"), "target-three");
  EXPECT_EQ(target("b/linked"), "target-four");
  EXPECT_EQ(target("b/a-moved/l4"), "target-four");
  struct stat st;
  ASSERT_EQ(lstat(P("b/linked").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 2u) << "a hard link, not a copy";
  mount_.Unmount();

  pid_t child = fork();
  if (child == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    execl(CADCANFS_BINARY, "cadcanfs", "fsck", mount_.vault().root().c_str(), "--key-file",
          mount_.vault().key_file().c_str(), nullptr);
    _exit(127);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "fsck status " << status;
}

// Item 9: one request must not make the daemon seal a terabyte of zeros. Past the file
// size limit (256 GiB by default) writes and truncates fail with EFBIG; a long growth
// stops when its caller is killed, is undone, and never blocks readers of other files.
TEST_P(Issue12MountTest, Item09HugeGrowthIsRefusedOrInterruptible) {
  int fd = open(P("huge").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(ftruncate(fd, off_t{1} << 40), -1);
  EXPECT_EQ(errno, EFBIG);
  // With --writeback-cache the kernel takes a write into its cache and owns the size;
  // the daemon refuses it only when the page is written back (docs/cli.md).
  if (GetParam() == CacheMode::kWriteThrough) {
    EXPECT_EQ(pwrite(fd, "x", 1, off_t{300} << 30), -1);
    EXPECT_EQ(errno, EFBIG);
  }
  EXPECT_EQ(fallocate(fd, 0, 0, off_t{1} << 40), -1);
  EXPECT_EQ(errno, EFBIG);
  close(fd);
  struct stat st;
  ASSERT_EQ(stat(P("huge").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 0);

  testing::WriteRaw(P("other"), PatternBytes(1000, 1));
  pid_t child = fork();
  if (child == 0) {
    (void)truncate(P("huge").c_str(), off_t{200} << 30);  // minutes of sealing zeros
    _exit(0);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  // Another file stays readable meanwhile.
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(testing::ReadRaw(P("other")), PatternBytes(1000, 1));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  kill(child, SIGKILL);
  start = std::chrono::steady_clock::now();
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  // The killed process is released only once the daemon gave up the truncate.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  ASSERT_EQ(stat(P("huge").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 0) << "the interrupted growth was not undone";
  EXPECT_EQ(truncate(P("huge").c_str(), 100), 0);
}

// Item 12: mknod, mkfifo and binding a Unix socket work, with the right type, mode and
// device number; the nodes can be chmod'ed, chown'ed, renamed, linked and unlinked,
// and their names are encrypted in the vault.
TEST_P(Issue12MountTest, Item12SpecialFilesCanBeCreatedAndManaged) {
  ASSERT_EQ(mkfifo(P("Fifo_Zzyzx").c_str(), 0640), 0) << strerror(errno);
  ASSERT_EQ(mknod(P("chr").c_str(), S_IFCHR | 0600, makedev(1, 3)), 0) << strerror(errno);
  ASSERT_EQ(mknod(P("blk").c_str(), S_IFBLK | 0600, makedev(7, 0)), 0) << strerror(errno);
  int sock = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(sock, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  {
    // bind(2) needs a path shorter than sun_path: go there first.
    WorkingDirectory in_mount(mount_.mountpoint());
    ASSERT_TRUE(in_mount.ok());
    std::strcpy(addr.sun_path, "sock");
    EXPECT_EQ(bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << strerror(errno);
  }
  close(sock);

  struct stat st;
  ASSERT_EQ(lstat(P("Fifo_Zzyzx").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  ASSERT_EQ(lstat(P("chr").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  ASSERT_EQ(lstat(P("blk").c_str(), &st), 0);
  EXPECT_TRUE(S_ISBLK(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(7, 0));
  ASSERT_EQ(lstat(P("sock").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));

  // A FIFO on the mount carries data between two processes (the kernel does that).
  std::thread writer([&] {
    int w = open(P("Fifo_Zzyzx").c_str(), O_WRONLY);
    if (w >= 0) {
      (void)!write(w, "ping", 4);
      close(w);
    }
  });
  int r = open(P("Fifo_Zzyzx").c_str(), O_RDONLY);
  ASSERT_GE(r, 0);
  char buf[8] = {};
  EXPECT_EQ(read(r, buf, sizeof(buf)), 4);
  close(r);
  writer.join();
  EXPECT_STREQ(buf, "ping");

  EXPECT_EQ(chmod(P("Fifo_Zzyzx").c_str(), 0600), 0);
  EXPECT_EQ(lchown(P("chr").c_str(), 1234, 5678), 0);
  ASSERT_EQ(mkdir(P("d").c_str(), 0755), 0);
  EXPECT_EQ(rename(P("Fifo_Zzyzx").c_str(), P("d/fifo2").c_str()), 0) << strerror(errno);
  EXPECT_EQ(link(P("d/fifo2").c_str(), P("fifo3").c_str()), 0) << strerror(errno);
  ASSERT_EQ(lstat(P("fifo3").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_nlink, 2u);
  ASSERT_EQ(lstat(P("chr").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);

  // The listing reports the types too.
  DIR* dir = opendir(mount_.mountpoint().c_str());
  ASSERT_NE(dir, nullptr);
  int seen = 0;
  while (dirent* e = readdir(dir)) {
    std::string name = e->d_name;
    if (name == "chr") seen += e->d_type == DT_CHR;
    if (name == "blk") seen += e->d_type == DT_BLK;
    if (name == "sock") seen += e->d_type == DT_SOCK;
    if (name == "fifo3") seen += e->d_type == DT_FIFO;
  }
  closedir(dir);
  EXPECT_EQ(seen, 4);

  for (const std::string& name : CipherNames()) {
    EXPECT_EQ(name.find("Zzyzx"), std::string::npos) << "plaintext name in the vault";
    EXPECT_NE(name, "chr");
  }
  EXPECT_EQ(unlink(P("fifo3").c_str()), 0);
  EXPECT_EQ(unlink(P("d/fifo2").c_str()), 0);
  EXPECT_EQ(unlink(P("sock").c_str()), 0);
  EXPECT_EQ(lstat(P("fifo3").c_str(), &st), -1);
}

// Item 13: a plaintext path of 4,095 bytes made of 127-byte names works, although its
// ciphertext path is far longer than PATH_MAX.
TEST_P(Issue12MountTest, Item13PathsUpToPathMaxWork) {
  std::string rel;
  std::string file;
  {
    WorkingDirectory in_mount(mount_.mountpoint());
    ASSERT_TRUE(in_mount.ok());
    int depth = 0;
    while (rel.size() + 128 + 128 <= 4095) {
      std::string name(127, static_cast<char>('a' + depth % 26));
      rel += (rel.empty() ? "" : "/") + name;
      ASSERT_EQ(mkdir(rel.c_str(), 0755), 0) << "depth " << depth << ": " << strerror(errno);
      ++depth;
    }
    file = rel + "/" + std::string(4095 - rel.size() - 1, 'z');
    ASSERT_EQ(file.size(), 4095u);
    int fd = open(file.c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0) << strerror(errno);
    ASSERT_EQ(write(fd, "deep", 4), 4);
    close(fd);
    struct stat st;
    ASSERT_EQ(stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 4);
  }
  // Read back through a fresh daemon, so nothing comes from the kernel's caches.
  mount_.Remount();
  ASSERT_TRUE(mount_.mounted());
  WorkingDirectory in_mount(mount_.mountpoint());
  ASSERT_TRUE(in_mount.ok());
  char buf[8] = {};
  int fd = open(file.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0) << strerror(errno);
  EXPECT_EQ(read(fd, buf, sizeof(buf)), 4);
  close(fd);
  EXPECT_STREQ(buf, "deep");
  EXPECT_EQ(unlink(file.c_str()), 0);
}

// Item 14: an fd open on a directory that a rename replaced, or that was removed,
// still answers fstat (with st_nlink 0) and lists nothing, as on ext4.
TEST_P(Issue12MountTest, Item14HandlesOnReplacedDirectoriesKeepWorking) {
  ASSERT_EQ(mkdir(P("dir1").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(P("dir2").c_str(), 0750), 0);
  int fd = open(P("dir2").c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(rename(P("dir1").c_str(), P("dir2").c_str()), 0);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0) << strerror(errno);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_nlink, 0u);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  DIR* listing = fdopendir(fd);
  ASSERT_NE(listing, nullptr);
  int entries = 0;
  while (dirent* e = readdir(listing)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) ++entries;
  }
  EXPECT_EQ(entries, 0);
  closedir(listing);

  ASSERT_EQ(mkdir(P("dir3").c_str(), 0700), 0);
  fd = open(P("dir3").c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(rmdir(P("dir3").c_str()), 0);
  ASSERT_EQ(fstat(fd, &st), 0) << strerror(errno);
  EXPECT_EQ(st.st_nlink, 0u);
  EXPECT_EQ(fchmod(fd, 0755), 0) << strerror(errno);
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(mkdirat(fd, "child", 0755), -1);
  EXPECT_EQ(errno, ENOENT);
  close(fd);
}

// Item 15: buffered reads see what an O_DIRECT write stored, even with pages cached.
TEST_P(Issue12MountTest, Item15BufferedReadsSeeDirectWrites) {
  const Bytes before = PatternBytes(1 << 20, 1);
  const Bytes after = PatternBytes(1 << 16, 2);
  int buffered = open(P("dio").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(buffered, 0);
  ASSERT_EQ(pwrite(buffered, before.data(), before.size(), 0), static_cast<ssize_t>(before.size()));
  ASSERT_EQ(fsync(buffered), 0);
  Bytes cached(before.size());
  ASSERT_EQ(pread(buffered, cached.data(), cached.size(), 0), static_cast<ssize_t>(cached.size()));

  int direct = open(P("dio").c_str(), O_RDWR | O_DIRECT);
  ASSERT_GE(direct, 0);
  void* aligned = nullptr;
  ASSERT_EQ(posix_memalign(&aligned, 4096, after.size()), 0);
  std::memcpy(aligned, after.data(), after.size());
  ASSERT_EQ(AsyncDirectWrite(direct, aligned, after.size(), 65536),
            static_cast<ssize_t>(after.size()));
  free(aligned);
  close(direct);

  Bytes back(after.size());
  ASSERT_EQ(pread(buffered, back.data(), back.size(), 65536), static_cast<ssize_t>(back.size()));
  EXPECT_EQ(back, after);
  close(buffered);
}

// Item 16: file handles taken before the kernel dropped its caches still open after it,
// so the mount can be re-exported over NFS.
TEST_P(Issue12MountTest, Item16FileHandlesSurviveACacheDrop) {
  ASSERT_EQ(mkdir(P("case").c_str(), 0755), 0);
  const Bytes content = PatternBytes(100000, 5);
  testing::WriteRaw(P("case/scan.stl"), content);
  struct Handle {
    file_handle header;
    unsigned char bytes[MAX_HANDLE_SZ];
  };
  Handle file{}, dir{};
  file.header.handle_bytes = MAX_HANDLE_SZ;
  dir.header.handle_bytes = MAX_HANDLE_SZ;
  int mount_id = 0;
  ASSERT_EQ(name_to_handle_at(AT_FDCWD, P("case/scan.stl").c_str(), &file.header, &mount_id, 0), 0)
      << strerror(errno);
  ASSERT_EQ(name_to_handle_at(AT_FDCWD, P("case").c_str(), &dir.header, &mount_id, 0), 0);
  int mount_fd = open(mount_.mountpoint().c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(mount_fd, 0);

  sync();
  int drop = open("/proc/sys/vm/drop_caches", O_WRONLY);
  ASSERT_GE(drop, 0);
  ASSERT_EQ(write(drop, "2", 1), 1);  // dentries and inodes: the kernel sends FORGET
  close(drop);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  int fd = open_by_handle_at(mount_fd, &file.header, O_RDONLY);
  ASSERT_GE(fd, 0) << strerror(errno);
  Bytes back(content.size());
  EXPECT_EQ(pread(fd, back.data(), back.size(), 0), static_cast<ssize_t>(back.size()));
  EXPECT_EQ(back, content);
  close(fd);
  int dfd = open_by_handle_at(mount_fd, &dir.header, O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dfd, 0) << strerror(errno);
  struct stat st;
  ASSERT_EQ(fstatat(dfd, "scan.stl", &st, 0), 0);
  EXPECT_EQ(st.st_size, static_cast<off_t>(content.size()));
  // ".." of a directory reached through a handle.
  ASSERT_EQ(fstatat(dfd, "..", &st, 0), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  close(dfd);

  // A handle of a removed file is stale, never another file.
  ASSERT_EQ(unlink(P("case/scan.stl").c_str()), 0);
  EXPECT_EQ(open_by_handle_at(mount_fd, &file.header, O_RDONLY), -1);
  EXPECT_EQ(errno, ESTALE);
  close(mount_fd);
}

INSTANTIATE_TEST_SUITE_P(CacheModes, Issue12MountTest,
                         ::testing::Values(CacheMode::kWriteThrough, CacheMode::kWriteback));

}  // namespace
}  // namespace cadcanfs
