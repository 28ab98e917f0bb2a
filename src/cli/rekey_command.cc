// rekey: rotating a vault's master key.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <optional>

#include "cadcanfs/fs/offline.h"
#include "cadcanfs/store/open_store.h"
#include "exit_codes.h"
#include "support.h"

namespace cadcanfs::cli {

int RunRekey(const std::vector<std::string>& argv) {
  Args args(WithKeyFlags({"new-key-file", "new-passphrase-file"}), {});
  if (std::string e = args.Parse(argv); !e.empty()) return UsageError(e);
  if (args.positional().size() != 1) return UsageError("usage: rekey VAULT");
  KeyOptions new_keys = KeyOptionsFrom(args, "new-key-file", "new-passphrase-file");
  if (!new_keys.key_file && !new_keys.passphrase_file) {
    return UsageError("rekey needs --new-key-file or --new-passphrase-file");
  }
  int code = exit_code::kOk;
  std::unique_ptr<Store> store = OpenStoreOrReport(args.positional()[0], code);
  if (!store) return code;
  if (auto config = Vault::ReadConfig(*store); !config.ok()) {
    return Fail(config.status(), Stage::kVault);
  }
  // A rekey under a live mount moves every header away from the key the daemon keeps
  // wrapping new files with: only one writer at a time.
  std::optional<VaultLock> lock;
  if (!LockVaultOrReport(args.positional()[0], lock, code)) return code;
  RekeyHooks hooks;
  // Test hook: simulate a crash after N files have their new key slot on disk.
  if (const char* crash = std::getenv("CADCANFS_TEST_REKEY_CRASH_AFTER")) {
    uint64_t limit = std::strtoull(crash, nullptr, 10);
    hooks.after_new_slot = [limit](uint64_t done) {
      if (done >= limit) _exit(99);
    };
  }
  auto stats = RotateMasterKey(*store, KeyOptionsFrom(args), new_keys, hooks);
  if (!stats.ok()) {
    // An entry the walk could not classify may be a file under the old key, which
    // therefore stayed in the config.
    if (stats.status().code() == Code::kUnsupported) {
      std::cerr << "cadcanfs: " << stats.status().message() << "\n";
      return exit_code::kIncomplete;
    }
    Stage stage = stats.status().code() == Code::kWrongKey ? Stage::kKey : Stage::kData;
    if (stats.status().code() == Code::kPermissionDenied ||
        stats.status().code() == Code::kInvalidArgument) {
      stage = Stage::kKey;
    }
    return Fail(stats.status(), stage);
  }
  if (stats->already_complete) {
    std::cout << "the vault already uses the new key; nothing to do\n";
  } else {
    std::cout << "rewrapped " << stats->files_rewrapped << " file keys ("
              << stats->files_already_done << " were already done); the old key no longer "
              << "opens this vault\n";
    if (stats->foreign_entries != 0) {
      std::cout << "left alone " << stats->foreign_entries
                << " entries that are not cadcanfs entries (fsck lists them)\n";
    }
  }
  return exit_code::kOk;
}

}  // namespace cadcanfs::cli
