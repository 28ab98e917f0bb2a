#include "cadcanfs/vault/file_header.h"

#include <algorithm>
#include <cstring>

#include "cadcanfs/crypto/kdf.h"
#include "cadcanfs/crypto/keywrap.h"
#include "cadcanfs/crypto/random.h"

namespace cadcanfs {

namespace {

constexpr uint8_t kMagic[8] = {'c', 'a', 'd', 'c', 'a', 'n', 'f', 's'};
constexpr size_t kFixedPartSize = 32;
constexpr uint16_t kHeaderVersion = 1;
constexpr size_t kWrappedDekSize = kDataKeySize + kKeyWrapOverhead;
constexpr size_t kSlotMacOffset = kKekIdSize + kWrappedDekSize;

std::array<uint8_t, kFixedPartSize> FixedPart(const FileId& file_id) {
  std::array<uint8_t, kFixedPartSize> out{};
  std::memcpy(out.data(), kMagic, sizeof(kMagic));
  PutU16BE(out.data() + 8, kHeaderVersion);
  std::copy(file_id.begin(), file_id.end(), out.begin() + 16);
  return out;
}

Digest SlotMac(const SecretBytes& dek, ByteSpan fixed_part, ByteSpan kek_id_and_wrap) {
  auto mac_key = HkdfSha256(dek, "cadcanfs v1 header-mac", 32);
  Bytes message(fixed_part.begin(), fixed_part.end());
  message.insert(message.end(), kek_id_and_wrap.begin(), kek_id_and_wrap.end());
  return HmacSha256(mac_key.value(), message);
}

Result<FileKeys> DeriveFileKeys(const FileId& file_id, const SecretBytes& dek) {
  CADCANFS_ASSIGN_OR_RETURN(SecretBytes content, HkdfSha256(dek, "cadcanfs v1 content", 32));
  FileKeys keys;
  keys.file_id = file_id;
  keys.content_key = std::make_shared<const GcmKey>(std::move(content));
  return keys;
}

bool IsEmptySlot(ByteSpan slot) {
  return std::all_of(slot.begin(), slot.end(), [](uint8_t b) { return b == 0; });
}

Status CheckFixedPart(ByteSpan header) {
  if (header.size() < kFileHeaderSize) {
    return Status::Error(Code::kCorrupt, "file header is truncated");
  }
  if (std::memcmp(header.data(), kMagic, sizeof(kMagic)) != 0) {
    return Status::Error(Code::kCorrupt, "file header has a bad magic number");
  }
  if (GetU16BE(header.data() + 8) != kHeaderVersion) {
    return Status::Error(Code::kCorrupt, "file header has an unsupported version");
  }
  return Status::Ok();
}

// The fixed part as the slot MACs cover it: the pending-resize field reads as zero, so
// recording a resize does not mean re-sealing the key slots.
std::array<uint8_t, kFixedPartSize> MacedFixedPart(ByteSpan header) {
  std::array<uint8_t, kFixedPartSize> out{};
  std::copy_n(header.begin(), kFixedPartSize, out.begin());
  std::fill_n(out.begin() + kPendingSizeOffset, kPendingSizeLength, 0);
  return out;
}

}  // namespace

Result<std::array<uint8_t, kKeySlotSize>> SealKeySlot(const FileId& file_id, const SecretBytes& dek,
                                                      const MasterKey& master) {
  std::array<uint8_t, kKeySlotSize> slot{};
  std::copy(master.id().begin(), master.id().end(), slot.begin());
  CADCANFS_ASSIGN_OR_RETURN(Bytes wrapped, AesKeyWrap(master.wrap_key(), dek));
  std::copy(wrapped.begin(), wrapped.end(), slot.begin() + kKekIdSize);
  auto fixed = FixedPart(file_id);
  Digest mac = SlotMac(dek, fixed, ByteSpan(slot.data(), kSlotMacOffset));
  std::copy(mac.begin(), mac.end(), slot.begin() + kSlotMacOffset);
  return slot;
}

Result<std::pair<HeaderBytes, OpenedHeader>> CreateFileHeader(const MasterKey& master) {
  OpenedHeader opened;
  CADCANFS_RETURN_IF_ERROR(FillRandom(opened.keys.file_id));
  CADCANFS_ASSIGN_OR_RETURN(opened.dek, RandomSecret(kDataKeySize));
  CADCANFS_ASSIGN_OR_RETURN(auto slot, SealKeySlot(opened.keys.file_id, opened.dek, master));
  CADCANFS_ASSIGN_OR_RETURN(FileKeys keys, DeriveFileKeys(opened.keys.file_id, opened.dek));
  opened.keys = std::move(keys);
  opened.kek_id = master.id();
  HeaderBytes header{};
  auto fixed = FixedPart(opened.keys.file_id);
  std::copy(fixed.begin(), fixed.end(), header.begin());
  std::copy(slot.begin(), slot.end(), header.begin() + kKeySlotOffset);
  return std::make_pair(header, std::move(opened));
}

Result<OpenedHeader> OpenFileHeader(ByteSpan header, std::span<const MasterKey* const> masters) {
  CADCANFS_RETURN_IF_ERROR(CheckFixedPart(header));
  FileId file_id;
  std::copy_n(header.begin() + 16, kFileIdSize, file_id.begin());
  const auto fixed = MacedFixedPart(header);
  bool named_a_supplied_key = false;
  for (int index = 0; index < static_cast<int>(kKeySlotCount); ++index) {
    ByteSpan slot = header.subspan(kKeySlotOffset + index * kKeySlotSize, kKeySlotSize);
    if (IsEmptySlot(slot)) continue;
    KekId kek_id;
    std::copy_n(slot.begin(), kKekIdSize, kek_id.begin());
    for (const MasterKey* master : masters) {
      if (master->id() != kek_id) continue;
      named_a_supplied_key = true;
      auto dek = AesKeyUnwrap(master->wrap_key(), slot.subspan(kKekIdSize, kWrappedDekSize));
      if (!dek.ok()) continue;
      Digest mac = SlotMac(*dek, fixed, slot.subspan(0, kSlotMacOffset));
      if (!ConstantTimeEqual(mac, slot.subspan(kSlotMacOffset, kSha256Size))) continue;
      CADCANFS_ASSIGN_OR_RETURN(FileKeys keys, DeriveFileKeys(file_id, *dek));
      OpenedHeader opened;
      opened.keys = std::move(keys);
      opened.dek = std::move(dek).value();
      opened.slot = index;
      opened.kek_id = kek_id;
      return opened;
    }
  }
  if (!named_a_supplied_key) {
    return Status::Error(Code::kWrongKey, "file header is wrapped by a key that was not supplied");
  }
  return Status::Error(Code::kAuthenticationFailed, "file header failed authentication");
}

uint64_t PeekPendingSize(ByteSpan header) {
  if (header.size() < kFileHeaderSize) return 0;
  uint64_t size = 0;
  for (size_t i = 0; i < kPendingSizeLength; ++i)
    size = (size << 8) | header[kPendingSizeOffset + i];
  return size;
}

std::array<uint8_t, kPendingSizeLength> EncodePendingSize(uint64_t cipher_size) {
  std::array<uint8_t, kPendingSizeLength> out{};
  for (size_t i = 0; i < kPendingSizeLength; ++i) {
    out[kPendingSizeLength - 1 - i] = static_cast<uint8_t>(cipher_size >> (8 * i));
  }
  return out;
}

Result<FileId> PeekFileId(ByteSpan header) {
  CADCANFS_RETURN_IF_ERROR(CheckFixedPart(header));
  FileId id;
  std::copy_n(header.begin() + 16, kFileIdSize, id.begin());
  return id;
}

std::optional<KekId> PeekSlotKeyId(ByteSpan header, int index) {
  if (header.size() < kFileHeaderSize || index < 0 || index >= static_cast<int>(kKeySlotCount)) {
    return std::nullopt;
  }
  ByteSpan slot = header.subspan(kKeySlotOffset + index * kKeySlotSize, kKeySlotSize);
  if (IsEmptySlot(slot)) return std::nullopt;
  KekId id;
  std::copy_n(slot.begin(), kKekIdSize, id.begin());
  return id;
}

}  // namespace cadcanfs
