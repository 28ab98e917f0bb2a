// Issue 12, item 4: entries whose type the filesystem does not report (DT_UNKNOWN) were
// listed as "other" and silently skipped by every walker. Now List falls back to
// fstatat, FIFOs, sockets and devices have types of their own, and walkers count what
// they skip so that the commands fail loudly.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "cadcanfs/fs/offline.h"
#include "cadcanfs/store/local_store.h"
#include "testing/forwarding_store.h"
#include "testing/temp_vault.h"

namespace cadcanfs {
namespace internal {
// Defined in src/store/local_store.cc: the d_type mapping List uses, with its fstatat
// fallback. Declared here so the test can force the DT_UNKNOWN path on a filesystem
// that always reports types.
Result<ObjectType> DirentType(int dirfd, const char* name, unsigned char d_type);
}  // namespace internal

namespace {

using testing::TempDir;
using testing::TempVault;
namespace stdfs = std::filesystem;

bool IsRoot() { return geteuid() == 0; }

void MakeSocket(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof(addr.sun_path));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << strerror(errno);
  close(fd);
}

// A directory holding one entry of every type (devices only as root).
void MakeEveryType(const std::string& dir) {
  testing::WriteRaw(dir + "/File", Bytes{1, 2, 3});
  mkdir((dir + "/Dir").c_str(), 0700);
  ASSERT_EQ(symlink("File", (dir + "/Link").c_str()), 0);
  ASSERT_EQ(mkfifo((dir + "/Fifo").c_str(), 0640), 0);
  MakeSocket(dir + "/Sock");
  if (IsRoot()) {
    ASSERT_EQ(mknod((dir + "/Chr").c_str(), S_IFCHR | 0600, makedev(1, 3)), 0);
    ASSERT_EQ(mknod((dir + "/Blk").c_str(), S_IFBLK | 0600, makedev(7, 200)), 0);
  }
}

TEST(Issue12Item04Test, UnknownDirentTypeFallsBackToFstatat) {
  TempDir dir;
  MakeEveryType(dir.path());
  int fd = open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::vector<std::pair<std::string, ObjectType>> expected = {
      {"File", ObjectType::kFile}, {"Dir", ObjectType::kDirectory}, {"Link", ObjectType::kSymlink},
      {"Fifo", ObjectType::kFifo}, {"Sock", ObjectType::kSocket},
  };
  if (IsRoot()) {
    expected.push_back({"Chr", ObjectType::kCharDevice});
    expected.push_back({"Blk", ObjectType::kBlockDevice});
  }
  for (const auto& [name, type] : expected) {
    auto got = internal::DirentType(fd, name.c_str(), DT_UNKNOWN);
    ASSERT_TRUE(got.ok()) << name << ": " << got.status().ToString();
    EXPECT_EQ(*got, type) << name;
  }
  // An entry removed between readdir and the fallback is reported as gone.
  EXPECT_EQ(internal::DirentType(fd, "vanished", DT_UNKNOWN).status().code(), Code::kNotFound);
  close(fd);
}

TEST(Issue12Item04Test, LocalStoreNamesEveryNodeType) {
  TempDir dir;
  MakeEveryType(dir.path());
  auto store = OpenLocalStore(dir.path());
  ASSERT_TRUE(store.ok());
  auto listing = (*store)->List("");
  ASSERT_TRUE(listing.ok());
  for (const DirEntry& e : *listing) {
    auto info = (*store)->Stat(e.name);
    ASSERT_TRUE(info.ok()) << e.name;
    EXPECT_EQ(e.type, info->type) << e.name;
    EXPECT_NE(e.type, ObjectType::kOther) << e.name;
  }
  EXPECT_EQ((*store)->Stat("Fifo")->type, ObjectType::kFifo);
  EXPECT_EQ((*store)->Stat("Sock")->type, ObjectType::kSocket);
  if (IsRoot()) {
    EXPECT_EQ((*store)->Stat("Chr")->type, ObjectType::kCharDevice);
    EXPECT_EQ((*store)->Stat("Chr")->rdev, makedev(1, 3));
    EXPECT_EQ((*store)->Stat("Blk")->type, ObjectType::kBlockDevice);
    EXPECT_EQ((*store)->Stat("Blk")->rdev, makedev(7, 200));
  }
}

// A backend that cannot type one entry (as a DT_UNKNOWN listing whose fstatat failed).
class UntypedEntryStore : public testing::ForwardingStore {
 public:
  UntypedEntryStore(Store& base, std::string untyped)
      : ForwardingStore(base), untyped_(std::move(untyped)) {}
  Result<std::vector<DirEntry>> List(std::string_view dir) override {
    CADCANFS_ASSIGN_OR_RETURN(auto entries, ForwardingStore::List(dir));
    for (DirEntry& e : entries) {
      if (e.name == untyped_) e.type = ObjectType::kOther;
    }
    return entries;
  }

