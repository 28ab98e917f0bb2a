// Round trips through EncryptedFile against a plain in-memory model.
#include "cadcanfs/fs/encrypted_file.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "testing/forwarding_store.h"
#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

using testing::PatternBytes;
using testing::TempVault;

class EncryptedFileTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  EncryptedFileTest() : vault_(GetParam()) {}
  uint32_t block() const { return GetParam(); }
  TempVault vault_;
};

TEST_P(EncryptedFileTest, SizesAroundBlockBoundariesRoundTrip) {
  const size_t sizes[] = {0, 1, block() - 1, block(), block() + 1, 10 * 1024 * 1024 + 7};
  int i = 0;
  for (size_t size : sizes) {
    Bytes content = PatternBytes(size, static_cast<uint32_t>(size));
    // Built in two steps: GCC 12 warns about operator+ here (a false stringop-overflow).
    std::string name = "f";
    name += std::to_string(i++);
    std::string path = vault_.CreateFile(name, content);
    vault_.Reopen();
    auto back = vault_.ReadAll(path);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, content) << "size " << size;
  }
}

TEST_P(EncryptedFileTest, SparseWriteReadsZerosInTheGap) {
  std::string path = vault_.CreateFile("sparse", {});
  auto file = vault_.vault().OpenFile(path, true);
  ASSERT_TRUE(file.ok());
  Bytes tail = PatternBytes(100, 1);
  const uint64_t far = 5 * uint64_t{block()} + 17;
  ASSERT_TRUE((*file)->Write(far, tail).ok());
  EXPECT_EQ((*file)->size(), far + 100);
  Bytes all(far + 100);
  ASSERT_EQ(*(*file)->Read(0, all), all.size());
  EXPECT_EQ(Bytes(all.begin(), all.begin() + far), Bytes(far, 0));
  EXPECT_EQ(Bytes(all.begin() + far, all.end()), tail);
}

TEST_P(EncryptedFileTest, RandomWritesTruncatesAndReadsMatchAModel) {
  std::string path = vault_.CreateFile("model", {});
  auto file = vault_.vault().OpenFile(path, true);
  ASSERT_TRUE(file.ok());
  Bytes model;
  std::mt19937 rng(GetParam());
  for (int step = 0; step < 300; ++step) {
    int op = rng() % 10;
    if (op < 6) {
      uint64_t offset = rng() % (4 * block() + 3);
      Bytes data = PatternBytes(1 + rng() % (2 * block()), rng());
      ASSERT_TRUE((*file)->Write(offset, data).ok());
      if (model.size() < offset + data.size()) model.resize(offset + data.size(), 0);
      std::copy(data.begin(), data.end(), model.begin() + offset);
    } else if (op < 8) {
      uint64_t size = rng() % (5 * block());
      ASSERT_TRUE((*file)->Truncate(size).ok());
      model.resize(size, 0);
    } else {
      uint64_t offset = rng() % (model.size() + 10);
      Bytes out(rng() % (3 * block()) + 1);
      auto n = (*file)->Read(offset, out);
      ASSERT_TRUE(n.ok()) << n.status().ToString();
      size_t expect = offset >= model.size() ? 0 : std::min(out.size(), model.size() - offset);
      ASSERT_EQ(*n, expect);
      EXPECT_TRUE(std::equal(out.begin(), out.begin() + *n, model.begin() + offset));
    }
    ASSERT_EQ((*file)->size(), model.size());
  }
  file->reset();
  auto back = vault_.ReadAll(path);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, model);
  auto verify = vault_.vault().OpenFile(path, false);
  EXPECT_TRUE((*verify)->VerifyAllBlocks().ok());
}

TEST_P(EncryptedFileTest, InPlaceWriteChangesOnlyTouchedBlocks) {
  Bytes content = PatternBytes(8 * block(), 3);
  std::string path = vault_.CreateFile("inplace", content);
  Bytes before = testing::ReadRaw(vault_.root() + "/" + path);
  auto file = vault_.vault().OpenFile(path, true);
  ASSERT_TRUE((*file)->Write(3 * uint64_t{block()} + 10, Bytes(5, 0xEE)).ok());
  Bytes after = testing::ReadRaw(vault_.root() + "/" + path);
  ASSERT_EQ(before.size(), after.size());
  BlockLayout layout(block());
  for (uint64_t i = 0; i < 8; ++i) {
    uint64_t at = layout.CipherOffsetOfBlock(i);
    bool same = std::equal(before.begin() + at, before.begin() + at + layout.stored_block_size(),
                           after.begin() + at);
    EXPECT_EQ(same, i != 3) << "block " << i;
  }
}

