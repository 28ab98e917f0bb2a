#include "cadcanfs/vault/names.h"

#include <cerrno>
#include <optional>

#include "cadcanfs/crypto/kdf.h"
#include "cadcanfs/crypto/random.h"
#include "cadcanfs/crypto/siv.h"

namespace cadcanfs {

namespace {

constexpr char kConfigName[] = "cadcanfs.conf";
constexpr std::string_view kSymlinkDomain = "cadcanfs v2 symlink";
constexpr std::string_view kBoundSymlinkDomain = "cadcanfs v1 symlink";
constexpr size_t kSymlinkNonceSize = 16;
constexpr std::string_view kXattrNameDomain = "cadcanfs v1 xattr name";
constexpr std::string_view kXattrValueDomain = "cadcanfs v1 xattr value";
constexpr size_t kLongHashEncodedLength = Base32EncodedLength(kSha256Size);

bool IsBase32Text(std::string_view s) {
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'))) return false;
  }
  return !s.empty();
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool IsLongHashPart(std::string_view s) {
  return s.size() == kLongHashEncodedLength && IsBase32Text(s);
}

}  // namespace

StoredNameKind ClassifyStoredName(std::string_view stored) {
  if (stored == kDirIdFileName) return StoredNameKind::kDirId;
  if (stored == kConfigName || stored == kLockFileName) return StoredNameKind::kConfig;
  if (stored == kFlatDirsName) return StoredNameKind::kFlatDirs;
  if (StartsWith(stored, kTempPrefix)) return StoredNameKind::kTemp;
  std::string_view prefix = kLongNamePrefix;
  if (StartsWith(stored, prefix)) {
    std::string_view rest = stored.substr(prefix.size());
    if (IsLongHashPart(rest)) return StoredNameKind::kLongName;
    if (EndsWith(rest, kSidecarSuffix) &&
        IsLongHashPart(rest.substr(0, rest.size() - std::string_view(kSidecarSuffix).size()))) {
      return StoredNameKind::kLongNameSidecar;
    }
    return StoredNameKind::kUnknown;
  }
  return IsBase32Text(stored) ? StoredNameKind::kEncrypted : StoredNameKind::kUnknown;
}

std::string LongStoredName(std::string_view encoded) {
  return std::string(kLongNamePrefix) + Base32Encode(Sha256(AsBytes(encoded)));
}

std::string SidecarName(std::string_view long_stored) {
  return std::string(long_stored) + kSidecarSuffix;
}

Status ValidatePlainName(std::string_view name) {
  if (name.empty() || name == "." || name == "..") {
    return Status::Error(Code::kInvalidArgument, "invalid file name");
  }
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return Status::Error(Code::kInvalidArgument, "file name contains '/' or NUL");
  }
  if (name.size() > kMaxPlainNameLength) {
    return Status::Error(Code::kNameTooLong, "file name is longer than 255 bytes");
  }
  return Status::Ok();
}

Result<EncryptedName> NameCipher::Encrypt(const DirId& dir, std::string_view name) const {
  CADCANFS_RETURN_IF_ERROR(ValidatePlainName(name));
  CADCANFS_ASSIGN_OR_RETURN(Bytes sealed, SivEncrypt(key_, {dir}, AsBytes(name)));
  EncryptedName out;
  out.encoded = Base32Encode(sealed);
  out.stored =
      out.encoded.size() <= kMaxStoredNameLength ? out.encoded : LongStoredName(out.encoded);
  return out;
}

Result<std::string> NameCipher::Decrypt(const DirId& dir, std::string_view encoded) const {
  auto sealed = Base32Decode(encoded);
  if (!sealed) return Status::Error(Code::kAuthenticationFailed, "name is not valid base32");
  CADCANFS_ASSIGN_OR_RETURN(Bytes plain, SivDecrypt(key_, {dir}, *sealed));
  std::string name(AsChars(plain));
  // A name that decrypts but is not a valid name can only come from a forged key.
  if (!ValidatePlainName(name).ok()) {
    return Status::Error(Code::kAuthenticationFailed, "decrypted name is invalid");
  }
  return name;
}

Result<std::string> NameCipher::EncryptSymlinkTarget(std::string_view target) const {
  if (target.empty()) return Status::Error(Code::kNotFound, "empty symlink target");
  if (target.size() > kMaxSymlinkTargetLength) {
    return Status::Error(Code::kNameTooLong, "symlink target is too long to encrypt");
  }
  Bytes nonce(kSymlinkNonceSize);
  CADCANFS_RETURN_IF_ERROR(FillRandom(nonce));
  CADCANFS_ASSIGN_OR_RETURN(Bytes sealed,
                            SivEncrypt(key_, {AsBytes(kSymlinkDomain), nonce}, AsBytes(target)));
  nonce.insert(nonce.end(), sealed.begin(), sealed.end());
  return Base32Encode(nonce);
}