 private:
  std::string untyped_;
};

std::unique_ptr<Vault> OpenOn(std::unique_ptr<Store> store, const TempVault& tv) {
  auto config = Vault::ReadConfig(*store);
  EXPECT_TRUE(config.ok());
  auto key = LoadKeyForVault(KeyOptions{tv.key_file(), std::nullopt}, *config);
  EXPECT_TRUE(key.ok());
  auto vault = Vault::Open(std::move(store), std::move(key).value());
  EXPECT_TRUE(vault.ok()) << vault.status().ToString();
  return std::move(vault).value();
}

TEST(Issue12Item04Test, WalkersCountEntriesOfUnknownType) {
  TempVault tv;
  std::string untyped = tv.CreateFile("Untyped scan.stl", testing::PatternBytes(100, 1));
  tv.CreateFile("Typed scan.stl", testing::PatternBytes(100, 2));
  auto local = OpenLocalStore(tv.root());
  ASSERT_TRUE(local.ok());
  auto vault = OpenOn(std::make_unique<UntypedEntryStore>(**local, untyped), tv);

  TempDir out;
  auto stats = ExportTree(*vault, "", out.path() + "/restore");
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->files, 1u);
  EXPECT_EQ(stats->skipped, 1u);

  FsckReport report = CheckVault(*vault);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0].cipher_path, untyped);
}

TEST(Issue12Item04Test, FifosAndSocketsAreEncryptedAndRestored) {
  TempVault tv;
  TempDir work;
  std::string src = work.path() + "/src";
  mkdir(src.c_str(), 0755);
  MakeEveryType(src);
  auto imported = ImportTree(tv.vault(), src, "", true);
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_EQ(imported->skipped, 0u);
  EXPECT_EQ(imported->special_files, IsRoot() ? 4u : 2u);
  // The ciphertext holds nodes under encrypted names only.
  for (const auto& e : stdfs::directory_iterator(tv.root())) {
    std::string name = e.path().filename().string();
    EXPECT_TRUE(name.find("Fifo") == std::string::npos && name.find("Sock") == std::string::npos)
        << name;
  }
  EXPECT_TRUE(CheckVault(tv.vault()).problems.empty());

  std::string out = work.path() + "/out";
  auto exported = ExportTree(tv.vault(), "", out);
  ASSERT_TRUE(exported.ok()) << exported.status().ToString();
  EXPECT_EQ(exported->skipped, 0u);
  struct stat st;
  ASSERT_EQ(lstat((out + "/Fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  ASSERT_EQ(lstat((out + "/Sock").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  if (IsRoot()) {
    ASSERT_EQ(lstat((out + "/Chr").c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
    EXPECT_EQ(st.st_rdev, makedev(1, 3));
    ASSERT_EQ(lstat((out + "/Blk").c_str(), &st), 0);
    EXPECT_TRUE(S_ISBLK(st.st_mode));
    EXPECT_EQ(st.st_rdev, makedev(7, 200));
  }
}

// Removes CAP_MKNOD from the calling thread, as for a restore run without root. The raw
// capset syscall changes only the calling thread's capabilities (glibc does not spread
// it to the others), so the rest of the test process keeps them.
bool DropMknodCapabilityOfThisThread() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  data[0].effective &= ~(1u << CAP_MKNOD);
  data[0].permitted &= ~(1u << CAP_MKNOD);
  data[0].inheritable &= ~(1u << CAP_MKNOD);
  return syscall(SYS_capset, &header, data) == 0;
}

TEST(Issue12Item04Test, DeviceNodesThatCannotBeCreatedAreCountedAsSkipped) {
  if (!IsRoot()) GTEST_SKIP() << "creating the device node in the vault needs root";
  TempVault tv;
  TempDir work;
  std::string src = work.path() + "/src";
  mkdir(src.c_str(), 0755);
  ASSERT_EQ(mknod((src + "/Chr").c_str(), S_IFCHR | 0600, makedev(1, 3)), 0);
  testing::WriteRaw(src + "/File", Bytes{1, 2, 3});
  ASSERT_TRUE(ImportTree(tv.vault(), src, "", true).ok());

  bool dropped = false;
  Result<TransferStats> stats = Status::Error(Code::kInternal, "not run");
  std::thread restore([&] {
    dropped = DropMknodCapabilityOfThisThread();
    if (dropped) stats = ExportTree(tv.vault(), "", work.path() + "/out");
  });
  restore.join();
  ASSERT_TRUE(dropped);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->files, 1u);
  EXPECT_EQ(stats->special_files, 0u);
  EXPECT_EQ(stats->skipped, 1u);
  EXPECT_FALSE(stdfs::exists(stdfs::symlink_status(work.path() + "/out/Chr")));
}

}  // namespace
}  // namespace cadcanfs
