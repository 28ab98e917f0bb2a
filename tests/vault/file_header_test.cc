#include "cadcanfs/vault/file_header.h"

#include <gtest/gtest.h>

#include "cadcanfs/crypto/random.h"

namespace cadcanfs {
namespace {

MasterKey NewMaster() { return MasterKey::FromBytes(RandomSecret(32).value()).value(); }

TEST(FileHeaderTest, CreateThenOpen) {
  MasterKey master = NewMaster();
  auto created = CreateFileHeader(master);
  ASSERT_TRUE(created.ok());
  const MasterKey* keys[] = {&master};
  auto opened = OpenFileHeader(created->first, keys);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(opened->keys.file_id, created->second.keys.file_id);
  EXPECT_EQ(opened->slot, 0);
  EXPECT_EQ(HexEncode(opened->dek.span()), HexEncode(created->second.dek.span()));
}

TEST(FileHeaderTest, EveryFileGetsItsOwnKeyAndId) {
  MasterKey master = NewMaster();
  auto a = CreateFileHeader(master);
  auto b = CreateFileHeader(master);
  EXPECT_NE(a->second.keys.file_id, b->second.keys.file_id);
  EXPECT_NE(HexEncode(a->second.dek.span()), HexEncode(b->second.dek.span()));
}

TEST(FileHeaderTest, EveryByteIsProtected) {
  MasterKey master = NewMaster();
  auto created = CreateFileHeader(master);
  const MasterKey* keys[] = {&master};
  // Flip each byte of the fixed part and slot 0 in turn; none may open, but for the
  // pending-resize hint, which is only ever a size to try (every block still has to
  // authenticate under it).
  for (size_t i = 0; i < kKeySlotOffset + kKeySlotSize; ++i) {
    if (i >= kPendingSizeOffset && i < kPendingSizeOffset + kPendingSizeLength) continue;
    HeaderBytes h = created->first;
    h[i] ^= 0x01;
    EXPECT_FALSE(OpenFileHeader(h, keys).ok()) << "byte " << i;
  }
}

TEST(FileHeaderTest, PendingSizeRoundTripsAndLeavesTheSlotsValid) {
  MasterKey master = NewMaster();
  auto created = CreateFileHeader(master);
  const MasterKey* keys[] = {&master};
  HeaderBytes h = created->first;
  EXPECT_EQ(PeekPendingSize(h), 0u);
  auto field = EncodePendingSize(0x123456789abcULL);
  std::copy(field.begin(), field.end(), h.begin() + kPendingSizeOffset);
  EXPECT_EQ(PeekPendingSize(h), 0x123456789abcULL);
  EXPECT_TRUE(OpenFileHeader(h, keys).ok());
}

TEST(FileHeaderTest, UnknownKeyIsWrongKey) {
  MasterKey master = NewMaster();
  MasterKey other = NewMaster();
  auto created = CreateFileHeader(master);
  const MasterKey* keys[] = {&other};
  EXPECT_EQ(OpenFileHeader(created->first, keys).status().code(), Code::kWrongKey);
}

TEST(FileHeaderTest, SecondSlotOpensWithSecondKey) {
  MasterKey old_key = NewMaster();
  MasterKey new_key = NewMaster();
  auto created = CreateFileHeader(old_key);
  HeaderBytes h = created->first;
  auto slot = SealKeySlot(created->second.keys.file_id, created->second.dek, new_key);
  std::copy(slot->begin(), slot->end(), h.begin() + kKeySlotOffset + kKeySlotSize);
  const MasterKey* only_new[] = {&new_key};
  auto opened = OpenFileHeader(h, only_new);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(opened->slot, 1);
  EXPECT_EQ(PeekSlotKeyId(h, 0), old_key.id());
}

}  // namespace
}  // namespace cadcanfs
