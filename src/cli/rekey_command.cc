// rekey: rotating a vault's master key.
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <optional>

#include "cadcanfs/fs/offline.h"
#include "cadcanfs/store/open_store.h"
#include "exit_codes.h"
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

}  // namespace

int RunRekey(const std::vector<std::string>& argv) {
  Args args(WithKeyFlags({"new-key-file", "new-passphrase-file"}), kOutputSwitches);
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
  auto meter = MeterIfTerminal("rekeying", output, [&] {
    auto totals = CountCipherFiles(*store);
    return totals.ok() ? *totals : WorkTotals{};
  });
  hooks.progress = meter.get();
  auto stats = RotateMasterKey(*store, KeyOptionsFrom(args), new_keys, hooks);
  if (meter && stats.ok()) meter->Finish();
  meter.reset();  // ends the progress line before any error sentence
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
  return exit_code::kOk;
}

}  // namespace cadcanfs::cli
