// CachingStore over a RemoteLikeStore: what it saves in store calls, when it lets go
// of cached bytes, and how many ranged reads its read-ahead keeps in flight. (It also
// passes the Store conformance suite, in store_conformance_test.cc.)
#include "cadcanfs/store/caching_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/crypto/random.h"
#include "cadcanfs/crypto/secret.h"
#include "cadcanfs/fs/encrypted_file.h"
#include "cadcanfs/store/memory_store.h"
#include "cadcanfs/store/open_store.h"
#include "cadcanfs/store/remote_like_store.h"
#include "cadcanfs/vault/content.h"
#include "cadcanfs/vault/master_key.h"
#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

using std::chrono::milliseconds;

constexpr size_t kChunk = 64 << 10;  // small chunks keep the tests' objects small

// Distinct bytes everywhere, different per `seed`, so a stale or misplaced byte shows.
Bytes Pattern(size_t size, uint8_t seed) {
  Bytes bytes(size);
  for (size_t i = 0; i < size; ++i) {
    bytes[i] = static_cast<uint8_t>((i * 131 + (i >> 9) + seed * 7) & 0xff);
  }
  return bytes;
}

class CachingStoreTest : public ::testing::Test {
 protected:
  void Make(CachingOptions options, RemoteLikeOptions remote = {}, size_t chunk_size = kChunk) {
    options.chunk_size = chunk_size;
    auto base = NewRemoteLikeStore(NewMemoryStore(), remote);
    remote_ = base.get();
    controls_ = base->controls();
    store_ = NewCachingStore(std::move(base), options);
  }
  void MakeDefault() { Make(CachingOptions{.budget_bytes = 64 * kChunk}); }

  uint64_t Reads() { return controls_->Calls(RemoteCall::kReadRange); }

  std::unique_ptr<StoreFile> OpenReader(const std::string& path) {
    auto file = store_->Open(path, OpenOptions{});
    EXPECT_TRUE(file.ok()) << file.status().ToString();
    return file.ok() ? std::move(file).value() : nullptr;
  }

  Bytes ReadBack(StoreFile& file, uint64_t offset, size_t length) {
    Bytes out(length);
    auto n = file.ReadAt(offset, out);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    out.resize(n.ok() ? *n : 0);
    return out;
  }

  static Bytes Slice(const Bytes& bytes, size_t offset, size_t length) {
    return Bytes(bytes.begin() + static_cast<ptrdiff_t>(offset),
                 bytes.begin() + static_cast<ptrdiff_t>(std::min(bytes.size(), offset + length)));
  }

  RemoteLikeStore* remote_ = nullptr;  // owned by store_
  std::shared_ptr<RemoteLikeControls> controls_;
  std::unique_ptr<CachingStore> store_;
};

TEST_F(CachingStoreTest, HitsCostNoStoreCalls) {
  MakeDefault();
  const Bytes content = Pattern(5 * kChunk + 100, 1);
  ASSERT_TRUE(store_->WriteAtomic("scan.stl", content).ok());
  ASSERT_TRUE(store_->Stat("scan.stl").ok());  // the lookup the filesystem does first

  controls_->ResetCalls();
  auto reader = OpenReader("scan.stl");
  EXPECT_EQ(ReadBack(*reader, 10, 1000), Slice(content, 10, 1000));
  EXPECT_EQ(controls_->TotalCalls(), 2u) << "the open and one ranged read, no Stat";

  // Again, from another place in the same chunk, and through a second reader.
  EXPECT_EQ(ReadBack(*reader, 5000, 3000), Slice(content, 5000, 3000));
  auto second = OpenReader("scan.stl");
  EXPECT_EQ(ReadBack(*second, 0, kChunk), Slice(content, 0, kChunk));
  EXPECT_EQ(Reads(), 1u);

  // A read across two missing chunks is one ranged read; the tail reads short.
  EXPECT_EQ(ReadBack(*second, 3 * kChunk - 10, kChunk), Slice(content, 3 * kChunk - 10, kChunk));
  EXPECT_EQ(Reads(), 2u);
  EXPECT_EQ(ReadBack(*second, 5 * kChunk, kChunk), Slice(content, 5 * kChunk, kChunk));
  EXPECT_EQ(ReadBack(*second, 6 * kChunk, 10).size(), 0u);
  EXPECT_GT(store_->stats().hits, 0u);
}

