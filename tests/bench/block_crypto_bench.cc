// Block encryption/decryption throughput, the figure docs/performance.md compares with
// `openssl speed -evp aes-256-gcm` at the same buffer size.
#include <benchmark/benchmark.h>

#include "cadcanfs/crypto/random.h"
#include "cadcanfs/vault/content.h"

namespace cadcanfs {
namespace {

FileKeys BenchKeys() {
  FileKeys keys;
  (void)FillRandom(keys.file_id);
  keys.content_key = std::make_shared<GcmKey>(RandomSecret(32).value());
  return keys;
}

void BM_SealBlock(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  FileKeys keys = BenchKeys();
  Bytes plain(size, 0x5a);
  Bytes sealed(size + kBlockOverhead);
  uint64_t index = 0;
  for (auto _ : state) {
    if (!SealBlock(keys, index++, false, plain, sealed.data()).ok()) state.SkipWithError("seal");
    benchmark::DoNotOptimize(sealed.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}

void BM_OpenBlock(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  FileKeys keys = BenchKeys();
  Bytes plain(size, 0x5a);
  Bytes sealed(size + kBlockOverhead);
  (void)SealBlock(keys, 7, false, plain, sealed.data());
  for (auto _ : state) {
    if (!OpenBlock(keys, 7, false, sealed, plain.data()).ok()) state.SkipWithError("open");
    benchmark::DoNotOptimize(plain.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}

BENCHMARK(BM_SealBlock)->Arg(4096)->Arg(16384)->Arg(32768)->Arg(65536)->Arg(1 << 20);
BENCHMARK(BM_OpenBlock)->Arg(4096)->Arg(16384)->Arg(32768)->Arg(65536)->Arg(1 << 20);

}  // namespace
}  // namespace cadcanfs

BENCHMARK_MAIN();
