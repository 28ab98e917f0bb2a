// fsck: checking every byte of a vault.
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "cadcanfs/fs/offline.h"
#include "cadcanfs/store/local_store.h"
#include "exit_codes.h"
#include "support.h"

namespace cadcanfs::cli {

int RunFsck(const std::vector<std::string>& argv) {
  Args args(kKeyFlags, {"show-names"});
  if (std::string e = args.Parse(argv); !e.empty()) return UsageError(e);
  if (args.positional().size() != 1) return UsageError("usage: fsck VAULT [--show-names]");
  // Plaintext paths are patient names: print them only when the admin at the terminal
  // asks. By default the output (which a timer sends to the journal) carries ciphertext
  // paths and file ids, which `cadcanfs map` translates on demand.
  bool show_names = args.Has("show-names");
  int code = exit_code::kOk;
  auto vault = OpenVaultOrReport(args.positional()[0], KeyOptionsFrom(args), code);
  if (!vault) return code;
  FsckReport report = CheckVault(*vault);
  for (const FsckProblem& p : report.problems) {
    std::cout << "damaged: " << p.cipher_path;
    if (!p.file_id.empty()) std::cout << " " << p.file_id;
    if (show_names && !p.plain_path.empty()) std::cout << " (" << p.plain_path << ")";
    std::cout << ": " << p.status.ToString() << "\n";
  }
  std::cout << "checked " << report.files_checked << " files in " << report.directories_checked
            << " directories: " << report.problems.size() << " problems\n";
  return report.problems.empty() ? exit_code::kOk : exit_code::kDamageFound;
}

}  // namespace cadcanfs::cli