TEST_F(CachingStoreTest, TheFirstBytesAfterOpenCostTwoCalls) {
  Make(CachingOptions{}, RemoteLikeOptions{}, CachingOptions{}.chunk_size);  // as mounted
  const Bytes content = Pattern(40 * kChunk, 2);
  ASSERT_TRUE(store_->WriteAtomic("volume.dcm", content).ok());
  ASSERT_TRUE(store_->List("").ok());  // readdirplus: the listing names the object
  controls_->ResetCalls();
  // What the vault does at open: ask for the start, read the header, then a block.
  auto reader = OpenReader("volume.dcm");
  reader->Prefetch(0, 256 << 10);
  EXPECT_EQ(ReadBack(*reader, 0, 192), Slice(content, 0, 192));
  EXPECT_EQ(ReadBack(*reader, 192, 4096 + 28), Slice(content, 192, 4096 + 28));
  EXPECT_EQ(controls_->Calls(RemoteCall::kOpenRead), 1u);
  EXPECT_EQ(controls_->TotalCalls(), 2u) << "the open and one chunk for header and block";
}

TEST_F(CachingStoreTest, ANewEtagInAStatDropsTheCachedBytes) {
  MakeDefault();
  ASSERT_TRUE(store_->WriteAtomic("notes.txt", Pattern(kChunk, 3)).ok());
  ASSERT_TRUE(store_->Stat("notes.txt").ok());
  auto reader = OpenReader("notes.txt");
  EXPECT_EQ(ReadBack(*reader, 0, 100), Slice(Pattern(kChunk, 3), 0, 100));

  // Someone else changes the object in the store, behind the cache's back.
  ASSERT_TRUE(remote_->WriteAtomic("notes.txt", Pattern(kChunk, 4)).ok());
  ASSERT_TRUE(store_->Stat("notes.txt").ok());  // shows the new eTag
  const uint64_t before = Reads();
  EXPECT_EQ(ReadBack(*reader, 0, 100), Slice(Pattern(kChunk, 4), 0, 100));
  EXPECT_EQ(Reads(), before + 1);
  EXPECT_GE(store_->stats().invalidated, 1u);

  // A listing that shows a new eTag counts as much.
  ASSERT_TRUE(remote_->WriteAtomic("notes.txt", Pattern(kChunk, 5)).ok());
  ASSERT_TRUE(store_->List("").ok());
  EXPECT_EQ(ReadBack(*reader, 0, 100), Slice(Pattern(kChunk, 5), 0, 100));
}

TEST_F(CachingStoreTest, ChangesMadeThroughTheCacheDropTheCachedBytes) {
  MakeDefault();
  ASSERT_TRUE(store_->WriteAtomic("a", Pattern(2 * kChunk, 1)).ok());
  ASSERT_TRUE(store_->Stat("a").ok());
  auto reader = OpenReader("a");
  EXPECT_EQ(ReadBack(*reader, 0, 2 * kChunk), Pattern(2 * kChunk, 1));

  // A commit through a writer.
  {
    auto writer = store_->Open("a", OpenOptions{.write = true});
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Truncate(0).ok());
    ASSERT_TRUE((*writer)->WriteAt(0, Pattern(2 * kChunk, 2)).ok());
    ASSERT_TRUE((*writer)->Commit({}).ok());
  }
  EXPECT_EQ(ReadBack(*reader, 0, 2 * kChunk), Pattern(2 * kChunk, 2));

  // A WriteAtomic.
  ASSERT_TRUE(store_->WriteAtomic("a", Pattern(kChunk, 3)).ok());
  EXPECT_EQ(ReadBack(*OpenReader("a"), 0, 2 * kChunk), Pattern(kChunk, 3));

  // A rename over it: the name now holds the other object's bytes.
  ASSERT_TRUE(store_->WriteAtomic("b", Pattern(kChunk, 4)).ok());
  auto via_b = OpenReader("b");
  EXPECT_EQ(ReadBack(*via_b, 0, kChunk), Pattern(kChunk, 4));
  ASSERT_TRUE(store_->Rename("b", "a", RenameMode::kReplace).ok());
  EXPECT_EQ(ReadBack(*OpenReader("a"), 0, kChunk), Pattern(kChunk, 4));

  // A removal, then a new object under the same name.
  ASSERT_TRUE(store_->Remove("a").ok());
  ASSERT_TRUE(store_->WriteAtomic("a", Pattern(kChunk, 5)).ok());
  EXPECT_EQ(ReadBack(*OpenReader("a"), 0, kChunk), Pattern(kChunk, 5));
}

