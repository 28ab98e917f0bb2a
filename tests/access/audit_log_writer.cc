// Test helper for audit_cli_test.sh: writes audit lines with the real AuditLog, under
// the audit key derived from a key file, until the daemon (issue 9, part 2) writes them.
//
//   audit_log_writer KEYFILE LOG EVENT...
//   EVENT: mount | unmount | rotate | read:CODE:FID | denied:CODE
#include <unistd.h>

#include <iostream>
#include <string>

#include "cadcanfs/access/audit_log.h"
#include "cadcanfs/access/keys.h"
#include "cadcanfs/vault/key_source.h"

namespace cadcanfs::access {
namespace {

int Run(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: audit_log_writer KEYFILE LOG EVENT...\n";
    return 2;
  }
  auto kek = ReadKeyFile(argv[1]);
  if (!kek.ok()) return 2;
  auto master = MasterKey::FromBytes(std::move(kek).value());
  auto key = DeriveAuditKey(*master);
  auto log = AuditLog::Open(argv[2], std::move(key).value());
  if (!log.ok()) {
    std::cerr << log.status().ToString() << "\n";
    return 1;
  }
  for (int i = 3; i < argc; ++i) {
    const std::string spec = argv[i];
    AuditEvent event;
    event.uid = static_cast<uint32_t>(getuid());
    event.pid = getpid();
    Status s;
    if (spec == "rotate") {
      s = (*log)->Rotate();
    } else {
      if (spec == "mount") {
        event.op = AuditOp::kMount;
      } else if (spec == "unmount") {
        event.op = AuditOp::kUnmount;
      } else if (spec.starts_with("read:")) {
        event.op = AuditOp::kOpenRead;
        event.case_code = spec.substr(5, spec.find(':', 5) - 5);
        event.file_id = spec.substr(spec.find(':', 5) + 1);
      } else if (spec.starts_with("denied:")) {
        event.op = AuditOp::kDenied;
        event.case_code = spec.substr(7);
        event.attempt = "open-write";
        event.error = 13;
      } else {
        std::cerr << "unknown event\n";
        return 2;
      }
      s = (*log)->Append(event);
    }
    if (!s.ok()) {
      std::cerr << s.ToString() << "\n";
      return 1;
    }
  }
  return 0;
}

}  // namespace
}  // namespace cadcanfs::access

int main(int argc, char** argv) { return cadcanfs::access::Run(argc, argv); }