// A disk that is full beyond `limit` bytes of every object: writes below it land, a
// write reaching past it lands its part below and fails with ENOSPC (a short write).
class FullDiskFile final : public testing::ForwardingStoreFile {
 public:
  FullDiskFile(std::unique_ptr<StoreFile> base, uint64_t limit)
      : ForwardingStoreFile(std::move(base)), limit_(limit) {}
  Status WriteAt(uint64_t offset, ByteSpan data) override {
    if (offset + data.size() <= limit_) return base().WriteAt(offset, data);
    if (offset < limit_) (void)base().WriteAt(offset, data.first(limit_ - offset));
    return Status::FromErrno(ENOSPC, "write");
  }

 private:
  uint64_t limit_;
};

class FullDiskStore final : public testing::ForwardingStore {
 public:
  FullDiskStore(Store& base, uint64_t limit) : ForwardingStore(base), limit_(limit) {}
  Result<std::unique_ptr<StoreFile>> Open(std::string_view path,
                                          const OpenOptions& options) override {
    CADCANFS_ASSIGN_OR_RETURN(auto file, ForwardingStore::Open(path, options));
    return std::unique_ptr<StoreFile>(new FullDiskFile(std::move(file), limit_));
  }

 private:
  uint64_t limit_;
};

// Records the prefetch hints a file gives its store.
class PrefetchRecordingFile final : public testing::ForwardingStoreFile {
 public:
  PrefetchRecordingFile(std::unique_ptr<StoreFile> base,
                        std::vector<std::pair<uint64_t, uint64_t>>& hints)
      : ForwardingStoreFile(std::move(base)), hints_(hints) {}
  void Prefetch(uint64_t offset, uint64_t length) override { hints_.emplace_back(offset, length); }

 private:
  std::vector<std::pair<uint64_t, uint64_t>>& hints_;
};

class PrefetchRecordingStore final : public testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Result<std::unique_ptr<StoreFile>> Open(std::string_view path,
                                          const OpenOptions& options) override {
    CADCANFS_ASSIGN_OR_RETURN(auto file, ForwardingStore::Open(path, options));
    return std::unique_ptr<StoreFile>(new PrefetchRecordingFile(std::move(file), hints));
  }
  std::vector<std::pair<uint64_t, uint64_t>> hints;
};

// Opening hints the header and first blocks; a streaming reader keeps the ciphertext
// ahead of it requested, and random reads ask for nothing beyond what they read.
TEST_P(EncryptedFileTest, StreamingReadsPrefetchAheadAndRandomReadsDoNot) {
  const uint64_t size = 24 << 20;
  std::string path = vault_.CreateFile("stream", PatternBytes(size, 5));
  PrefetchRecordingStore recording(vault_.vault().store());
  auto file = EncryptedFile::Open(recording, path, false, vault_.vault().masters(),
                                  vault_.vault().layout());
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_EQ(recording.hints.size(), 1u);
  EXPECT_EQ(recording.hints[0].first, 0u);

  Bytes chunk(1 << 20);
  const uint64_t random_offsets[] = {7 << 20, 2 << 20, 19 << 20, 11 << 20};
  for (uint64_t offset : random_offsets) ASSERT_TRUE((*file)->Read(offset, chunk).ok());
  EXPECT_EQ(recording.hints.size(), 1u) << "random reads must not prefetch";

  const BlockLayout& layout = vault_.vault().layout();
  for (uint64_t offset = 0; offset < size; offset += chunk.size()) {
    ASSERT_TRUE((*file)->Read(offset, chunk).ok());
    if (offset == 0) continue;
    // After every streaming read, the ciphertext at least 4 MiB past it (or to the end
    // of the file) has been requested.
    const uint64_t read_end =
        layout.CipherOffsetOfBlock(layout.BlockIndexOfPlainOffset(offset + chunk.size()));
    std::vector<std::pair<uint64_t, uint64_t>> hints = recording.hints;
    std::sort(hints.begin(), hints.end());
    uint64_t requested_to = read_end;  // contiguous coverage from the read's end on
    for (const auto& [from, length] : hints) {
      if (from <= requested_to) requested_to = std::max(requested_to, from + length);
    }
    EXPECT_GE(requested_to, read_end + (4 << 20)) << "after reading at " << offset;
  }
  // Batches of at least half the window, not a hint per read.
  EXPECT_LE(recording.hints.size(), 1u + size / (4 << 20) + 1);
}

