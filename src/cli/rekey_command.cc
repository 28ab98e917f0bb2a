// rekey: rotating a vault's master key.
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <optional>

#include "cadcanfs/fs/offline.h"
#include "cadcanfs/store/open_store.h"
#include "exit_codes.h"
#include "login_commands.h"
#include "progress.h"
#include "support.h"

namespace cadcanfs::cli {

namespace {

std::string RekeySummaryText(const RekeyStats& stats) {
  if (stats.already_complete) return "the vault already uses the new key; nothing to do\n";
  std::string text = "rewrapped " + std::to_string(stats.files_rewrapped) + " file keys (" +
                     std::to_string(stats.files_already_done) +
                     " were already done); the old key no longer opens this vault\n";
  if (stats.foreign_entries != 0) {
    text += "left alone " + std::to_string(stats.foreign_entries) +
            " entries that are not cadcanfs entries (fsck lists them)\n";
  }
  return text;
}

nlohmann::json RekeySummaryJson(const RekeyStats& stats, double seconds) {
  return {{"command", "rekey"},
          {"already_complete", stats.already_complete},
          {"files_rewrapped", stats.files_rewrapped},
          {"files_already_done", stats.files_already_done},
          {"symlinks", stats.symlinks},
          {"special_nodes", stats.special_nodes},
          {"foreign_entries", stats.foreign_entries},
          {"seconds", std::round(seconds * 1000) / 1000}};
}

// The token store is sealed with a key from the KEYOPTS the vault opens with: once the
// old key no longer opens the vault, the stored sign-in moves to the new one.
int MoveTokenStoreToNewKeyOrReport(const std::string& token_file, const KeyOptions& old_keys,
                                   const KeyOptions& new_keys) {
  int code = exit_code::kOk;
  std::optional<graph::StoredLogin> login = LoadStoredLoginOrReport(token_file, old_keys, code);
  if (!login) return code;
  std::optional<SecretBytes> key = TokenStoreKeyOrReport(new_keys, code);
  if (!key) {
    std::cerr << "cadcanfs: the stored sign-in stays under the old key: run cadcanfs login with "
                 "the new key file\n";
    return code;
  }
  Status saved =
      graph::TokenStore(token_file, std::move(*key)).Save(login->settings, login->refresh_token);
  if (!saved.ok())
    return Fail(saved.WithContext("cannot store the sign-in under the new key"), Stage::kData);
  return exit_code::kOk;
}

}  // namespace

int RunRekey(const std::vector<std::string>& argv) {
  Args args(WithStoreFlags({"new-key-file", "new-passphrase-file"}),
            WithStoreSwitches(kOutputSwitches));
  if (std::string e = args.Parse(argv); !e.empty()) return UsageError(e);
  OutputOptions output;
  if (std::string e = ReadOutputOptions(args, output); !e.empty()) return UsageError(e);
  Stopwatch stopwatch;
  if (args.positional().size() != 1) return UsageError("usage: rekey VAULT");
  KeyOptions new_keys = KeyOptionsFrom(args, "new-key-file", "new-passphrase-file");
  if (!new_keys.key_file && !new_keys.passphrase_file) {
    return UsageError("rekey needs --new-key-file or --new-passphrase-file");
  }
  int code = exit_code::kOk;
  std::shared_ptr<Store> store =
      OpenStoreOrReport(StoreLocationFrom(args, args.positional()[0]), code);
  if (!store) return code;
  auto config = Vault::ReadConfig(*store);
  if (!config.ok()) return Fail(config.status(), Stage::kVault);
  // A rekey under a live mount moves every header away from the key the daemon keeps
  // wrapping new files with: only one writer at a time.
  std::optional<VaultLock> lock;
  if (!LockVaultOrReport(args.positional()[0], store, lock, code)) return code;
  // A store that cannot rewrite a header in place (OneDrive) gets it staged; each
  // rewrapped file is committed before the next, so the staging is empty at the end.
  CommandStaging staging;
  std::unique_ptr<Store> working = ShareStore(store);
  if (!store->capabilities().partial_writes) {
    auto key = LoadKeyForVault(KeyOptionsFrom(args), *config);
    if (!key.ok()) return Fail(key.status(), Stage::kKey);
    working = staging.Wrapper(args.positional()[0])(std::move(working), *key, code);
    if (!working) return code;
  }
  RekeyHooks hooks;
  // Test hook: simulate a crash after N files have their new key slot on disk.
  if (const char* crash = std::getenv("CADCANFS_TEST_REKEY_CRASH_AFTER")) {
    uint64_t limit = std::strtoull(crash, nullptr, 10);
    hooks.after_new_slot = [limit](uint64_t done) {
      if (done >= limit) _exit(99);
    };
  }
  auto meter = MeterIfTerminal("rekeying", output, [&] {
    auto totals = CountCipherFiles(*working);
    return totals.ok() ? *totals : WorkTotals{};
  });
  hooks.progress = meter.get();
  auto stats = RotateMasterKey(*working, KeyOptionsFrom(args), new_keys, hooks);
  if (meter && stats.ok()) meter->Finish();
  meter.reset();  // ends the progress line before any error sentence
  if (int committed = staging.FinishOrReport(); committed != exit_code::kOk) return committed;
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
  PrintSummary(output, RekeySummaryText(*stats), RekeySummaryJson(*stats, stopwatch.Seconds()));
  const StoreLocation where = StoreLocationFrom(args, args.positional()[0]);
  if (IsOneDriveLocation(where.location) && where.onedrive.token_file) {
    return MoveTokenStoreToNewKeyOrReport(*where.onedrive.token_file, KeyOptionsFrom(args),
                                          new_keys);
  }
  return exit_code::kOk;
}

}  // namespace cadcanfs::cli
