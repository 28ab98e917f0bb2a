// VaultLock::AcquireLease: the writer lock of a vault on a store without flock, as a
// lease object in the store (docs/vault-format.md §6, "The writer lock").
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/common/log.h"
#include "cadcanfs/crypto/random.h"
#include "cadcanfs/fs/vault_lock.h"
#include "cadcanfs/vault/names.h"

namespace cadcanfs {

namespace {

constexpr int kLeaseVersion = 1;
constexpr size_t kMaxLeaseSize = 4096;
constexpr size_t kHolderIdBytes = 16;
constexpr std::chrono::milliseconds kBusyRetry{200};

using WallClock = std::chrono::system_clock;

struct Lease {
  std::string holder;  // random per session: only its taker writes it
  std::string host;
  std::string boot_id;
  int64_t pid = 0;
  struct timespec started {};  // the session's start, by its holder's wall clock
  int64_t expires_ms = 0;      // Unix time in ms; 0: released uncleanly, free to take
};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(WallClock::now().time_since_epoch())
      .count();
}

struct timespec NowTimespec() {
  struct timespec now {};
  clock_gettime(CLOCK_REALTIME, &now);
  return now;
}

std::string ThisHost() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) return "localhost";
  return host;
}

std::string ThisBootId() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id.empty() ? ThisHost() : id;
}

Bytes EncodeLease(const Lease& lease) {
  const nlohmann::json doc = {{"v", kLeaseVersion},
                              {"holder", lease.holder},
                              {"host", lease.host},
                              {"boot_id", lease.boot_id},
                              {"pid", lease.pid},
                              {"started_s", static_cast<int64_t>(lease.started.tv_sec)},
                              {"started_ns", static_cast<int64_t>(lease.started.tv_nsec)},
                              {"expires_ms", lease.expires_ms}};
  const std::string text = doc.dump() + "\n";
  return Bytes(text.begin(), text.end());
}

