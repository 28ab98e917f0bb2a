// cadcanfs --version: what this build is and what it was built against, for bug
// reports and for checking a package before rolling it out.
#define FUSE_USE_VERSION 312

#include <curl/curl.h>
#include <fuse_lowlevel.h>
#include <openssl/crypto.h>

#include <iostream>

#include "args.h"
#include "cadcanfs/vault/config.h"
#include "exit_codes.h"
#include "ops_commands.h"
#include "support.h"

namespace cadcanfs::cli {

int RunVersion(const std::vector<std::string>& argv) {
  Args args({}, {});
  if (std::string e = args.Parse(argv); !e.empty()) return UsageError(e);
  if (!args.positional().empty()) return UsageError("--version takes no arguments");
  const curl_version_info_data* curl = curl_version_info(CURLVERSION_NOW);
  std::cout << "cadcanfs " << CADCANFS_VERSION << "\n"
            << "vault formats: reads " << kOldestFormatVersion << " to " << kFormatVersion
            << ", writes " << kTreeLayoutVersion << " (tree layout) and " << kFlatLayoutVersion
            << " (flat layout)\n"
            << "libfuse " << fuse_pkgversion() << "\n"
            << OpenSSL_version(OPENSSL_VERSION) << "\n"
            << "libcurl " << (curl != nullptr ? curl->version : "unknown") << "\n";
  return exit_code::kOk;
}

}  // namespace cadcanfs::cli