TEST_F(CachingStoreTest, TheLeastRecentlyUsedChunksGoAndTheBudgetHolds) {
  Make(CachingOptions{.budget_bytes = 4 * kChunk});
  const Bytes content = Pattern(16 * kChunk, 6);
  ASSERT_TRUE(store_->WriteAtomic("big", content).ok());
  auto reader = OpenReader("big");
  for (size_t i = 0; i < 16; ++i) {
    // Every other chunk, so that no read counts as sequential.
    const size_t index = (i * 5) % 16;
    EXPECT_EQ(ReadBack(*reader, index * kChunk, 100), Slice(content, index * kChunk, 100));
    EXPECT_LE(store_->stats().held_bytes, 4 * kChunk);
  }
  EXPECT_LE(store_->stats().peak_bytes, 4 * kChunk);
  const uint64_t before = Reads();
  EXPECT_EQ(ReadBack(*reader, 11 * kChunk, 100), Slice(content, 11 * kChunk, 100));  // last read
  EXPECT_EQ(Reads(), before) << "the most recent chunk is still held";
  EXPECT_EQ(ReadBack(*reader, 0, 100), Slice(content, 0, 100));  // the first one read
  EXPECT_EQ(Reads(), before + 1) << "the oldest chunk was evicted";
}

TEST_F(CachingStoreTest, ConcurrentMissesOnOneChunkFetchItOnce) {
  Make(CachingOptions{.budget_bytes = 64 * kChunk}, RemoteLikeOptions{.latency = milliseconds(20)});
  const Bytes content = Pattern(kChunk, 7);
  ASSERT_TRUE(store_->WriteAtomic("photo.jpg", content).ok());
  ASSERT_TRUE(store_->Stat("photo.jpg").ok());
  auto reader = OpenReader("photo.jpg");
  controls_->ResetCalls();
  std::vector<std::thread> threads;
  std::vector<Bytes> got(8);
  for (size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] { got[t] = ReadBack(*reader, t * 1000, 1000); });
  }
  for (std::thread& thread : threads) thread.join();
  for (size_t t = 0; t < got.size(); ++t) EXPECT_EQ(got[t], Slice(content, t * 1000, 1000));
  EXPECT_EQ(Reads(), 1u);
}

TEST_F(CachingStoreTest, SequentialReadsKeepAtLeastFourRangedReadsInFlight) {
  Make(CachingOptions{.budget_bytes = 64 * kChunk}, RemoteLikeOptions{.latency = milliseconds(20)});
  const Bytes content = Pattern(32 * kChunk, 8);
  ASSERT_TRUE(store_->WriteAtomic("scan.stl", content).ok());
  ASSERT_TRUE(store_->Stat("scan.stl").ok());
  auto reader = OpenReader("scan.stl");
  controls_->ResetCalls();
  // The plain format asks for nothing: the reader sees the stream itself.
  const size_t piece = kChunk / 2;
  for (size_t offset = 0; offset < content.size(); offset += piece) {
    ASSERT_EQ(ReadBack(*reader, offset, piece), Slice(content, offset, piece)) << offset;
  }
  EXPECT_GE(controls_->MaxReadsInFlight(), 4u);
  EXPECT_LE(Reads(), 32u + 1u) << "every chunk fetched once";
}

TEST_F(CachingStoreTest, PrefetchStartsTheRangeInParallel) {
  Make(CachingOptions{.budget_bytes = 64 * kChunk}, RemoteLikeOptions{.latency = milliseconds(20)});
  const Bytes content = Pattern(16 * kChunk, 9);
  ASSERT_TRUE(store_->WriteAtomic("v", content).ok());
  ASSERT_TRUE(store_->Stat("v").ok());
  auto reader = OpenReader("v");
  controls_->ResetCalls();
  reader->Prefetch(0, 8 * kChunk);  // what the vault's stream read-ahead asks for
  EXPECT_EQ(ReadBack(*reader, 0, 8 * kChunk), Slice(content, 0, 8 * kChunk));
  EXPECT_GE(controls_->MaxReadsInFlight(), 4u);
  EXPECT_EQ(Reads(), 8u);
}