// A growing write on a full disk fails with ENOSPC and leaves every stored byte as it
// was, so the file still reads back whole: the tail is written before the old last
// block is re-sealed, and a partial tail is cut off again.
TEST_P(EncryptedFileTest, GrowingWriteOnAFullDiskLeavesTheFileIntact) {
  Bytes content = PatternBytes(2 * block() + block() / 2, 7);
  std::string path = vault_.CreateFile("full", content);
  const std::string raw_path = vault_.root() + "/" + path;
  const Bytes before = testing::ReadRaw(raw_path);
  FullDiskStore full(vault_.vault().store(), before.size() + 100);
  const uint64_t offsets[] = {content.size(), content.size() - 10, block() + 3u};
  for (uint64_t offset : offsets) {
    auto file =
        EncryptedFile::Open(full, path, true, vault_.vault().masters(), vault_.vault().layout());
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    Status s = (*file)->Write(offset, PatternBytes(3 * block(), 9));
    EXPECT_EQ(s.code(), Code::kNoSpace) << "offset " << offset;
    EXPECT_EQ((*file)->size(), content.size());
    file->reset();
    EXPECT_EQ(testing::ReadRaw(raw_path), before) << "offset " << offset;
    auto back = vault_.ReadAll(path);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, content);
  }
  // The same file object goes on working after a failed write: a write that fits
  // re-seals the last block from what is stored, not from the failed write's data.
  auto file =
      EncryptedFile::Open(full, path, true, vault_.vault().masters(), vault_.vault().layout());
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*file)->Write(content.size() - 4, PatternBytes(3 * block(), 9)).code(),
            Code::kNoSpace);
  ASSERT_TRUE((*file)->Write(content.size() - 4, Bytes{1, 2, 3, 4}).ok());
  file->reset();
  Bytes expected = content;
  std::copy_n(Bytes{1, 2, 3, 4}.begin(), 4, expected.end() - 4);
  auto back = vault_.ReadAll(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, expected);
}

// Appending in pieces smaller than a block, across block edges, as tar does: each
// piece re-seals the partial last block, from memory rather than from the store.
TEST_P(EncryptedFileTest, SmallAppendsAcrossBlockEdgesRoundTrip) {
  std::string path = vault_.CreateFile("appends", {});
  auto file = vault_.vault().OpenFile(path, true);
  ASSERT_TRUE(file.ok());
  Bytes model;
  const size_t pieces[] = {10240, 2048, 4096, 1, block() - 1, 10240, 3 * block() + 5, 7};
  uint32_t seed = 1;
  for (size_t piece : pieces) {
    Bytes data = PatternBytes(piece, seed++);
    auto at = (*file)->Append(data);
    ASSERT_TRUE(at.ok()) << at.status().ToString();
    EXPECT_EQ(*at, model.size());
    model.insert(model.end(), data.begin(), data.end());
  }
  // A rewrite inside the last block, then a shrink and a regrow.
  ASSERT_TRUE((*file)->Write(model.size() - 3, Bytes{9, 9, 9}).ok());
  std::fill(model.end() - 3, model.end(), 9);
  ASSERT_TRUE((*file)->Truncate(model.size() - 100).ok());
  model.resize(model.size() - 100);
  ASSERT_TRUE((*file)->Append(Bytes(50, 0x77)).ok());
  model.insert(model.end(), 50, 0x77);
  file->reset();
  auto back = vault_.ReadAll(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, model);
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, EncryptedFileTest, ::testing::Values(4096u, 32768u));

}  // namespace
}  // namespace cadcanfs
