// fsck: checking every byte of a vault.
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <iostream>

#include "cadcanfs/fs/offline.h"
#include "cadcanfs/store/local_store.h"
#include "exit_codes.h"
#include "progress.h"
#include "service_config.h"
#include "support.h"

namespace cadcanfs::cli {

namespace {

// "damaged: <cipher path> [fid:<id>] [(<plain path>)]: <reason>"
std::string ProblemLine(const FsckProblem& p, bool show_names) {
  std::string line = "damaged: " + p.cipher_path;
  if (!p.file_id.empty()) line += " " + p.file_id;
  if (show_names && !p.plain_path.empty()) line += " (" + p.plain_path + ")";
  return line + ": " + p.status.ToString();
}

nlohmann::json ReportJson(const FsckReport& report, bool show_names, double seconds) {
  nlohmann::json damaged = nlohmann::json::array();
  for (const FsckProblem& p : report.problems) {
    nlohmann::json item = {{"cipher_path", p.cipher_path}, {"reason", p.status.ToString()}};
    if (!p.file_id.empty()) item["file_id"] = p.file_id;
    if (show_names && !p.plain_path.empty()) item["plain_path"] = p.plain_path;
    damaged.push_back(std::move(item));
  }
  return {{"command", "fsck"},
          {"files_checked", report.files_checked},
          {"directories_checked", report.directories_checked},
          {"problems", report.problems.size()},
          {"damaged", std::move(damaged)},
          {"seconds", std::round(seconds * 1000) / 1000}};
}

// The vault to check and the key to check it with.
struct FsckTarget {
  std::string vault;
  KeyOptions keys;
  OneDriveAccess onedrive;  // a onedrive: vault's sign-in
};

// A onedrive: vault's sign-in flags from the mount unit's config, where the command
// line does not give them.
OneDriveAccess OneDriveAccessFromConfig(const MountConfig& config, const Args& args) {
  OneDriveAccess access = OneDriveAccessFrom(args);
  auto value_of = [&config](std::string_view name) -> std::optional<std::string> {
    const std::string prefix = "--" + std::string(name) + "=";
    for (const std::string& flag : config.flags) {
      if (flag.rfind(prefix, 0) == 0) return flag.substr(prefix.size());
    }
    return std::nullopt;
  };
  if (!access.token_file) access.token_file = value_of("token-file");
  if (access.graph_url.empty()) access.graph_url = value_of("graph-url").value_or("");
  if (access.drive.empty()) access.drive = value_of("drive").value_or("");
  return access;
}

// Takes the vault, and the key options if it names any, from the mount unit's config
// file, so the fsck unit checks the vault that cadcanfs@NAME.service mounts. The
// config's mount options do not concern fsck and are ignored. Returns kOk or the exit
// code of the error it printed.
int TargetFromConfig(const std::string& path, const Args& args, FsckTarget& target) {
  Result<MountConfig> config = ReadMountConfig(path);
  if (!config.ok()) {
    std::cerr << "cadcanfs: " << config.status().message() << "\n";
    return exit_code::kBadServiceConfig;
  }
  if (!args.positional().empty()) {
    return UsageError("give the VAULT on the command line or in the --config file, not both");
  }
  if (!config->vault) {
    std::cerr << "cadcanfs: the config file does not set the vault\n";
    return exit_code::kBadServiceConfig;
  }
  target.vault = *config->vault;
  target.keys = KeyOptionsFrom(args);
  if (config->key_file || config->passphrase_file) {
    if (target.keys.key_file || target.keys.passphrase_file) {
      return UsageError("give the key on the command line or in the config file, not both");
    }
    target.keys = KeyOptions{config->key_file, config->passphrase_file};
  }
  target.onedrive = OneDriveAccessFromConfig(*config, args);
  target.onedrive.keys = target.keys;
  return exit_code::kOk;
}

int ResolveTarget(const Args& args, FsckTarget& target) {
  if (std::optional<std::string> config_path = args.Value("config")) {
    return TargetFromConfig(*config_path, args, target);
  }
  if (args.positional().size() != 1) {
    return UsageError("usage: fsck (VAULT | --config FILE) [--show-names]");
  }
  target = FsckTarget{args.positional()[0], KeyOptionsFrom(args), OneDriveAccessFrom(args)};
  return exit_code::kOk;
}

}  // namespace

int RunFsck(const std::vector<std::string>& argv) {
  std::set<std::string> switches = kOutputSwitches;
  switches.insert("show-names");
  Args args(WithStoreFlags({"config"}), WithStoreSwitches(switches));
  if (std::string e = args.Parse(argv); !e.empty()) return UsageError(e);
  FsckTarget target;
  if (int code = ResolveTarget(args, target); code != exit_code::kOk) return code;
  OutputOptions output;
  if (std::string e = ReadOutputOptions(args, output); !e.empty()) return UsageError(e);
  Stopwatch stopwatch;
  // Plaintext paths are patient names: print them only when the admin at the terminal
  // asks. By default the output (which a timer sends to the journal) carries ciphertext
  // paths and file ids, which `cadcanfs map` translates on demand.
  bool show_names = args.Has("show-names");
  int code = exit_code::kOk;
  auto vault = OpenVaultOrReport(StoreLocation{target.vault, target.onedrive}, target.keys, code);
  if (!vault) return code;
  auto meter = MeterIfTerminal("checking", output, [&] {
    auto totals = MeasureVaultTree(*vault, "");
    return totals.ok() ? *totals : WorkTotals{};
  });
  FsckReport report = CheckVault(*vault, meter.get());
  if (meter) meter->Finish();
  // The damaged lines are findings, not a summary: --quiet keeps them; --json carries
  // them inside its one object instead.
  std::string text;
  for (const FsckProblem& p : report.problems) text += ProblemLine(p, show_names) + "\n";
  if (output.quiet) std::cout << text;
  text += "checked " + std::to_string(report.files_checked) + " files in " +
          std::to_string(report.directories_checked) +
          " directories: " + std::to_string(report.problems.size()) + " problems\n";
  PrintSummary(output, text, ReportJson(report, show_names, stopwatch.Seconds()));
  return report.problems.empty() ? exit_code::kOk : exit_code::kDamageFound;
}

}  // namespace cadcanfs::cli
