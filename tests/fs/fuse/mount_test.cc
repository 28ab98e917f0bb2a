// POSIX behaviour of a real cadcanfs mount, checked against what ext4 does.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "fs/fuse/mount_fixture.h"

namespace cadcanfs {
namespace {

using testing::Mount;
using testing::PatternBytes;
using testing::ReadRaw;
using testing::WriteRaw;

// Every test runs twice: write-through (the default) and with --writeback-cache, where
// the kernel merges writes in its page cache and owns size and mtime. One shared
// mount per mode.
enum class CacheMode { kWriteThrough, kWriteback };

class MountTest : public ::testing::TestWithParam<CacheMode> {
 protected:
  static void TearDownTestSuite() {
    for (Mount*& mount : mounts_) {
      delete mount;
      mount = nullptr;
    }
  }
  void SetUp() override {
    Mount*& mount = mounts_[static_cast<size_t>(GetParam())];
    if (mount == nullptr) {
      std::vector<std::string> extra;
      if (GetParam() == CacheMode::kWriteback) extra.push_back("--writeback-cache");
      mount = new Mount(32768, extra);
    }
    mount_ = mount;
    ASSERT_TRUE(mount_->mounted()) << mount_->Log();
    // Each test works in its own directory of the shared mount.
    // Each mode has its own mount, so the test name without its "/Mode" suffix will do.
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    rel_dir_ = name.substr(0, name.find('/'));
    dir_ = mount_->path(rel_dir_);
    ASSERT_EQ(mkdir(dir_.c_str(), 0755), 0) << strerror(errno);
  }
  std::string P(const std::string& rel) const { return dir_ + "/" + rel; }

  static void Put(const std::string& path, const Bytes& data) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0) << strerror(errno);
    ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ASSERT_EQ(close(fd), 0);
  }
  // Reads what the daemon stores, not the kernel's page cache: dirty pages are written
  // back and cached ones dropped first (in writeback mode the cache alone could hide a
  // write the daemon put in the wrong place).
  static Bytes Get(const std::string& path) {
    int fd = open(path.c_str(), O_RDONLY);
    EXPECT_GE(fd, 0) << strerror(errno);
    EXPECT_EQ(fsync(fd), 0) << strerror(errno);
    EXPECT_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    Bytes out;
    uint8_t buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) out.insert(out.end(), buf, buf + n);
    close(fd);
    return out;
  }
  static int ErrnoOf(int rc) { return rc == 0 ? 0 : errno; }
  static off_t SizeOf(const std::string& path) {
    struct stat st;
    EXPECT_EQ(lstat(path.c_str(), &st), 0);
    return st.st_size;
  }

  static std::array<Mount*, 2> mounts_;
  Mount* mount_ = nullptr;
  std::string rel_dir_;  // the test's directory, relative to the mount
  std::string dir_;
};

std::array<Mount*, 2> MountTest::mounts_ = {};

