// Issue 12, item 17: every call gives the same result on cadcanfs as on ext4.
//
// Each scenario runs twice: in a fresh directory of an ext4 filesystem (the reference)
// and in a fresh directory of a cadcanfs mount. It records, as text, what every call
// returned (the errno name when it failed) and the resulting modes, owners and times;
// the two transcripts must be equal. Rules about non-owners run in child processes
// that switched to unprivileged users, which the daemon lets in through allow_other.
// Every scenario runs in both cache modes.
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "fs/fuse/mount_fixture.h"

namespace cadcanfs {
namespace {

using testing::Mount;

enum class CacheMode { kWriteThrough, kWriteback };

struct Identity {
  uid_t uid;
  gid_t gid;
  std::vector<gid_t> groups;  // supplementary groups
};

constexpr gid_t kLab = 4545;  // a group only Carol belongs to
const Identity kRoot{0, 0, {}};
const Identity kAlice{4242, 4242, {}};
const Identity kBob{4343, 4343, {}};
const Identity kCarol{4444, 4444, {kLab}};

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "errno " + std::to_string(err);
}

// What a scenario observed, one line per call or attribute.
class Transcript {
 public:
  // A call's return value, or the name of its errno when it failed.
  void Call(std::string_view what, long rc) {
    const int err = errno;
    text_ += std::string(what) + ": " + (rc < 0 ? ErrnoName(err) : std::to_string(rc)) + "\n";
  }
  void Note(std::string_view what, std::string_view value) {
    text_ += std::string(what) + ": " + std::string(value) + "\n";
  }
  // Type, mode, owner and group of an entry (not following a symlink).
  void Attr(int dir, const char* name) {
    struct stat st;
    if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return Call(std::string("stat ") + name, -1);
    }
    char line[128];
    std::snprintf(line, sizeof(line), "%s: mode %07o uid %u gid %u\n", name,
                  static_cast<unsigned>(st.st_mode), st.st_uid, st.st_gid);
    text_ += line;
  }
  void Append(std::string_view text) { text_ += text; }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

using Steps = std::function<void(int dir, Transcript& log)>;

// Runs `steps` in a child process as `who` (umask 0, so modes are the ones asked for)
// and appends what it recorded to `log`.
void As(const Identity& who, int dir, Transcript& log, const Steps& steps) {
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    umask(0);
    Transcript child;
    if (setgroups(who.groups.size(), who.groups.data()) != 0 || setgid(who.gid) != 0 ||
        setuid(who.uid) != 0) {
      child.Call("switch user", -1);
    } else {
      steps(dir, child);
    }
    const std::string& text = child.text();
    size_t done = 0;
    while (done < text.size()) {
      ssize_t n = write(fds[1], text.data() + done, text.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    _exit(0);
  }
  close(fds[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) text += "child failed\n";
  log.Append(text);
}

// ---- small calls for the scenarios; each returns 0 or -1 with errno set ----

long Create(int dir, const char* name, mode_t mode) {
  int fd = openat(dir, name, O_CREAT | O_EXCL | O_WRONLY, mode);
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

long WriteSome(int dir, const char* name, int flags = 0) {
  int fd = openat(dir, name, O_WRONLY | flags);
  if (fd < 0) return -1;
  long rc = write(fd, "data", 4) == 4 ? 0 : -1;
  int err = errno;
  close(fd);
  errno = err;
  return rc;
}

long ReadOne(int dir, const char* name, int flags = 0) {
  int fd = openat(dir, name, O_RDONLY | flags);
  if (fd < 0) return -1;
  char c;
  long rc = read(fd, &c, 1);
  int err = errno;
  close(fd);
  errno = err;
  return rc;
}

long OpenClose(int dir, const char* name, int flags) {
  int fd = openat(dir, name, flags, 0644);
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

long Truncate(int dir, const char* name, off_t size) {
  int fd = openat(dir, name, O_WRONLY);
  if (fd < 0) return -1;
  long rc = ftruncate(fd, size);
  int err = errno;
  close(fd);
  errno = err;
  return rc;
}

// truncate(2) by name, relative to `dir`.
long TruncatePath(int dir, const char* name, off_t size) {
  std::string path = "/proc/self/fd/" + std::to_string(dir) + "/" + name;
  return truncate(path.c_str(), size);
}

long Chown(int dir, const char* name, uid_t uid, gid_t gid) {
  return fchownat(dir, name, uid, gid, AT_SYMLINK_NOFOLLOW);
}

long Chmod(int dir, const char* name, mode_t mode) { return fchmodat(dir, name, mode, 0); }

// Creates `name` as `mode`, owned by uid:gid (run as root).
long MakeOwned(int dir, const char* name, mode_t mode, uid_t uid, gid_t gid) {
  if (Create(dir, name, 0600) != 0) return -1;
  if (Chown(dir, name, uid, gid) != 0) return -1;
  return Chmod(dir, name, mode);
}

long SetTimes(int dir, const char* name, struct timespec atime, struct timespec mtime,
              int flags = 0) {
  const struct timespec times[2] = {atime, mtime};
  return utimensat(dir, name, times, flags);
}

long CopyFile(const char* from, int dir, const char* name, mode_t mode) {
  int in = open(from, O_RDONLY);
  if (in < 0) return -1;
  int out = openat(dir, name, O_CREAT | O_EXCL | O_WRONLY, mode);
  if (out < 0) {
    close(in);
    return -1;
  }
  char buf[65536];
  ssize_t n;
  long rc = 0;
  while ((n = read(in, buf, sizeof(buf))) > 0) {
    if (write(out, buf, static_cast<size_t>(n)) != n) rc = -1;
  }
  close(in);
  if (close(out) != 0) rc = -1;
  return rc;
}

// Runs `name` (an executable in `dir`) and returns its exit status.
long Exec(int dir, const char* name) {
  pid_t pid = fork();
  if (pid == 0) {
    char* const argv[] = {const_cast<char*>(name), nullptr};
    char* const envp[] = {nullptr};
    syscall(SYS_execveat, dir, name, argv, envp, 0);
    _exit(127);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

long ListDir(int dir, const char* name) {
  int fd = openat(dir, name, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return -1;
  DIR* d = fdopendir(fd);
  if (d == nullptr) {
    close(fd);
    return -1;
  }
  long count = 0;
  while (readdir(d) != nullptr) ++count;
  closedir(d);
  return count;
}

// ---- scenarios ----

// Sticky directory (mode 1777): only the owner of an entry, the owner of the directory
// and root may remove or replace it.
void StickyDirectory(int dir, Transcript& log) {
  As(kRoot, dir, log, [](int d, Transcript& t) {
    t.Call("mkdir t", mkdirat(d, "t", 0755));
    t.Call("chmod t 1777", Chmod(d, "t", 01777));
  });
  As(kAlice, dir, log, [](int d, Transcript& t) {
    t.Call("alice create t/a", Create(d, "t/a", 0644));
    t.Call("alice create t/a2", Create(d, "t/a2", 0666));
    t.Call("alice mkdir t/ad", mkdirat(d, "t/ad", 0777));
  });
  As(kBob, dir, log, [](int d, Transcript& t) {
    t.Call("bob create t/b", Create(d, "t/b", 0644));
    t.Call("bob unlink t/a", unlinkat(d, "t/a", 0));
    t.Call("bob unlink t/a2 (writable)", unlinkat(d, "t/a2", 0));
    t.Call("bob rename t/a", renameat(d, "t/a", d, "t/x"));
    t.Call("bob rename t/b onto t/a", renameat(d, "t/b", d, "t/a"));
    t.Call("bob exchange t/b t/a", renameat2(d, "t/b", d, "t/a", RENAME_EXCHANGE));
    t.Call("bob rmdir t/ad", unlinkat(d, "t/ad", AT_REMOVEDIR));
    t.Call("bob rename t/ad", renameat(d, "t/ad", d, "t/x"));
    t.Call("bob link t/a", linkat(d, "t/a", d, "t/bl", 0));
    t.Call("bob rename own t/b", renameat(d, "t/b", d, "t/b2"));
  });
  As(kAlice, dir, log, [](int d, Transcript& t) {
    t.Call("alice rename own t/a2 onto bob's t/b2", renameat(d, "t/a2", d, "t/b2"));
    t.Call("alice unlink own t/a", unlinkat(d, "t/a", 0));
    t.Call("alice create t/c", Create(d, "t/c", 0600));
  });
  As(kRoot, dir, log, [](int d, Transcript& t) {
    t.Call("chown t to carol", Chown(d, "t", kCarol.uid, kCarol.gid));
  });
  As(kCarol, dir, log, [](int d, Transcript& t) {
    t.Call("carol (dir owner) unlink t/c", unlinkat(d, "t/c", 0));
    t.Call("carol (dir owner) rmdir t/ad", unlinkat(d, "t/ad", AT_REMOVEDIR));
  });
  As(kRoot, dir, log, [](int d, Transcript& t) {
    t.Call("root unlink t/b2", unlinkat(d, "t/b2", 0));
    t.Attr(d, "t");
  });
}

// Writes and truncates by anyone without CAP_FSETID clear setuid, and setgid when the
// group may execute; truncates also clear setgid for a caller outside the file's group.
// Root's writes keep both. (A write, rather than a truncate, of a setgid file without
// group-execute by a caller outside its group clears setgid on ext4 but not here: the
// FUSE kernel recomputes the bits from the mode alone and sends the daemon nothing.)
void SetuidClearedOnWrite(int dir, Transcript& log) {
  As(kRoot, dir, log, [](int d, Transcript& t) {
    for (const char* name : {"a", "d", "e", "f", "h"}) {
      t.Call(std::string("make ") + name, MakeOwned(d, name, 06777, 0, 0));
    }
    t.Call("make b", MakeOwned(d, "b", 02666, 0, 0));
    t.Call("make c", MakeOwned(d, "c", 06777, kAlice.uid, kAlice.gid));
    t.Call("make g", MakeOwned(d, "g", 06777, kAlice.uid, kAlice.gid));
    t.Call("make i", MakeOwned(d, "i", 02666, 0, kLab));
    t.Call("make j", MakeOwned(d, "j", 02666, 0, 0));
  });
  As(kCarol, dir, log,
     [](int d, Transcript& t) { t.Call("carol (in the group) write i", WriteSome(d, "i")); });
  As(kBob, dir, log, [](int d, Transcript& t) {
    t.Call("bob write a", WriteSome(d, "a"));
    t.Call("bob ftruncate b", Truncate(d, "b", 1));
    t.Call("bob open j O_TRUNC", OpenClose(d, "j", O_WRONLY | O_TRUNC));
    t.Call("bob ftruncate e", Truncate(d, "e", 2));
    t.Call("bob open f O_TRUNC", OpenClose(d, "f", O_WRONLY | O_TRUNC));
    t.Call("bob truncate h", TruncatePath(d, "h", 1));
  });
  As(kAlice, dir, log, [](int d, Transcript& t) {
    t.Call("alice (owner) write c", WriteSome(d, "c"));
    t.Call("alice (owner) append g", WriteSome(d, "g", O_APPEND));
  });
  As(kRoot, dir, log, [](int d, Transcript& t) {
    t.Call("root write d", WriteSome(d, "d"));
    for (const char* name : {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}) t.Attr(d, name);
  });
}

// chown clears setuid (and setgid when the group may execute) of non-directories, even
// when root does it; directories keep both.
void SetuidClearedOnChown(int dir, Transcript& log) {
  As(kRoot, dir, log, [](int d, Transcript& t) {
    t.Call("make a", MakeOwned(d, "a", 06755, kAlice.uid, kAlice.gid));
    t.Call("make b", MakeOwned(d, "b", 02745, kAlice.uid, kAlice.gid));
    t.Call("make c", MakeOwned(d, "c", 04755, kAlice.uid, kAlice.gid));
    t.Call("make e", MakeOwned(d, "e", 06755, kAlice.uid, kAlice.gid));
    t.Call("make f", MakeOwned(d, "f", 02755, kCarol.uid, kCarol.gid));
    t.Call("mkdir dir", mkdirat(d, "dir", 0755));
    t.Call("chmod dir", Chmod(d, "dir", 06755));
    t.Call("root chown a", Chown(d, "a", kBob.uid, kBob.gid));
    t.Call("root chown b", Chown(d, "b", kBob.uid, kBob.gid));
    t.Call("root chown dir", Chown(d, "dir", kBob.uid, kBob.gid));
    t.Call("root chown e -1 -1", Chown(d, "e", static_cast<uid_t>(-1), static_cast<gid_t>(-1)));
  });
  As(kAlice, dir, log, [](int d, Transcript& t) {
    t.Call("alice chgrp c to own group", Chown(d, "c", static_cast<uid_t>(-1), kAlice.gid));
  });
  As(kCarol, dir, log, [](int d, Transcript& t) {
    t.Call("carol chgrp f to lab", Chown(d, "f", static_cast<uid_t>(-1), kLab));
  });
  As(kRoot, dir, log, [](int d, Transcript& t) {
    for (const char* name : {"a", "b", "c", "dir", "e", "f"}) t.Attr(d, name);
  });
}

// New entries in a setgid directory get its group; new directories also get setgid.
// Creation keeps setuid and setgid, except setgid on a file whose group the creator is
// not in.
void SetgidDirectoryAndCreateModes(int dir, Transcript& log) {
  As(kRoot, dir, log, [](int d, Transcript& t) {
    t.Call("mkdir g", mkdirat(d, "g", 0777));
    t.Call("chown g", Chown(d, "g", 0, kLab));
    t.Call("chmod g", Chmod(d, "g", 02777));
    t.Call("mkdir n", mkdirat(d, "n", 0777));
    t.Call("root create g/r 06755", Create(d, "g/r", 06755));
    t.Call("root create n/r 06755", Create(d, "n/r", 06755));
    t.Call("root mkdir g/rd", mkdirat(d, "g/rd", 0755));
  });
  As(kAlice, dir, log, [](int d, Transcript& t) {
    t.Call("alice create g/f", Create(d, "g/f", 0666));
    t.Call("alice create g/s 02755", Create(d, "g/s", 02755));
    t.Call("alice create g/u 04755", Create(d, "g/u", 04755));
    t.Call("alice mkdir g/sub", mkdirat(d, "g/sub", 0755));
    t.Call("alice mkdir g/sub/deeper", mkdirat(d, "g/sub/deeper", 0700));
    t.Call("alice symlink g/l", symlinkat("target", d, "g/l"));
    t.Call("alice mkfifo g/p", mkfifoat(d, "g/p", 0644));
    t.Call("alice create n/u 06755", Create(d, "n/u", 06755));
    t.Call("alice mkdir n/sub", mkdirat(d, "n/sub", 0755));
  });
  As(kCarol, dir, log, [](int d, Transcript& t) {
    t.Call("carol (in lab) create g/c 02755", Create(d, "g/c", 02755));
  });
  As(kRoot, dir, log, [](int d, Transcript& t) {
    for (const char* name : {"g", "g/r", "n/r", "g/rd", "g/f", "g/s", "g/u", "g/sub",
                             "g/sub/deeper", "g/l", "g/p", "n/u", "n/sub", "g/c"}) {
      t.Attr(d, name);
    }
  });
}

// chmod and chown: only the owner may chmod, only root may give a file away, and an
// owner may only pick a group they are in; chmod g+s by an owner outside the file's
// group drops the setgid bit silently.
void OwnershipRules(int dir, Transcript& log) {
  As(kRoot, dir, log, [](int d, Transcript& t) {
    t.Call("make f", MakeOwned(d, "f", 0644, kAlice.uid, kAlice.gid));
    t.Call("make g", MakeOwned(d, "g", 0755, kAlice.uid, kLab));
  });
  As(kBob, dir, log, [](int d, Transcript& t) {
    t.Call("bob chmod f", Chmod(d, "f", 0777));
    t.Call("bob chown f to bob", Chown(d, "f", kBob.uid, static_cast<gid_t>(-1)));
  });
  As(kAlice, dir, log, [](int d, Transcript& t) {
    t.Call("alice chown f to bob", Chown(d, "f", kBob.uid, static_cast<gid_t>(-1)));
    t.Call("alice chgrp f to lab", Chown(d, "f", static_cast<uid_t>(-1), kLab));
    t.Call("alice chown f to herself", Chown(d, "f", kAlice.uid, kAlice.gid));
    t.Call("alice chmod f 02640", Chmod(d, "f", 02640));
    t.Call("alice chmod g 02755", Chmod(d, "g", 02755));
    t.Call("alice chmod g 01755", Chmod(d, "g", 01755));
  });
  As(kRoot, dir, log, [](int d, Transcript& t) {
    t.Call("root chown f to carol", Chown(d, "f", kCarol.uid, kCarol.gid));
  });
  As(kCarol, dir, log, [](int d, Transcript& t) {
    t.Call("carol chgrp f to lab", Chown(d, "f", static_cast<uid_t>(-1), kLab));
  });
  As(kRoot, dir, log, [](int d, Transcript& t) {
    t.Attr(d, "f");
    t.Attr(d, "g");
  });
}

// utimensat: "now" needs write access or ownership; explicit times need ownership.
void TimesPermissions(int dir, Transcript& log) {
  As(kRoot, dir, log, [](int d, Transcript& t) {
    t.Call("make w", MakeOwned(d, "w", 0666, kAlice.uid, kAlice.gid));
    t.Call("make r", MakeOwned(d, "r", 0644, kAlice.uid, kAlice.gid));
  });
  As(kBob, dir, log, [](int d, Transcript& t) {
    const timespec now{0, UTIME_NOW};
    const timespec omit{0, UTIME_OMIT};
    const timespec fixed{1000000000, 5};
    t.Call("bob touch w", utimensat(d, "w", nullptr, 0));
    t.Call("bob now/now w", SetTimes(d, "w", now, now));
    t.Call("bob now/omit w", SetTimes(d, "w", now, omit));
    t.Call("bob omit/omit w", SetTimes(d, "w", omit, omit));
    t.Call("bob fixed w", SetTimes(d, "w", fixed, fixed));
    t.Call("bob fixed/omit w", SetTimes(d, "w", fixed, omit));
    t.Call("bob now/fixed w", SetTimes(d, "w", now, fixed));
    t.Call("bob touch r", utimensat(d, "r", nullptr, 0));
    t.Call("bob fixed r", SetTimes(d, "r", fixed, fixed));
  });
  As(kAlice, dir, log, [](int d, Transcript& t) {
    t.Call("alice fixed r", SetTimes(d, "r", timespec{1000000000, 5}, timespec{1100000000, 7}));
    struct stat st;
    t.Call("stat r", fstatat(d, "r", &st, 0));
    t.Note("r times", std::to_string(st.st_atim.tv_sec) + "." + std::to_string(st.st_atim.tv_nsec) +
                          " " + std::to_string(st.st_mtim.tv_sec) + "." +
                          std::to_string(st.st_mtim.tv_nsec));
  });
}

// Errors of namespace calls, as root and as a user without write access.
void NamespaceErrors(int dir, Transcript& log) {
  As(kRoot, dir, log, [](int d, Transcript& t) {
    t.Call("mkdir d", mkdirat(d, "d", 0755));
    t.Call("mkdir d/sub", mkdirat(d, "d/sub", 0755));
    t.Call("mkdir empty", mkdirat(d, "empty", 0755));
    t.Call("mkdir full", mkdirat(d, "full", 0755));
    t.Call("create full/x", Create(d, "full/x", 0644));
    t.Call("create file", Create(d, "file", 0644));
    t.Call("symlink dangling", symlinkat("nowhere", d, "dangling"));
    t.Call("rmdir full", unlinkat(d, "full", AT_REMOVEDIR));
    t.Call("rename d into d/sub", renameat(d, "d", d, "d/sub/in"));
    t.Call("rename d onto d/sub", renameat(d, "d", d, "d/sub"));
    t.Call("rename empty onto full", renameat(d, "empty", d, "full"));
    t.Call("rename file onto empty", renameat(d, "file", d, "empty"));
    t.Call("rename empty onto file", renameat(d, "empty", d, "file"));
    t.Call("rename missing", renameat(d, "missing", d, "y"));
    t.Call("rename noreplace", renameat2(d, "d", d, "empty", RENAME_NOREPLACE));
    t.Call("exchange with missing", renameat2(d, "file", d, "missing", RENAME_EXCHANGE));
    t.Call("rename file onto itself", renameat(d, "file", d, "file"));
    t.Call("rmdir file", unlinkat(d, "file", AT_REMOVEDIR));
    t.Call("rmdir .", unlinkat(d, "d/.", AT_REMOVEDIR));
    t.Call("unlink empty", unlinkat(d, "empty", 0));
    t.Call("unlink missing", unlinkat(d, "missing", 0));
    t.Call("link empty", linkat(d, "empty", d, "e2", 0));
    t.Call("link onto file", linkat(d, "full/x", d, "file", 0));
    t.Call("mkdir file", mkdirat(d, "file", 0755));
    t.Call("mkfifo file", mkfifoat(d, "file", 0644));
    t.Call("symlink onto file", symlinkat("x", d, "file"));
    t.Call("open O_EXCL file", OpenClose(d, "file", O_CREAT | O_EXCL | O_WRONLY));
    t.Call("open O_EXCL dangling", OpenClose(d, "dangling", O_CREAT | O_EXCL | O_WRONLY));
    t.Call("open O_NOFOLLOW dangling", OpenClose(d, "dangling", O_RDONLY | O_NOFOLLOW));
    t.Call("open dir O_WRONLY", OpenClose(d, "empty", O_WRONLY));
    t.Call("open file O_DIRECTORY", OpenClose(d, "file", O_RDONLY | O_DIRECTORY));
    t.Call("open file/x", OpenClose(d, "file/x", O_RDONLY));
    t.Call("open missing", OpenClose(d, "missing", O_RDONLY));
    char buf[64];
    t.Call("readlink file", readlinkat(d, "file", buf, sizeof(buf)));
    t.Call("truncate dir", TruncatePath(d, "empty", 0));
    t.Call("truncate negative", TruncatePath(d, "file", -1));
    const std::string longest(255, 'n');
    const std::string too_long(256, 'n');
    t.Call("create 255-byte name", Create(d, longest.c_str(), 0644));
    t.Call("create 256-byte name", Create(d, too_long.c_str(), 0644));
    t.Call("mkdir 256-byte name", mkdirat(d, too_long.c_str(), 0755));
  });
  As(kAlice, dir, log, [](int d, Transcript& t) {
    t.Call("alice create in root's dir", Create(d, "d/x", 0644));
    t.Call("alice mkdir in root's dir", mkdirat(d, "d/y", 0755));
    t.Call("alice unlink root's file", unlinkat(d, "file", 0));
    t.Call("alice rename root's file", renameat(d, "file", d, "d/file"));
    t.Call("alice open root's file O_WRONLY", OpenClose(d, "file", O_WRONLY));
    t.Call("alice truncate root's 0644 file", TruncatePath(d, "file", 0));
    t.Call("alice open O_EXCL existing", OpenClose(d, "file", O_CREAT | O_EXCL | O_WRONLY));
  });
}

// SEEK_DATA and SEEK_HOLE on files without holes: all data, one hole at the end of
// file; ENXIO at and past it.
void SeekDataHole(int dir, Transcript& log) {
  As(kRoot, dir, log, [](int d, Transcript& t) {
    int fd = openat(d, "data", O_CREAT | O_RDWR, 0644);
    std::vector<char> bytes(100000, 'x');
    t.Call("write", write(fd, bytes.data(), bytes.size()));
    int empty = openat(d, "empty", O_CREAT | O_RDWR, 0644);
    const struct {
      off_t offset;
      int whence;
      const char* name;
    } seeks[] = {{0, SEEK_DATA, "data 0"},         {0, SEEK_HOLE, "hole 0"},
                 {70000, SEEK_DATA, "data 70000"}, {70000, SEEK_HOLE, "hole 70000"},
                 {99999, SEEK_DATA, "data 99999"}, {99999, SEEK_HOLE, "hole 99999"},
                 {100000, SEEK_DATA, "data eof"},  {100000, SEEK_HOLE, "hole eof"},
                 {200000, SEEK_DATA, "data past"}, {200000, SEEK_HOLE, "hole past"},
                 {-1, SEEK_DATA, "data negative"}, {-1, SEEK_HOLE, "hole negative"}};
    for (const auto& s : seeks) {
      t.Call(std::string("lseek ") + s.name, lseek(fd, s.offset, s.whence));
      t.Call(std::string("lseek empty ") + s.name, lseek(empty, s.offset, s.whence));
    }
    t.Call("lseek position kept after ENXIO", lseek(fd, 0, SEEK_CUR));
    close(fd);
    close(empty);
  });
}

// Waits until the coarse clock that stamps atime has passed `t`, so that an access
// that updates atime makes it newer than `t` (and never equal within one clock tick).
void WaitPast(const struct timespec& t) {
  struct timespec now;
  do {
    clock_gettime(CLOCK_REALTIME_COARSE, &now);
  } while (now.tv_sec < t.tv_sec || (now.tv_sec == t.tv_sec && now.tv_nsec <= t.tv_nsec));
}

// relatime: a read, an exec or a listing updates atime only when atime is not newer than
// mtime or ctime (or is more than a day old); a write leaves it alone.
void AccessTime(int dir, Transcript& log) {
  As(kRoot, dir, log, [](int d, Transcript& t) {
    const std::vector<char> content(200000, 's');
    int fd = openat(d, "scan", O_CREAT | O_WRONLY, 0644);
    t.Call("write scan", write(fd, content.data(), content.size()));
    close(fd);
    t.Call("copy prog", CopyFile("/bin/true", d, "prog", 0755));
    t.Call("mkdir dir", mkdirat(d, "dir", 0755));
    t.Call("create dir/x", Create(d, "dir/x", 0644));
    const time_t now = time(nullptr);
    const time_t hour = 3600;
    auto set = [&](const char* name, time_t atime, time_t mtime) {
      t.Call(std::string("set times ") + name,
             SetTimes(d, name, timespec{atime, 0}, timespec{mtime, 0}));
    };
    // Runs `call` once the clock passed the entry's ctime and says what became of atime.
    auto access = [&](const std::string& what, const char* name,
                      const std::function<long()>& call) {
      struct stat before, after;
      if (fstatat(d, name, &before, 0) != 0) return t.Call(what, -1);
      WaitPast(before.st_ctim);
      t.Call(what, call());
      if (fstatat(d, name, &after, 0) != 0) return t.Call(what, -1);
      const bool same = after.st_atim.tv_sec == before.st_atim.tv_sec &&
                        after.st_atim.tv_nsec == before.st_atim.tv_nsec;
      const bool newer = after.st_atim.tv_sec > before.st_ctim.tv_sec ||
                         (after.st_atim.tv_sec == before.st_ctim.tv_sec &&
                          after.st_atim.tv_nsec > before.st_ctim.tv_nsec);
      t.Note(what + ": atime", same ? "unchanged" : newer ? "updated" : "changed");
    };
    auto read = [&] { return ReadOne(d, "scan"); };

    set("scan", now - 2 * hour, now - hour);
    access("read, atime older than mtime", "scan", read);
    access("read again", "scan", read);
    set("scan", now + hour, now - hour);
    access("read, atime newer than mtime and ctime", "scan", read);
    set("scan", now - 2 * hour, now - hour);
    access("read, atime older than mtime", "scan", read);
    access("write", "scan", [&] { return WriteSome(d, "scan"); });
    access("read after write", "scan", read);

    set("prog", now - 2 * hour, now - hour);
    access("exec, atime older than mtime", "prog", [&] { return Exec(d, "prog"); });
    access("exec again", "prog", [&] { return Exec(d, "prog"); });

    set("dir", now - 2 * hour, now - hour);
    access("list, atime older than mtime", "dir", [&] { return ListDir(d, "dir"); });
    access("list again", "dir", [&] { return ListDir(d, "dir"); });
  });
}

struct Scenario {
  const char* name;
  void (*run)(int dir, Transcript& log);
};

const Scenario kScenarios[] = {
    {"StickyDirectory", StickyDirectory},
    {"SetuidClearedOnWrite", SetuidClearedOnWrite},
    {"SetuidClearedOnChown", SetuidClearedOnChown},
    {"SetgidDirectoryAndCreateModes", SetgidDirectoryAndCreateModes},
    {"OwnershipRules", OwnershipRules},
    {"TimesPermissions", TimesPermissions},
    {"NamespaceErrors", NamespaceErrors},
    {"SeekDataHole", SeekDataHole},
    {"AccessTime", AccessTime},
};

// The reference: a directory on ext4 mounted relatime. /tmp when it is one, else a
// small loop-mounted ext4 image.
class Ext4Reference {
 public:
  Ext4Reference() {
    char tmpl[] = "/tmp/cadcanfs-ext4-XXXXXX";
    path_ = mkdtemp(tmpl);
    chmod(path_.c_str(), 0755);
    if (IsRelatimeExt4(path_)) return;
    image_ = path_ + ".img";
    const std::string make = "truncate -s 64M " + image_ + " && mkfs.ext4 -q -F " + image_ +
                             " && mount -o loop,relatime " + image_ + " " + path_;
    loop_mounted_ = std::system(make.c_str()) == 0;
    chmod(path_.c_str(), 0755);
  }
  ~Ext4Reference() {
    if (loop_mounted_) umount2(path_.c_str(), MNT_DETACH);
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    if (!image_.empty()) std::filesystem::remove(image_, ec);
  }
  bool usable() const { return IsRelatimeExt4(path_); }
  const std::string& path() const { return path_; }

 private:
  static bool IsRelatimeExt4(const std::string& path) {
    struct statfs fs;
    struct statvfs vfs;
    return statfs(path.c_str(), &fs) == 0 && fs.f_type == EXT4_SUPER_MAGIC &&
           statvfs(path.c_str(), &vfs) == 0 && (vfs.f_flag & ST_RELATIME) != 0 &&
           (vfs.f_flag & ST_NOATIME) == 0;
  }

  std::string path_;
  std::string image_;
  bool loop_mounted_ = false;
};

using Param = std::tuple<Scenario, CacheMode>;

class Issue12ConformanceTest : public ::testing::TestWithParam<Param> {
 protected:
  Issue12ConformanceTest() : mount_(32768, Extra()) {}

  static void SetUpTestSuite() { reference_ = new Ext4Reference(); }
  static void TearDownTestSuite() {
    delete reference_;
    reference_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(mount_.mounted()) << mount_.Log();
    ASSERT_TRUE(reference_->usable()) << "no relatime ext4 directory for the reference";
    // Unprivileged users reach the mount through the scenario's directory fd; the
    // root itself stays reachable for them too.
    ASSERT_EQ(chmod(mount_.mountpoint().c_str(), 0755), 0);
  }

  static std::vector<std::string> Extra() {
    std::vector<std::string> extra = {"-o", "allow_other"};
    if (std::get<CacheMode>(GetParam()) == CacheMode::kWriteback) {
      extra.push_back("--writeback-cache");
    }
    return extra;
  }

  // Runs the scenario in a fresh directory `dir` and returns its transcript.
  static std::string RunIn(const std::string& dir) {
    if (mkdir(dir.c_str(), 0755) != 0 || chmod(dir.c_str(), 0755) != 0) {
      return "cannot make the scenario directory: " + ErrnoName(errno);
    }
    int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return "cannot open the scenario directory: " + ErrnoName(errno);
    Transcript log;
    std::get<Scenario>(GetParam()).run(fd, log);
    close(fd);
    return log.text();
  }

  std::string Name() const {
    const char* mode =
        std::get<CacheMode>(GetParam()) == CacheMode::kWriteback ? "writeback" : "writethrough";
    return std::string(std::get<Scenario>(GetParam()).name) + "-" + mode;
  }

  static Ext4Reference* reference_;
  Mount mount_;
};

Ext4Reference* Issue12ConformanceTest::reference_ = nullptr;

TEST_P(Issue12ConformanceTest, MatchesExt4) {
  const std::string expected = RunIn(reference_->path() + "/" + Name());
  const std::string actual = RunIn(mount_.path(Name()));
  EXPECT_EQ(actual, expected) << "left: cadcanfs, right: ext4";
}

std::string ParamName(const ::testing::TestParamInfo<Param>& info) {
  return std::string(std::get<Scenario>(info.param).name) +
         (std::get<CacheMode>(info.param) == CacheMode::kWriteback ? "Writeback" : "WriteThrough");
}

INSTANTIATE_TEST_SUITE_P(Scenarios, Issue12ConformanceTest,
                         ::testing::Combine(::testing::ValuesIn(kScenarios),
                                            ::testing::Values(CacheMode::kWriteThrough,
                                                              CacheMode::kWriteback)),
                         ParamName);

// The atime a read set is the store's, not only the kernel's: it survives a remount.
class Issue12AccessTimeTest : public ::testing::TestWithParam<CacheMode> {
 protected:
  Issue12AccessTimeTest()
      : mount_(32768, GetParam() == CacheMode::kWriteback
                          ? std::vector<std::string>{"--writeback-cache"}
                          : std::vector<std::string>{}) {}
  void SetUp() override { ASSERT_TRUE(mount_.mounted()) << mount_.Log(); }
  Mount mount_;
};

TEST_P(Issue12AccessTimeTest, ReadUpdatesAtimeDurably) {
  const std::string path = mount_.path("scan");
  int fd = open(path.c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "0123456789", 10), 10);
  close(fd);
  const time_t now = time(nullptr);
  const struct timespec times[2] = {{now - 7200, 0}, {now - 3600, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  WaitPast(st.st_ctim);
  fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  char buf[4];
  ASSERT_EQ(read(fd, buf, sizeof(buf)), 4);
  close(fd);
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_GE(st.st_atim.tv_sec, now - 1) << "the read did not update atime";

  mount_.Remount();
  ASSERT_TRUE(mount_.mounted());
  struct stat again;
  ASSERT_EQ(stat(path.c_str(), &again), 0);
  EXPECT_EQ(again.st_atim.tv_sec, st.st_atim.tv_sec);
  EXPECT_EQ(again.st_atim.tv_nsec, st.st_atim.tv_nsec);
}

INSTANTIATE_TEST_SUITE_P(CacheModes, Issue12AccessTimeTest,
                         ::testing::Values(CacheMode::kWriteThrough, CacheMode::kWriteback));

}  // namespace
}  // namespace cadcanfs