Result<std::string> NameCipher::DecryptSymlinkTarget(const DirId& dir, std::string_view stored,
                                                     bool* directory_bound) const {
  auto raw = Base32Decode(stored);
  if (!raw || raw->size() <= kSymlinkNonceSize + kSivTagSize) {
    return Status::Error(Code::kAuthenticationFailed, "symlink target is not valid");
  }
  ByteSpan all(*raw);
  ByteSpan nonce = all.subspan(0, kSymlinkNonceSize);
  ByteSpan sealed = all.subspan(kSymlinkNonceSize);
  // SIV authenticates its associated data, so at most one of the two forms opens.
  auto plain = SivDecrypt(key_, {AsBytes(kSymlinkDomain), nonce}, sealed);
  if (directory_bound != nullptr) *directory_bound = !plain.ok();
  if (!plain.ok()) plain = SivDecrypt(key_, {AsBytes(kBoundSymlinkDomain), dir, nonce}, sealed);
  if (!plain.ok()) return plain.status();
  return std::string(AsChars(*plain));
}

uint64_t SymlinkTargetLengthOfStored(uint64_t stored_length) {
  const uint64_t raw = stored_length * 5 / 8;  // unpadded base32
  const uint64_t overhead = kSymlinkNonceSize + kSivTagSize;
  return raw > overhead ? raw - overhead : 0;
}

namespace {

constexpr std::string_view kUserXattrPrefix = "user.";

// The encoded part of a stored xattr name, or nullopt if the name is not ours.
std::optional<std::string_view> EncodedXattrPart(std::string_view stored) {
  const std::string_view prefix = kStoredXattrPrefix;
  if (!StartsWith(stored, prefix)) return std::nullopt;
  return stored.substr(prefix.size());
}

}  // namespace

Result<std::string> NameCipher::EncryptXattrName(std::string_view full_name) const {
  if (!StartsWith(full_name, kUserXattrPrefix)) {
    return Status::Error(Code::kUnsupported, "only user attributes are stored", EOPNOTSUPP);
  }
  std::string_view name = full_name.substr(kUserXattrPrefix.size());
  if (name.empty()) return Status::Error(Code::kInvalidArgument, "empty attribute name");
  if (name.size() > kMaxXattrNameLength) {
    return Status::Error(Code::kNameTooLong, "attribute name is too long to encrypt", ERANGE);
  }
  CADCANFS_ASSIGN_OR_RETURN(Bytes sealed,
                            SivEncrypt(key_, {AsBytes(kXattrNameDomain)}, AsBytes(name)));
  return kStoredXattrPrefix + Base32Encode(sealed);
}

Result<std::string> NameCipher::DecryptXattrName(std::string_view stored) const {
  auto encoded = EncodedXattrPart(stored);
  if (!encoded) return Status::Error(Code::kInvalidArgument, "not a cadcanfs attribute");
  auto raw = Base32Decode(*encoded);
  if (!raw || raw->size() <= kSivTagSize) {
    return Status::Error(Code::kAuthenticationFailed, "attribute name is not valid");
  }
  CADCANFS_ASSIGN_OR_RETURN(Bytes plain, SivDecrypt(key_, {AsBytes(kXattrNameDomain)}, *raw));
  return std::string(kUserXattrPrefix) + std::string(AsChars(plain));
}

Result<Bytes> NameCipher::SealXattrValue(std::string_view stored_name, ByteSpan value) const {
  auto encoded_name = EncodedXattrPart(stored_name);
  if (!encoded_name) return Status::Error(Code::kInvalidArgument, "not a cadcanfs attribute");
  Bytes nonce(kSymlinkNonceSize);
  CADCANFS_RETURN_IF_ERROR(FillRandom(nonce));
  // A leading marker byte, because SIV refuses empty plaintexts and values may be empty.
  Bytes padded(1 + value.size(), 0);
  std::copy(value.begin(), value.end(), padded.begin() + 1);
  CADCANFS_ASSIGN_OR_RETURN(
      Bytes sealed,
      SivEncrypt(key_, {AsBytes(kXattrValueDomain), AsBytes(*encoded_name), nonce}, padded));
  nonce.insert(nonce.end(), sealed.begin(), sealed.end());
  return nonce;
}

Result<Bytes> NameCipher::OpenXattrValue(std::string_view stored_name, ByteSpan sealed) const {
  auto encoded_name = EncodedXattrPart(stored_name);
  if (!encoded_name || sealed.size() < kXattrValueOverhead) {
    return Status::Error(Code::kAuthenticationFailed, "attribute value is not valid");
  }
  CADCANFS_ASSIGN_OR_RETURN(Bytes padded,
                            SivDecrypt(key_,
                                       {AsBytes(kXattrValueDomain), AsBytes(*encoded_name),
                                        sealed.subspan(0, kSymlinkNonceSize)},
                                       sealed.subspan(kSymlinkNonceSize)));
  if (padded.empty() || padded[0] != 0) {
    return Status::Error(Code::kAuthenticationFailed, "attribute value is not valid");
  }
  return Bytes(padded.begin() + 1, padded.end());
}

}  // namespace cadcanfs