// nullopt for anything that is not a lease of a version we know.
std::optional<Lease> DecodeLease(ByteSpan bytes) {
  const auto doc = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (!doc.is_object() || doc.value("v", 0) != kLeaseVersion) return std::nullopt;
  try {
    Lease lease;
    lease.holder = doc.at("holder").get<std::string>();
    lease.host = doc.at("host").get<std::string>();
    lease.boot_id = doc.at("boot_id").get<std::string>();
    lease.pid = doc.at("pid").get<int64_t>();
    lease.started.tv_sec = static_cast<time_t>(doc.at("started_s").get<int64_t>());
    lease.started.tv_nsec = static_cast<long>(doc.at("started_ns").get<int64_t>());
    lease.expires_ms = doc.at("expires_ms").get<int64_t>();
    return lease;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

bool ProcessIsAlive(int64_t pid) {
  if (pid <= 0 || pid > 0x7fffffff) return false;
  return kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

// What the store holds under the lock name.
struct Found {
  bool absent = false;
  bool empty = false;  // a local holder's clean release: free, nothing to settle
  std::optional<Lease> lease;
};

Result<Found> ReadLeaseObject(Store& store) {
  auto bytes = store.ReadSmall(kLockFileName, kMaxLeaseSize);
  if (!bytes.ok() && bytes.status().code() == Code::kNotFound) return Found{.absent = true};
  CADCANFS_RETURN_IF_ERROR(bytes.status());
  if (bytes->empty()) return Found{.empty = true};
  return Found{.lease = DecodeLease(*bytes)};
}

class LeaseHolder : public VaultLock::Holder {
 public:
  LeaseHolder(std::shared_ptr<Store> store, LeaseOptions options)
      : store_(std::move(store)), options_(std::move(options)) {
    if (options_.boot_id.empty()) options_.boot_id = ThisBootId();
  }
  ~LeaseHolder() override { StopRenewing(); }
  LeaseHolder(const LeaseHolder&) = delete;
  LeaseHolder& operator=(const LeaseHolder&) = delete;

  // Takes the lease, waiting up to `patience` for a live holder to let go. Sets
  // `interrupted` when the lease it replaced was left by a holder that died.
  Status Take(std::chrono::milliseconds patience, std::optional<struct timespec>& interrupted) {
    Bytes id(kHolderIdBytes);
    CADCANFS_RETURN_IF_ERROR(FillRandom(std::span<uint8_t>(id.data(), id.size())));
    lease_ = Lease{.holder = HexEncode(id),
                   .host = ThisHost(),
                   .boot_id = options_.boot_id,
                   .pid = getpid(),
                   .started = NowTimespec()};
    const auto deadline = std::chrono::steady_clock::now() + patience;
    for (;;) {
      CADCANFS_ASSIGN_OR_RETURN(Found found, ReadLeaseObject(*store_));
      if (found.absent) {
        Status created = Write(/*exclusive=*/true);
        if (created.ok()) return StartRenewing();
        if (created.code() != Code::kAlreadyExists) return created;
        // Another taker created it first: look at theirs, unless that keeps failing.
        if (std::chrono::steady_clock::now() < deadline + kBusyRetry) continue;
        return Status::Error(Code::kBusy,
                             "the vault is in use by another process: unmount it first");
      }
      if (!found.empty && !found.lease) {
        return Status::Error(Code::kBusy,
                             "the vault's lock object holds no lease (a local writer may be using "
                             "the vault): stop it first");
      }
      if (found.empty || !HeldByLiveHolder(*found.lease)) {
        if (found.lease) lease_.started = found.lease->started;  // the mark stays until settled
        CADCANFS_RETURN_IF_ERROR(TakeOver());
        // By the dead holder's clock, not the store's: the settling walk's own margin
        // (an hour, docs/vault-format.md §6) covers clocks that differ.
        if (found.lease) interrupted = found.lease->started;
        return StartRenewing();
      }
      if (std::chrono::steady_clock::now() >= deadline) return InUse(*found.lease);
      std::this_thread::sleep_for(kBusyRetry);
    }
  }

  void MarkRecovered() override {
    std::lock_guard lock(mu_);
    lease_.started = NowTimespec();
    if (Status s = WriteLocked(/*exclusive=*/false); !s.ok()) {
      spdlog::warn("vault lease: cannot record the settled session: {}", s.message());
    }
  }

  // A clean release removes the lease; an unclean one leaves it expired, keeping the
  // interrupted session's start for the next holder to settle from.
  void Release(bool clean) override {
    StopRenewing();
    std::lock_guard lock(mu_);
    if (lost_ || !StillOursLocked()) return;
    Status s = Status::Ok();
    if (clean) {
      s = store_->Remove(kLockFileName);
    } else {
      lease_.expires_ms = 0;
      s = store_->WriteAtomic(kLockFileName, EncodeLease(lease_), /*exclusive=*/false);
    }
    if (!s.ok()) spdlog::warn("vault lease: cannot release it: {}", s.message());
  }

 private:
  bool HeldByLiveHolder(const Lease& lease) const {
    if (lease.expires_ms <= NowMs()) return false;
    // A holder on this machine, since its boot, that is gone is dead for sure.
    if (lease.boot_id == options_.boot_id && !ProcessIsAlive(lease.pid)) return false;
    return true;
  }

  Status InUse(const Lease& lease) const {
    const std::string where = lease.boot_id == options_.boot_id ? "" : " on " + lease.host;
    return Status::Error(Code::kBusy, "the vault is in use by pid " + std::to_string(lease.pid) +
                                          where + ": unmount it first");
  }

  // Replaces a dead or released lease. Another taker may have read the same dead lease:
  // after a pause, whoever's lease is in the store holds the vault.
  Status TakeOver() {
    CADCANFS_RETURN_IF_ERROR(Write(/*exclusive=*/false));
    std::this_thread::sleep_for(options_.takeover_check);
    CADCANFS_ASSIGN_OR_RETURN(Found found, ReadLeaseObject(*store_));
    if (found.lease && found.lease->holder == lease_.holder) return Status::Ok();
    if (found.lease) return InUse(*found.lease);
    return Status::Error(Code::kBusy, "the vault is in use by another process: unmount it first");
  }

  Status Write(bool exclusive) {
    std::lock_guard lock(mu_);
    return WriteLocked(exclusive);
  }

  Status WriteLocked(bool exclusive) {
    lease_.expires_ms = NowMs() + options_.duration.count();
    return store_->WriteAtomic(kLockFileName, EncodeLease(lease_), exclusive);
  }

  bool StillOursLocked() {
    auto found = ReadLeaseObject(*store_);
    return found.ok() && found->lease && found->lease->holder == lease_.holder;
  }

  Status StartRenewing() {
    renewer_ = std::thread([this] { RenewUntilStopped(); });
    return Status::Ok();
  }

  void StopRenewing() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (renewer_.joinable()) renewer_.join();
  }

  // Renews until stopped. A failed renewal is retried at the next turn (the lease
  // outlives two); a lease someone else replaced is never written again.
  void RenewUntilStopped() {
    std::unique_lock lock(mu_);
    while (!wake_.wait_for(lock, options_.renew_every, [this] { return stopping_; })) {
      if (lost_) continue;
      if (!StillOursLocked()) {
        lost_ = true;
        spdlog::error("vault lease: another writer took over this vault's lease; stop this mount");
        continue;
      }
      if (Status s = WriteLocked(/*exclusive=*/false); !s.ok()) {
        spdlog::warn("vault lease: renewal failed, retrying: {}", s.message());
      }
    }
  }

  std::shared_ptr<Store> store_;
  LeaseOptions options_;
  std::mutex mu_;
  std::condition_variable wake_;
  Lease lease_;
  bool stopping_ = false;
  bool lost_ = false;
  std::thread renewer_;
};

}  // namespace

Result<VaultLock> VaultLock::AcquireLease(std::shared_ptr<Store> store,
                                          std::chrono::milliseconds patience,
                                          LeaseOptions options) {
  auto holder = std::make_unique<LeaseHolder>(std::move(store), std::move(options));
  std::optional<struct timespec> interrupted;
  CADCANFS_RETURN_IF_ERROR(holder->Take(patience, interrupted));
  return VaultLock(std::move(holder), interrupted);
}

}  // namespace cadcanfs
