// encrypt, decrypt and map: moving plaintext in and out of a vault offline, and
// translating paths between the plaintext and ciphertext views.
#include <sys/stat.h>

#include <cmath>
#include <iostream>
#include <optional>
#include <string>

#include "cadcanfs/fs/offline.h"
#include "exit_codes.h"
#include "progress.h"
#include "support.h"

namespace cadcanfs::cli {

namespace {

std::string TrimSlashes(std::string path) {
  while (!path.empty() && path.front() == '/') path.erase(0, 1);
  while (!path.empty() && path.back() == '/') path.pop_back();
  return path;
}

// Accepts a ciphertext path either relative to the vault or as a path inside it.
std::string VaultRelative(const std::string& vault, const std::string& path) {
  std::string prefix = vault;
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  prefix += '/';
  if (path.compare(0, prefix.size(), prefix) == 0) return TrimSlashes(path.substr(prefix.size()));
  return TrimSlashes(path);
}

bool LooksLikeCipherPath(Vault& vault, const std::string& path) {
  if (path.empty()) return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string part =
        path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    StoredNameKind kind = ClassifyStoredName(part);
    if (kind != StoredNameKind::kEncrypted && kind != StoredNameKind::kLongName) return false;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return vault.store().Stat(path).ok();
}

// ", N special files" when there were any (FIFOs, sockets, device nodes).
std::string SpecialFilesNote(const TransferStats& stats) {
  if (stats.special_files == 0) return "";
  return ", " + std::to_string(stats.special_files) + " special files";
}

std::string TransferSummaryText(const char* verb, const TransferStats& stats) {
  return std::string(verb) + " " + std::to_string(stats.files) + " files, " +
         std::to_string(stats.directories) + " directories, " + std::to_string(stats.symlinks) +
         " symlinks" + SpecialFilesNote(stats) + " (" + std::to_string(stats.bytes) + " bytes)\n";
}

nlohmann::json TransferSummaryJson(const char* command, const TransferStats& stats,
                                   double seconds) {
  return {{"command", command},
          {"files", stats.files},
          {"directories", stats.directories},
          {"symlinks", stats.symlinks},
          {"special_files", stats.special_files},
          {"bytes", stats.bytes},
          {"skipped", stats.skipped},
          {"seconds", std::round(seconds * 1000) / 1000}};
}

// A copy that left entries out must not look like a success: a script that deletes the
// source after a clean exit would lose them.
int ReportSkipped(const TransferStats& stats, const char* what) {
  if (stats.skipped == 0) return exit_code::kOk;
  std::cerr << "cadcanfs: incomplete: " << stats.skipped << " entries of " << what
            << " were skipped (device nodes need root, other types are not supported)\n";
  return exit_code::kIncomplete;
}

}  // namespace

int RunEncrypt(const std::vector<std::string>& argv) {
  Args args(WithStoreFlags({}), WithStoreSwitches(kOutputSwitches));
  if (std::string e = args.Parse(argv); !e.empty()) return UsageError(e);
  OutputOptions output;
  if (std::string e = ReadOutputOptions(args, output); !e.empty()) return UsageError(e);
  Stopwatch stopwatch;
  const auto& pos = args.positional();
  if (pos.size() < 2 || pos.size() > 3) return UsageError("usage: encrypt VAULT SRC [DEST]");
  int code = exit_code::kOk;
  // One writer at a time: a mount or rekey holding the vault refuses this (exit 13).
  std::optional<VaultLock> lock;
  CommandStaging staging;
  auto vault = OpenVaultOrReport(StoreLocationFrom(args, pos[0]), KeyOptionsFrom(args), code, &lock,
                                 false, staging.Wrapper(pos[0]));
  if (!vault) return code;
  staging.Attach(*vault);
  struct stat st;
  if (lstat(pos[1].c_str(), &st) != 0) {
    return Fail(Status::Error(Code::kNotFound, "the source does not exist"), Stage::kData);
  }
  // A source ending in '/' copies the directory's contents, as rsync does.
  bool contents_only = pos[1].back() == '/';
  auto meter = MeterIfTerminal("encrypting", output, [&] { return MeasureSourceTree(pos[1]); });
  auto stats = ImportTree(*vault, pos[1], pos.size() == 3 ? TrimSlashes(pos[2]) : "", contents_only,
                          meter.get());
  // What was written is committed even when a later file failed.
  if (int committed = staging.FinishOrReport(); committed != exit_code::kOk) return committed;
  if (!stats.ok()) {
    meter.reset();  // ends the progress line, so the error gets a line of its own
    return Fail(stats.status(), Stage::kData);
  }
  if (meter) meter->Finish();
  PrintSummary(output, TransferSummaryText("encrypted", *stats),
               TransferSummaryJson("encrypt", *stats, stopwatch.Seconds()));
  return ReportSkipped(*stats, "the source");
}

int RunDecrypt(const std::vector<std::string>& argv) {
  Args args(WithStoreFlags({}), WithStoreSwitches(kOutputSwitches));
  if (std::string e = args.Parse(argv); !e.empty()) return UsageError(e);
  OutputOptions output;
  if (std::string e = ReadOutputOptions(args, output); !e.empty()) return UsageError(e);
  Stopwatch stopwatch;
  const auto& pos = args.positional();
  if (pos.size() < 2) return UsageError("usage: decrypt VAULT OUTDIR [PATH...]");
  int code = exit_code::kOk;
  auto vault = OpenVaultOrReport(StoreLocationFrom(args, pos[0]), KeyOptionsFrom(args), code);
  if (!vault) return code;
  const std::string& out_dir = pos[1];
  if (mkdir(out_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Fail(Status::FromErrno(errno, "cannot create the output directory"), Stage::kData);
  }
  std::vector<std::string> paths(pos.begin() + 2, pos.end());
  if (paths.empty()) paths.push_back("");
  auto meter = MeterIfTerminal("decrypting", output, [&] {
    WorkTotals totals;
    for (const std::string& p : paths) {
      // A path that cannot be measured fails below, with its own error.
      auto measured = MeasureVaultTree(*vault, TrimSlashes(p));
      if (!measured.ok()) continue;
      totals.files += measured->files;
      totals.bytes += measured->bytes;
    }
    return totals;
  });
  TransferStats total;
  for (const std::string& p : paths) {
    auto stats = ExportTree(*vault, TrimSlashes(p), out_dir, meter.get());
    if (!stats.ok()) {
      meter.reset();  // ends the progress line, so the error gets a line of its own
      return Fail(stats.status(), Stage::kData);
    }
    total.files += stats->files;
    total.directories += stats->directories;
    total.symlinks += stats->symlinks;
    total.special_files += stats->special_files;
    total.bytes += stats->bytes;
    total.skipped += stats->skipped;
  }
  if (meter) meter->Finish();
  PrintSummary(output, TransferSummaryText("decrypted", total),
               TransferSummaryJson("decrypt", total, stopwatch.Seconds()));
  return ReportSkipped(total, "the vault");
}

int RunMap(const std::vector<std::string>& argv) {
  Args args(WithStoreFlags({}), WithStoreSwitches({"to-cipher", "to-plain"}));
  if (std::string e = args.Parse(argv); !e.empty()) return UsageError(e);
  const auto& pos = args.positional();
  if (pos.size() != 2) return UsageError("usage: map VAULT PATH");
  if (args.Has("to-cipher") && args.Has("to-plain")) {
    return UsageError("--to-cipher and --to-plain exclude each other");
  }
  int code = exit_code::kOk;
  auto vault = OpenVaultOrReport(StoreLocationFrom(args, pos[0]), KeyOptionsFrom(args), code);
  if (!vault) return code;
  std::string relative = VaultRelative(pos[0], pos[1]);
  bool to_plain =
      args.Has("to-plain") || (!args.Has("to-cipher") && LooksLikeCipherPath(*vault, relative));
  auto mapped = to_plain ? vault->PlainPathOf(relative) : vault->CipherPathOf(relative);
  if (!mapped.ok()) return Fail(mapped.status(), Stage::kData);
  std::cout << (to_plain ? "plaintext: " : "ciphertext: ") << *mapped << "\n";
  return exit_code::kOk;
}

}  // namespace cadcanfs::cli