TEST_P(MountTest, RandomWritesMatchAModel) {
  std::mt19937 rng(7);
  Bytes model;
  int fd = open(P("model").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  for (int step = 0; step < 200; ++step) {
    const size_t offset = rng() % 300000;
    const size_t length = 1 + rng() % 70000;
    Bytes data = PatternBytes(length, step);
    ASSERT_EQ(pwrite(fd, data.data(), length, static_cast<off_t>(offset)),
              static_cast<ssize_t>(length));
    if (model.size() < offset + length) model.resize(offset + length, 0);
    std::copy(data.begin(), data.end(), model.begin() + static_cast<long>(offset));
  }
  close(fd);
  EXPECT_EQ(SizeOf(P("model")), static_cast<off_t>(model.size()));
  EXPECT_EQ(Get(P("model")), model);
}

TEST_P(MountTest, OpenFlagsBehaveAsOnExt4) {
  Put(P("f"), PatternBytes(1000, 1));
  EXPECT_EQ(open(P("f").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644), -1);
  EXPECT_EQ(errno, EEXIST);
  int fd = open(P("f").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
  ASSERT_EQ(write(fd, "tail", 4), 4);
  close(fd);
  Bytes expected = PatternBytes(1000, 1);
  expected.insert(expected.end(), {'t', 'a', 'i', 'l'});
  EXPECT_EQ(Get(P("f")), expected);
  fd = open(P("f").c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(fd, 0);
  close(fd);
  EXPECT_EQ(SizeOf(P("f")), 0);
  EXPECT_EQ(open(P("missing").c_str(), O_RDONLY), -1);
  EXPECT_EQ(errno, ENOENT);
}

TEST_P(MountTest, TruncateUpAndDownAndSparseGaps) {
  Put(P("t"), PatternBytes(100000, 2));
  ASSERT_EQ(truncate(P("t").c_str(), 40000), 0);
  Bytes expected = PatternBytes(100000, 2);
  expected.resize(40000);
  EXPECT_EQ(Get(P("t")), expected);
  ASSERT_EQ(truncate(P("t").c_str(), 200000), 0);
  expected.resize(200000, 0);
  EXPECT_EQ(Get(P("t")), expected);
  int fd = open(P("t").c_str(), O_WRONLY);
  ASSERT_EQ(pwrite(fd, "x", 1, 1000000), 1);
  ASSERT_EQ(ftruncate(fd, 999999), 0);
  close(fd);
  expected.resize(999999, 0);
  EXPECT_EQ(Get(P("t")), expected);
}

TEST_P(MountTest, ErrorsMatchExt4) {
  ASSERT_EQ(mkdir(P("d").c_str(), 0755), 0);
  Put(P("d/inner"), PatternBytes(10, 3));
  Put(P("file"), PatternBytes(10, 4));
  EXPECT_EQ(ErrnoOf(mkdir(P("d").c_str(), 0755)), EEXIST);
  EXPECT_EQ(ErrnoOf(rmdir(P("d").c_str())), ENOTEMPTY);
  EXPECT_EQ(ErrnoOf(rmdir(P("file").c_str())), ENOTDIR);
  EXPECT_EQ(ErrnoOf(unlink(P("d").c_str())), EISDIR);
  EXPECT_EQ(ErrnoOf(rmdir(P("nothing").c_str())), ENOENT);
  EXPECT_EQ(ErrnoOf(mkdir(P("file/sub").c_str(), 0755)), ENOTDIR);
  EXPECT_EQ(open(P(std::string(256, 'n')).c_str(), O_CREAT | O_WRONLY, 0644), -1);
  EXPECT_EQ(errno, ENAMETOOLONG);
  EXPECT_EQ(ErrnoOf(rename(P("d").c_str(), P("file").c_str())), ENOTDIR);
  EXPECT_EQ(ErrnoOf(rename(P("file").c_str(), P("d").c_str())), EISDIR);
  ASSERT_EQ(mkdir(P("e").c_str(), 0755), 0);
  EXPECT_EQ(ErrnoOf(rename(P("e").c_str(), P("d").c_str())), ENOTEMPTY);
  EXPECT_EQ(ErrnoOf(rename(P("d").c_str(), P("d/inner2").c_str())), EINVAL);
  // An empty directory can be replaced, and the replacement keeps its contents.
  ASSERT_EQ(rename(P("d").c_str(), P("e").c_str()), 0);
  EXPECT_EQ(Get(P("e/inner")), PatternBytes(10, 3));
  ASSERT_EQ(unlink(P("e/inner").c_str()), 0);
  EXPECT_EQ(rmdir(P("e").c_str()), 0);
  DIR* d = opendir(P("file").c_str());
  EXPECT_EQ(d, nullptr);
  EXPECT_EQ(errno, ENOTDIR);
  // A name of exactly 255 bytes works.
  std::string longest(255, 'L');
  Put(P(longest), PatternBytes(5, 5));
  EXPECT_EQ(Get(P(longest)), PatternBytes(5, 5));
}

TEST_P(MountTest, RenameReplaceNoReplaceExchangeAndAcrossDirectories) {
  ASSERT_EQ(mkdir(P("a").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(P("b").c_str(), 0755), 0);
  Put(P("a/one"), PatternBytes(100, 1));
  Put(P("b/two"), PatternBytes(200, 2));
  EXPECT_EQ(renameat2(AT_FDCWD, P("a/one").c_str(), AT_FDCWD, P("b/two").c_str(), RENAME_NOREPLACE),
            -1);
  EXPECT_EQ(errno, EEXIST);
  ASSERT_EQ(renameat2(AT_FDCWD, P("a/one").c_str(), AT_FDCWD, P("b/two").c_str(), RENAME_EXCHANGE),
            0);
  EXPECT_EQ(Get(P("a/one")), PatternBytes(200, 2));
  EXPECT_EQ(Get(P("b/two")), PatternBytes(100, 1));
  ASSERT_EQ(rename(P("a/one").c_str(), P("b/two").c_str()), 0);  // replaces
  EXPECT_EQ(Get(P("b/two")), PatternBytes(200, 2));
  EXPECT_EQ(access(P("a/one").c_str(), F_OK), -1);
  // A directory moves with its contents; long names survive moves both ways.
  std::string long_name(200, 'x');
  Put(P("a/" + long_name), PatternBytes(50, 6));
  ASSERT_EQ(rename(P("a").c_str(), P("b/moved").c_str()), 0);
  EXPECT_EQ(Get(P("b/moved/" + long_name)), PatternBytes(50, 6));
  ASSERT_EQ(rename(P("b/moved/" + long_name).c_str(), P("short").c_str()), 0);
  EXPECT_EQ(Get(P("short")), PatternBytes(50, 6));
  ASSERT_EQ(rename(P("short").c_str(), P("b/" + long_name).c_str()), 0);
  EXPECT_EQ(Get(P("b/" + long_name)), PatternBytes(50, 6));
}

TEST_P(MountTest, HardLinksAndSymlinks) {
  Put(P("orig"), PatternBytes(3000, 7));
  ASSERT_EQ(link(P("orig").c_str(), P("alias").c_str()), 0);
  struct stat a, b;
  ASSERT_EQ(stat(P("orig").c_str(), &a), 0);
  ASSERT_EQ(stat(P("alias").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
  int fd = open(P("alias").c_str(), O_WRONLY);
  ASSERT_EQ(pwrite(fd, "ZZ", 2, 10), 2);
  close(fd);
  Bytes expected = PatternBytes(3000, 7);
  expected[10] = 'Z';
  expected[11] = 'Z';
  EXPECT_EQ(Get(P("orig")), expected);
  ASSERT_EQ(unlink(P("orig").c_str()), 0);
  EXPECT_EQ(Get(P("alias")), expected);
  ASSERT_EQ(stat(P("alias").c_str(), &b), 0);
  EXPECT_EQ(b.st_nlink, 1u);

  ASSERT_EQ(symlink("alias", P("link").c_str()), 0);
  char target[64] = {};
  ASSERT_EQ(readlink(P("link").c_str(), target, sizeof(target)), 5);
  EXPECT_STREQ(target, "alias");
  EXPECT_EQ(SizeOf(P("link")), 5);
  EXPECT_EQ(Get(P("link")), expected);
  std::string long_target(1000, 't');
  ASSERT_EQ(symlink(long_target.c_str(), P("longlink").c_str()), 0);
  EXPECT_EQ(SizeOf(P("longlink")), 1000);

  // link(2) of a symlink (never followed on Linux): in the same directory a true hard
  // link; into another directory a copy, because targets are sealed to their directory.
  ASSERT_EQ(link(P("link").c_str(), P("link2").c_str()), 0);
  ASSERT_EQ(lstat(P("link2").c_str(), &b), 0);
  EXPECT_EQ(b.st_nlink, 2u);
  ASSERT_EQ(mkdir(P("other").c_str(), 0755), 0);
  ASSERT_EQ(link(P("link").c_str(), P("other/link").c_str()), 0) << strerror(errno);
  char moved[64] = {};
  ASSERT_EQ(readlink(P("other/link").c_str(), moved, sizeof(moved)), 5);
  EXPECT_STREQ(moved, "alias");
  ASSERT_EQ(lstat(P("other/link").c_str(), &b), 0);
  EXPECT_TRUE(S_ISLNK(b.st_mode));
  ASSERT_EQ(lstat(P("link").c_str(), &a), 0);
  EXPECT_EQ(b.st_uid, a.st_uid);
  char still[64] = {};
  ASSERT_EQ(readlink(P("link2").c_str(), still, sizeof(still)), 5);
  EXPECT_STREQ(still, "alias");
}

TEST_P(MountTest, UserXattrsAreEncryptedAtRest) {
  Put(P("x"), PatternBytes(10, 8));
  const char value[] = "Patient-Xattr-Value";
  ASSERT_EQ(setxattr(P("x").c_str(), "user.case", value, sizeof(value), 0), 0);
  char buf[128] = {};
  ASSERT_EQ(getxattr(P("x").c_str(), "user.case", buf, sizeof(buf)),
            static_cast<ssize_t>(sizeof(value)));
  EXPECT_STREQ(buf, value);
  EXPECT_EQ(getxattr(P("x").c_str(), "user.case", nullptr, 0), static_cast<ssize_t>(sizeof(value)));
  EXPECT_EQ(getxattr(P("x").c_str(), "user.case", buf, 2), -1);
  EXPECT_EQ(errno, ERANGE);
  EXPECT_EQ(setxattr(P("x").c_str(), "user.case", "v", 1, XATTR_CREATE), -1);
  EXPECT_EQ(errno, EEXIST);
  EXPECT_EQ(getxattr(P("x").c_str(), "user.none", buf, sizeof(buf)), -1);
  EXPECT_EQ(errno, ENODATA);
  char list[256] = {};
  ssize_t n = listxattr(P("x").c_str(), list, sizeof(list));
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(list, static_cast<size_t>(n)), std::string("user.case") + '\0');
  // At rest: neither the name nor the value appears in the backing object's xattrs.
  if (!mount_->plain()) {
    auto cipher = mount_->vault().vault().CipherPathOf(rel_dir_ + "/x");
    ASSERT_TRUE(cipher.ok());
    std::string backing = mount_->vault().root() + "/" + *cipher;
    char raw[1024] = {};
    ssize_t raw_n = listxattr(backing.c_str(), raw, sizeof(raw));
    ASSERT_GT(raw_n, 0);
    EXPECT_EQ(std::string(raw, static_cast<size_t>(raw_n)).find("case"), std::string::npos);
  }
  ASSERT_EQ(removexattr(P("x").c_str(), "user.case"), 0);
  EXPECT_EQ(getxattr(P("x").c_str(), "user.case", buf, sizeof(buf)), -1);
  EXPECT_EQ(errno, ENODATA);
  EXPECT_EQ(setxattr(P("x").c_str(), "trusted.x", "v", 1, 0), -1);
  // Other namespaces are unsupported (ls -l stops asking), and saying so leaves user.*
  // working: the kernel stops forwarding getxattr only after ENOSYS.
  EXPECT_EQ(getxattr(P("x").c_str(), "security.selinux", buf, sizeof(buf)), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
  EXPECT_EQ(getxattr(P("x").c_str(), "system.posix_acl_access", nullptr, 0), -1);
  EXPECT_TRUE(errno == EOPNOTSUPP || errno == ENODATA) << errno;
  ASSERT_EQ(setxattr(P("x").c_str(), "user.after", "v", 1, 0), 0);
  EXPECT_EQ(getxattr(P("x").c_str(), "user.after", buf, sizeof(buf)), 1);
}

TEST_P(MountTest, ChmodChownAndTimes) {
  Put(P("m"), PatternBytes(10, 9));
  ASSERT_EQ(chmod(P("m").c_str(), 0600), 0);
  struct stat st;
  ASSERT_EQ(stat(P("m").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(chown(P("m").c_str(), 1234, 2345), 0);
  ASSERT_EQ(stat(P("m").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 2345u);
  struct timespec times[2] = {{1000000000, 5}, {1200000000, 7}};
  ASSERT_EQ(utimensat(AT_FDCWD, P("m").c_str(), times, 0), 0);
  ASSERT_EQ(stat(P("m").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1200000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 7);
  EXPECT_EQ(st.st_atim.tv_sec, 1000000000);
}

TEST_P(MountTest, OpenUnlinkedFileStaysReadableAndWritable) {
  Put(P("u"), PatternBytes(70000, 10));
  int fd = open(P("u").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(unlink(P("u").c_str()), 0);
  EXPECT_EQ(access(P("u").c_str(), F_OK), -1);
  Bytes buf(70000);
  ASSERT_EQ(pread(fd, buf.data(), buf.size(), 0), 70000);
  EXPECT_EQ(buf, PatternBytes(70000, 10));
  ASSERT_EQ(pwrite(fd, "abc", 3, 70000), 3);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 70003);
  // Metadata changes still apply, as on ext4.
  ASSERT_EQ(fchmod(fd, 0640), 0) << strerror(errno);
  const struct timespec times[2] = {{1000, 0}, {2000, 0}};
  ASSERT_EQ(futimens(fd, times), 0) << strerror(errno);
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_mtim.tv_sec, 2000);
  close(fd);
  // A new file under the old name is a different object.
  Put(P("u"), PatternBytes(5, 11));
  EXPECT_EQ(Get(P("u")), PatternBytes(5, 11));
}

TEST_P(MountTest, MmapIsCoherentWithReadAndWrite) {
  const size_t size = 200000;
  Put(P("mm"), PatternBytes(size, 12));
  int fd = open(P("mm").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  auto* map = static_cast<uint8_t*>(mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  ASSERT_NE(map, MAP_FAILED);
  // write(2) then read through the mapping
  ASSERT_EQ(pwrite(fd, "WRITTEN", 7, 123456), 7);
  EXPECT_EQ(std::memcmp(map + 123456, "WRITTEN", 7), 0);
  // store through the mapping then read(2)
  std::memcpy(map + 40000, "MAPPED", 6);
  ASSERT_EQ(msync(map, size, MS_SYNC), 0);
  char buf[6];
  ASSERT_EQ(pread(fd, buf, 6, 40000), 6);
  EXPECT_EQ(std::memcmp(buf, "MAPPED", 6), 0);
  munmap(map, size);
  close(fd);
  // And it is what another open (after dropping the cache) reads from the vault.
  int d = open("/proc/sys/vm/drop_caches", O_WRONLY);
  if (d >= 0) {
    (void)!write(d, "3", 1);
    close(d);
  }
  Bytes expected = PatternBytes(size, 12);
  std::memcpy(expected.data() + 123456, "WRITTEN", 7);
  std::memcpy(expected.data() + 40000, "MAPPED", 6);
  EXPECT_EQ(Get(P("mm")), expected);
}

TEST_P(MountTest, ManyThreadsReadAndWriteOneFile) {
  const size_t chunk = 100000;
  const int writers = 4;
  Put(P("shared"), Bytes(chunk * writers, 0));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < writers; ++t) {
    threads.emplace_back([&, t] {
      int fd = open(P("shared").c_str(), O_RDWR);
      Bytes data = PatternBytes(chunk, 100 + t);
      for (int round = 0; round < 20; ++round) {
        // Unaligned pieces, so neighbouring writers share blocks.
        for (size_t off = 0; off < chunk; off += 7777) {
          size_t len = std::min<size_t>(7777, chunk - off);
          if (pwrite(fd, data.data() + off, len, static_cast<off_t>(t * chunk + off)) !=
              static_cast<ssize_t>(len)) {
            ++failures;
          }
        }
        Bytes back(chunk);
        if (pread(fd, back.data(), chunk, static_cast<off_t>(t * chunk)) !=
                static_cast<ssize_t>(chunk) ||
            back != data) {
          ++failures;
        }
      }
      close(fd);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  Bytes all = Get(P("shared"));
  ASSERT_EQ(all.size(), chunk * writers);
  for (int t = 0; t < writers; ++t) {
    EXPECT_TRUE(std::equal(all.begin() + static_cast<long>(t * chunk),
                           all.begin() + static_cast<long>((t + 1) * chunk),
                           PatternBytes(chunk, 100 + t).begin()));
  }
}

TEST_P(MountTest, FilesLargerThanFourGiB) {
  const off_t beyond = (off_t{1} << 32) + 12345;
  int fd = open(P("big").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, "END", 3, beyond), 3);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, beyond + 3);
  char buf[8] = {};
  ASSERT_EQ(pread(fd, buf, 8, beyond - 5), 8);
  EXPECT_EQ(std::memcmp(buf, "\0\0\0\0\0END", 8), 0);
  ASSERT_EQ(pread(fd, buf, 4, (off_t{1} << 32) - 2), 4);
  EXPECT_EQ(std::memcmp(buf, "\0\0\0\0", 4), 0);
  close(fd);
  ASSERT_EQ(unlink(P("big").c_str()), 0);
}

TEST_P(MountTest, TamperedBlockGivesEioAndLogsOnlyTheFileId) {
  if (mount_->plain()) GTEST_SKIP() << "about the vault's ciphertext";
  const std::string name = "PatientSecretName";
  Put(P(name), PatternBytes(3 * 32768, 13));
  auto cipher = mount_->vault().vault().CipherPathOf(rel_dir_ + "/" + name);
  ASSERT_TRUE(cipher.ok());
  std::string backing = mount_->vault().root() + "/" + *cipher;
  Bytes raw = ReadRaw(backing);
  raw[192 + (32768 + 28) + 100] ^= 1;  // inside block 1
  int wfd = open(backing.c_str(), O_WRONLY);
  ASSERT_EQ(pwrite(wfd, raw.data(), raw.size(), 0), static_cast<ssize_t>(raw.size()));
  close(wfd);
  int fd = open(P(name).c_str(), O_RDONLY | O_DIRECT);
  ASSERT_GE(fd, 0);
  void* buf = nullptr;
  ASSERT_EQ(posix_memalign(&buf, 4096, 32768), 0);
  EXPECT_EQ(pread(fd, buf, 32768, 0), 32768);
  EXPECT_EQ(pread(fd, buf, 32768, 32768), -1);
  EXPECT_EQ(errno, EIO);
  EXPECT_EQ(pread(fd, buf, 32768, 65536), 32768);
  free(buf);
  close(fd);
  std::string log = mount_->Log();
  EXPECT_NE(log.find("authentication failed in fid:"), std::string::npos) << log;
  EXPECT_EQ(log.find(name), std::string::npos);
}

TEST_P(MountTest, RewritingBytesChangesOnlyTheirBlock) {
  if (mount_->plain()) GTEST_SKIP() << "about the vault's ciphertext";
  Put(P("inc"), PatternBytes(1 << 20, 14));
  auto cipher = mount_->vault().vault().CipherPathOf(rel_dir_ + "/inc");
  ASSERT_TRUE(cipher.ok());
  std::string backing = mount_->vault().root() + "/" + *cipher;
  Bytes before = ReadRaw(backing);
  int fd = open(P("inc").c_str(), O_WRONLY);
  ASSERT_EQ(pwrite(fd, "0123456789", 10, 100000), 10);
  close(fd);
  Bytes after = ReadRaw(backing);
  ASSERT_EQ(before.size(), after.size());
  const size_t stored = 32768 + 28;
  const size_t block = 100000 / 32768;
  for (size_t i = 0; i < before.size(); ++i) {
    if (before[i] == after[i]) continue;
    ASSERT_GE(i, 192 + block * stored) << "byte " << i << " changed outside the written block";
    ASSERT_LT(i, 192 + (block + 1) * stored) << "byte " << i << " changed outside the block";
  }
}

TEST_P(MountTest, FlockAndPosixLocksAreEnforced) {
  Put(P("lock"), PatternBytes(10, 15));
  int a = open(P("lock").c_str(), O_RDWR);
  int b = open(P("lock").c_str(), O_RDWR);
  ASSERT_EQ(flock(a, LOCK_EX), 0);
  EXPECT_EQ(flock(b, LOCK_EX | LOCK_NB), -1);
  EXPECT_EQ(errno, EWOULDBLOCK);
  ASSERT_EQ(flock(a, LOCK_UN), 0);
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_len = 0;
  ASSERT_EQ(fcntl(a, F_SETLK, &fl), 0);
  pid_t child = fork();
  if (child == 0) {
    int c = open(P("lock").c_str(), O_RDWR);
    struct flock other {};
    other.l_type = F_WRLCK;
    other.l_whence = SEEK_SET;
    _exit(fcntl(c, F_SETLK, &other) == -1 && (errno == EAGAIN || errno == EACCES) ? 0 : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  close(a);
  close(b);
}

TEST_P(MountTest, ReaddirListsEveryEntryWithTypes) {
  std::set<std::string> expected = {".", ".."};
  for (int i = 0; i < 300; ++i) {
    std::string name = "entry " + std::to_string(i) + (i % 3 == 0 ? std::string(150, 'y') : "");
    expected.insert(name);
    if (i % 10 == 0) {
      ASSERT_EQ(mkdir(P(name).c_str(), 0755), 0);
    } else {
      Put(P(name), PatternBytes(10, static_cast<uint32_t>(i)));
    }
  }
  std::set<std::string> seen;
  DIR* d = opendir(dir_.c_str());
  ASSERT_NE(d, nullptr);
  while (struct dirent* e = readdir(d)) {
    seen.insert(e->d_name);
    if (std::string(e->d_name).rfind("entry 10", 0) == 0 && std::string(e->d_name) == "entry 10") {
      EXPECT_EQ(e->d_type, DT_DIR);
    }
  }
  closedir(d);
  EXPECT_EQ(seen, expected);
}

TEST_P(MountTest, FallocateAndStatfs) {
  int fd = open(P("fa").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 1 << 20), 0);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 0);
  ASSERT_EQ(fallocate(fd, 0, 0, 100000), 0);
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 100000);
  EXPECT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
  close(fd);
  struct statvfs sv;
  ASSERT_EQ(statvfs(dir_.c_str(), &sv), 0);
  EXPECT_EQ(sv.f_namemax, 255u);
  EXPECT_GT(sv.f_blocks, 0u);
}

INSTANTIATE_TEST_SUITE_P(CacheModes, MountTest,
                         ::testing::Values(CacheMode::kWriteThrough, CacheMode::kWriteback),
                         [](const ::testing::TestParamInfo<CacheMode>& info) {
                           return info.param == CacheMode::kWriteback ? "Writeback"
                                                                      : "WriteThrough";
                         });

}  // namespace
}  // namespace cadcanfs
