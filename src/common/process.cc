#include "cadcanfs/common/process.h"

#include <sys/prctl.h>
#include <sys/resource.h>

namespace cadcanfs {

bool DisableCoreDumps() {
  struct rlimit none = {0, 0};
  bool limit_ok = setrlimit(RLIMIT_CORE, &none) == 0;
  bool dumpable_ok = prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0;
  return limit_ok && dumpable_ok;
}

}  // namespace cadcanfs
