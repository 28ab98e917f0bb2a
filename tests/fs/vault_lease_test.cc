// The writer lease of a vault on a store without flock (VaultLock::AcquireLease): one
// holder at a time, refused takers told who holds it, renewal past the lease's own
// duration, takeover of a lease whose holder died (at once on this machine, after its
// expiry from elsewhere), and the interrupted-session mark a dead holder leaves.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "cadcanfs/fs/vault_lock.h"
#include "cadcanfs/store/local_store.h"
#include "cadcanfs/vault/names.h"
#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

std::shared_ptr<Store> StoreAt(const TempDir& dir) {
  auto store = OpenLocalStore(dir.path());
  EXPECT_TRUE(store.ok());
  return std::shared_ptr<Store>(std::move(store).value());
}

// Short timings, so that expiry and renewal happen within a test.
LeaseOptions Quick(std::string boot_id = {}) {
  return LeaseOptions{.duration = 600ms,
                      .renew_every = 150ms,
                      .takeover_check = 20ms,
                      .boot_id = std::move(boot_id)};
}

std::string ThisHostName() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return host;
}

// Takes the lease in a child process that then dies without releasing it, as a
// holder does under kill -9 or a power cut.
void LeaseThenDie(const TempDir& dir, LeaseOptions options) {
  pid_t pid = fork();
  if (pid == 0) {
    auto lock = VaultLock::AcquireLease(StoreAt(dir), {}, std::move(options));
    _exit(lock.ok() ? 0 : 1);  // no destructors: the lease stays in the store
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(VaultLease, ASecondTakerIsRefusedWithTheHoldersPid) {
  TempDir dir;
  auto store = StoreAt(dir);
  auto held = VaultLock::AcquireLease(store, {}, Quick());
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  EXPECT_FALSE(held->interrupted_session_start().has_value());
  auto again = VaultLock::AcquireLease(store, {}, Quick());
  ASSERT_EQ(again.status().code(), Code::kBusy);
  EXPECT_EQ(again.status().message(),
            "the vault is in use by pid " + std::to_string(getpid()) + ": unmount it first");
}

TEST(VaultLease, ATakerOnAnotherMachineIsToldTheHoldersHost) {
  TempDir dir;
  auto store = StoreAt(dir);
  auto held = VaultLock::AcquireLease(store, {}, Quick());
  ASSERT_TRUE(held.ok());
  auto elsewhere = VaultLock::AcquireLease(store, {}, Quick("another-machine"));
  ASSERT_EQ(elsewhere.status().code(), Code::kBusy);
  EXPECT_EQ(elsewhere.status().message(), "the vault is in use by pid " + std::to_string(getpid()) +
                                              " on " + ThisHostName() + ": unmount it first");
}

TEST(VaultLease, RenewalKeepsItHeldPastItsDuration) {
  TempDir dir;
  auto store = StoreAt(dir);
  auto held = VaultLock::AcquireLease(store, {}, Quick("machine-a"));
  ASSERT_TRUE(held.ok());
  std::this_thread::sleep_for(1200ms);  // two durations
  EXPECT_EQ(VaultLock::AcquireLease(store, {}, Quick("machine-b")).status().code(), Code::kBusy);
}

TEST(VaultLease, ACleanReleaseRemovesItAndLeavesNoMark) {
  TempDir dir;
  auto store = StoreAt(dir);
  { ASSERT_TRUE(VaultLock::AcquireLease(store, {}, Quick()).ok()); }
  EXPECT_EQ(store->Stat(kLockFileName).status().code(), Code::kNotFound);
  auto next = VaultLock::AcquireLease(store, {}, Quick("another-machine"));
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->interrupted_session_start().has_value());
}

TEST(VaultLease, PatienceOutlastsAHolderThatIsGoingAway) {
  TempDir dir;
  auto store = StoreAt(dir);
  auto taken = VaultLock::AcquireLease(store, {}, Quick());
  ASSERT_TRUE(taken.ok());
  std::optional<VaultLock> held(std::move(taken).value());
  std::thread releaser([&] {
    std::this_thread::sleep_for(300ms);
    held.reset();
  });
  auto waited = VaultLock::AcquireLease(store, 3s, Quick());
  releaser.join();
  EXPECT_TRUE(waited.ok()) << waited.status().ToString();
}

TEST(VaultLease, ADeadHolderOnThisMachineIsTakenOverAtOnceAndMarksTheSession) {
  TempDir dir;
  const time_t before = time(nullptr);
  LeaseThenDie(dir, LeaseOptions{});  // a real lease: 90 s, far from expiring
  auto store = StoreAt(dir);
  auto next = VaultLock::AcquireLease(store, {}, Quick());
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  ASSERT_TRUE(next->interrupted_session_start().has_value());
  // No later than the dead session's start, so that everything it changed is settled.
  EXPECT_LE(next->interrupted_session_start()->tv_sec, before + 1);
}

TEST(VaultLease, AnUnsettledSessionKeepsItsMarkUntilRecovered) {
  TempDir dir;
  LeaseThenDie(dir, LeaseOptions{});
  auto store = StoreAt(dir);
  struct timespec first {};
  {
    auto next = VaultLock::AcquireLease(store, {}, Quick());
    ASSERT_TRUE(next.ok() && next->interrupted_session_start().has_value());
    first = *next->interrupted_session_start();
  }  // released without MarkRecovered: the dead session is still to settle
  {
    auto next = VaultLock::AcquireLease(store, {}, Quick("another-machine"));
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    ASSERT_TRUE(next->interrupted_session_start().has_value());
    EXPECT_EQ(next->interrupted_session_start()->tv_sec, first.tv_sec);
    EXPECT_EQ(next->interrupted_session_start()->tv_nsec, first.tv_nsec);
    next->MarkRecovered();
    EXPECT_FALSE(next->interrupted_session_start().has_value());
  }
  auto clean = VaultLock::AcquireLease(store, {}, Quick());
  ASSERT_TRUE(clean.ok());
  EXPECT_FALSE(clean->interrupted_session_start().has_value());
}

TEST(VaultLease, ADeadHolderElsewhereIsTakenOverOnlyAfterItsExpiry) {
  TempDir dir;
  LeaseThenDie(dir, Quick("another-machine"));
  auto store = StoreAt(dir);
  EXPECT_EQ(VaultLock::AcquireLease(store, {}, Quick()).status().code(), Code::kBusy);
  std::this_thread::sleep_for(700ms);  // past the 600 ms lease
  auto next = VaultLock::AcquireLease(store, {}, Quick());
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_TRUE(next->interrupted_session_start().has_value());
}

TEST(VaultLease, AHolderWhoseLeaseWasTakenOverNeverRemovesTheNewOne) {
  TempDir dir;
  auto store = StoreAt(dir);
  LeaseOptions stalled = Quick("machine-a");
  stalled.renew_every = 1h;  // a holder that stopped renewing (a stalled process)
  auto taken = VaultLock::AcquireLease(store, {}, stalled);
  ASSERT_TRUE(taken.ok());
  std::optional<VaultLock> first(std::move(taken).value());
  std::this_thread::sleep_for(700ms);  // its lease expires
  auto second = VaultLock::AcquireLease(store, {}, Quick("machine-b"));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  first.reset();  // the first holder lets go
  EXPECT_EQ(VaultLock::AcquireLease(store, {}, Quick("machine-c")).status().code(), Code::kBusy);
}

TEST(VaultLease, SomethingElseUnderTheLockNameIsNotOverwritten) {
  TempDir dir;
  auto store = StoreAt(dir);
  const std::string pid_line = "12345\n";
  ASSERT_TRUE(store->WriteAtomic(kLockFileName, AsBytes(pid_line)).ok());
  auto lock = VaultLock::AcquireLease(store, {}, Quick());
  EXPECT_EQ(lock.status().code(), Code::kBusy);
  auto kept = store->ReadSmall(kLockFileName, 64);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(std::string(kept->begin(), kept->end()), pid_line);
}

}  // namespace
}  // namespace cadcanfs