TEST_F(CachingStoreTest, RandomReadsFetchOnlyTheChunksTheyTouch) {
  MakeDefault();
  const Bytes content = Pattern(32 * kChunk, 10);
  ASSERT_TRUE(store_->WriteAtomic("v", content).ok());
  auto reader = OpenReader("v");
  controls_->ResetCalls();
  for (size_t index : {17, 3, 29, 8, 21}) {
    EXPECT_EQ(ReadBack(*reader, index * kChunk + 7, 500), Slice(content, index * kChunk + 7, 500));
  }
  std::this_thread::sleep_for(milliseconds(50));  // a stray read-ahead would have started
  EXPECT_EQ(Reads(), 5u);
}

TEST_F(CachingStoreTest, ABudgetOfZeroPassesEveryReadThrough) {
  Make(CachingOptions{.budget_bytes = 0});
  const Bytes content = Pattern(kChunk, 11);
  ASSERT_TRUE(store_->WriteAtomic("x", content).ok());
  auto reader = OpenReader("x");
  controls_->ResetCalls();
  EXPECT_EQ(ReadBack(*reader, 0, 100), Slice(content, 0, 100));
  EXPECT_EQ(ReadBack(*reader, 0, 100), Slice(content, 0, 100));
  EXPECT_EQ(Reads(), 2u);
  EXPECT_EQ(store_->stats().fetches, 0u);
}

// The whole claim, with the vault's own reader: after the lookup, opening a file and
// reading its first block costs the open and one ranged read (header and block come
// from one chunk).
TEST(CachingStoreVaultTest, AVaultFilesFirstBlockCostsTheOpenAndOneRangedRead) {
  Bytes raw(kMasterKeySize);
  ASSERT_TRUE(FillRandom(raw).ok());
  auto master = MasterKey::FromBytes(SecretBytes::CopyOf(raw));
  ASSERT_TRUE(master.ok());
  const BlockLayout layout(32 << 10);
  const Bytes plain = Pattern(3 << 20, 12);
  auto memory = NewMemoryStore();
  {
    auto file = EncryptedFile::Create(*memory, "case.dcm", *master, layout, 0600);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    ASSERT_TRUE((*file)->Write(0, plain).ok());
    ASSERT_TRUE((*file)->Sync().ok());
  }
  auto remote = NewRemoteLikeStore(std::move(memory));
  std::shared_ptr<RemoteLikeControls> controls = remote->controls();
  auto store = NewCachingStore(std::move(remote));
  ASSERT_TRUE(store->Stat("case.dcm").ok());

  controls->ResetCalls();
  const MasterKey* masters[] = {&*master};
  auto file = EncryptedFile::Open(*store, "case.dcm", /*writable=*/false, masters, layout);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  Bytes out(4096);
  auto n = (*file)->Read(0, out);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(out, Bytes(plain.begin(), plain.begin() + 4096));
  EXPECT_EQ(controls->Calls(RemoteCall::kOpenRead), 1u);
  EXPECT_EQ(controls->Calls(RemoteCall::kReadRange), 1u);
  EXPECT_EQ(controls->TotalCalls(), 2u);
}

// The counts= option of remote-like: locations, which the remote benchmark reads.
TEST(RemoteLikeLocationTest, CountsFileHoldsTheDaemonsCalls) {
  testing::TempDir dir;
  const std::string counts = dir.path() + "/counts.json";
  {
    auto store = OpenStore("remote-like:" + dir.path() + "?latency_ms=0&counts=" + counts);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->Stat("").ok());
    ASSERT_TRUE((*store)->List("").ok());
  }
  std::ifstream in(counts);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("\"stat\":1"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("\"list\":1"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("\"read-range-max-in-flight\":0"), std::string::npos) << text.str();
}

TEST(RemoteLikeLocationTest, OptionsAreCheckedOneByOne) {
  testing::TempDir dir;
  const std::string base = "remote-like:" + dir.path();
  EXPECT_TRUE(OpenStore(base + "?latency_ms=1").ok());
  EXPECT_EQ(OpenStore(base + "?latency_ms=x").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(OpenStore(base + "?counts=relative.json").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(OpenStore(base + "?latency_ms=1&speed=9").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(OpenStore(base + "?latency_ms=1&").status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace cadcanfs
