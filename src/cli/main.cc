// cadcanfs: one binary, one subcommand per job.
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "access_commands.h"
#include "cadcanfs/common/log.h"
#include "cadcanfs/common/process.h"
#include "exit_codes.h"
#include "login_commands.h"
#include "ops_commands.h"
#include "status_command.h"
#include "support.h"

namespace {

constexpr char kUsage[] = R"(usage: cadcanfs COMMAND [ARGS]

  keygen FILE                          write a new random master key (mode 0600)
  init VAULT KEYOPTS [--block-size N]  create a vault in an empty directory
  info VAULT                           show the vault config (no secrets)
  encrypt VAULT SRC [DEST] KEYOPTS     import plaintext into the vault
  decrypt VAULT OUTDIR [PATH...] KEYOPTS
                                       export (restore) plaintext from a vault or backup
  fsck VAULT KEYOPTS                   authenticate everything; exit 20 on damage
  map VAULT PATH KEYOPTS [--to-cipher|--to-plain]
                                       translate between plaintext and ciphertext paths
  rekey VAULT KEYOPTS (--new-key-file F | --new-passphrase-file F)
                                       rotate the master key
  mount VAULT MOUNTPOINT KEYOPTS [-f] [-o OPTS] [--read-only] [--uid N] [--gid N]
        [--debug] [--writeback-cache] [--shared-store]
                                       serve the vault as a directory (detaches once live)
        [--policy FILE] [--audit-log FILE [--audit-relaxed] [--audit-sync] [--audit-syslog]]
                                       per-user access (SIGHUP reloads) and audit (SIGUSR1 rotates)
        [--pseudonymized-view DIR]     with --policy: case codes for patient names at DIR
  mount --plain DIR MOUNTPOINT [options]
                                       serve a directory as it is, unencrypted (tests)
  unmount MOUNTPOINT [--lazy] [--force]
                                       unmount a vault (also clears a stale mount); waits
                                       for staged uploads unless --force
  status MOUNTPOINT [--json]           what a mount still owes its store (no names)
  audit verify LOG [LOG...] KEYOPTS [--vault VAULT]
                                       check an audit log's chain; exit 40-43 on problems
  audit show LOG [LOG...] KEYOPTS [--resolve VAULT] [--case-depth N]
                                       print an audit log (names only with --resolve)
  case-code VAULT PATH KEYOPTS         print a case folder's pseudonym code
  case-code VAULT --reverse CODE KEYOPTS [--case-depth N]
                                       find the case folder(s) with this code
  policy check FILE                    validate an access policy file; exit 41 if invalid
  mount --config FILE [-f]             mount as /etc/cadcanfs/NAME.conf says (the unit)
  unmount --config FILE                unmount the mountpoint that FILE names
  doctor [KEYOPTS] [--config FILE] [--allow-other]
                                       check this system (FUSE, swap, core dumps, key)
  login --token-file F KEYOPTS [--tenant T] [--client-id C] [--login-url URL] [--drive ID]
                                       sign in to OneDrive (device code); store the token encrypted
  logout --token-file F                delete the stored OneDrive sign-in
  --version                            versions of cadcanfs, its formats and libraries

KEYOPTS: --key-file F | --passphrase-file F (or a systemd credential cadcanfs.key)
encrypt, decrypt, fsck and rekey show progress on a terminal and end with a summary:
  --quiet prints neither, --json prints the summary as one JSON object.
Exit codes are listed in docs/cli.md.
)";

using Command = int (*)(const std::vector<std::string>&);

}  // namespace

int main(int argc, char** argv) {
  cadcanfs::DisableCoreDumps();
  cadcanfs::InitLogging(cadcanfs::LogOptions{});
  if (argc < 2) {
    std::cerr << kUsage;
    return cadcanfs::exit_code::kUsage;
  }
  std::string command = argv[1];
  if (cadcanfs::cli::IsMountHelperCall(argv[0], command)) {
    return cadcanfs::cli::RunMountHelper(std::vector<std::string>(argv + 1, argv + argc));
  }
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kUsage;
    return cadcanfs::exit_code::kOk;
  }
  const std::map<std::string, Command> commands = {
      {"keygen", cadcanfs::cli::RunKeygen},     {"init", cadcanfs::cli::RunInit},
      {"info", cadcanfs::cli::RunInfo},         {"encrypt", cadcanfs::cli::RunEncrypt},
      {"decrypt", cadcanfs::cli::RunDecrypt},   {"map", cadcanfs::cli::RunMap},
      {"fsck", cadcanfs::cli::RunFsck},         {"rekey", cadcanfs::cli::RunRekey},
      {"mount", cadcanfs::cli::RunMount},       {"unmount", cadcanfs::cli::RunUnmount},
      {"audit", cadcanfs::cli::RunAudit},       {"case-code", cadcanfs::cli::RunCaseCode},
      {"policy", cadcanfs::cli::RunPolicy},     {"doctor", cadcanfs::cli::RunDoctor},
      {"login", cadcanfs::cli::RunLogin},       {"logout", cadcanfs::cli::RunLogout},
      {"--version", cadcanfs::cli::RunVersion}, {"status", cadcanfs::cli::RunStatus},
  };
  auto it = commands.find(command);
  if (it == commands.end()) {
    return cadcanfs::cli::UsageError("unknown command '" + command + "'");
  }
  try {
    return it->second(std::vector<std::string>(argv + 2, argv + argc));
  } catch (const std::bad_alloc&) {
    std::cerr << "cadcanfs: out of memory\n";
  } catch (const std::exception&) {
    std::cerr << "cadcanfs: internal error\n";
  }
  return cadcanfs::exit_code::kInternal;
}
