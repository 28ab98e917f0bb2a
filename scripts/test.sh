#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test through ctest, twice:
#   1. the Release build (gcc), which is what ships;
#   2. an AddressSanitizer + UndefinedBehaviorSanitizer build (clang) that also builds
#      the libFuzzer targets and runs each for 5 s, and runs the C++ test suites again
#      (not the packaging checks, drills and most shell scenario scripts; see below).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh

# Every *_test.cc must belong to a test target, or it would silently never run.
orphans=0
while IFS= read -r f; do
  rel=${f#tests/}
  if ! grep -q "$rel" tests/CMakeLists.txt tests/regressions/*.cmake tests/ops/*.cmake; then
    echo "error: $f is not listed in tests/CMakeLists.txt or tests/regressions/*.cmake"
    orphans=1
  fi
done < <(find tests -name '*_test.cc')
[ "$orphans" = 0 ]

# Formatting is part of the build: .clang-format is the style.
find src include tests -name '*.cc' -o -name '*.h' | xargs clang-format --dry-run --Werror

# Ninja for new build trees: it starts a library's dependants' compiles before the
# library links, which keeps both cores busy. (An existing tree keeps its generator.)
export CMAKE_GENERATOR=Ninja

# Benchmarks are built by scripts/bench.sh, not here.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCADCANFS_BENCH=OFF
cmake --build build -j2
# Three at a time: most tests wait on mounts, latency and sleeps, not on a core.
(cd build && ctest --output-on-failure -j3)

# -O1 -g1: line tables for the sanitizers' reports, and a fifth less compile time than
# -O2 -g on these 2-core machines (the whole run must stay under 20 minutes).
CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
  -DCADCANFS_SANITIZE=ON -DCADCANFS_FUZZ=ON -DCADCANFS_BENCH=OFF
cmake --build build-asan -j2
# The "packaging" tests (units, .deb, man page, the operations guide) check artifacts,
# and the "ops-drill" tests drive the binary through scripts whose C++ paths other
# tests cover, the "emulator" tests run Python alone, and "format-variant" reruns a
# shell suite over the plain format: the Release run covers them all. It also covers the
# "shell-e2e" suites, scenario scripts over a real mount (crash, lock, layout, OneDrive)
# whose C++ the sanitizers see through the in-process suites, mount_test's real mounts,
# and the two shell suites kept here: remote_mount_e2e (staging, cache, lease, kill -9)
# and access_mount_e2e (policy and audit in the daemon).
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j3 \
  -LE 'packaging|ops-drill|emulator|format-variant|shell-e2e')
