#include "cadcanfs/vault/key_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "cadcanfs/crypto/random.h"

namespace cadcanfs {

namespace {

constexpr size_t kMaxSecretFileSize = 4096;
constexpr char kCredentialName[] = "cadcanfs.key";

Status KeyFileError(const std::string& why) { return Status::Error(Code::kInvalidArgument, why); }

// Reads a small secret file into protected memory, refusing loose permissions.
Result<SecretBytes> ReadSecretFile(const std::string& path, const char* what) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return Status::Error(Code::kPermissionDenied,
                         std::string("cannot read the ") + what + ": " + std::strerror(errno),
                         errno);
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return KeyFileError(std::string("the ") + what + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    close(fd);
    return Status::Error(
        Code::kPermissionDenied,
        std::string("the ") + what + " is readable by group or others; run chmod 600 on it");
  }
  if (st.st_size > static_cast<off_t>(kMaxSecretFileSize)) {
    close(fd);
    return KeyFileError(std::string("the ") + what + " is too large");
  }
  SecretBytes buffer(kMaxSecretFileSize);
  size_t total = 0;
  while (total < kMaxSecretFileSize) {
    ssize_t n = read(fd, buffer.data() + total, kMaxSecretFileSize - total);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return Status::FromErrno(errno, std::string("reading the ") + what);
    }
    if (n == 0) break;
    total += static_cast<size_t>(n);
  }
  close(fd);
  return SecretBytes::CopyOf(std::span<const uint8_t>(buffer.data(), total));
}

Result<SecretBytes> ParseKeyBytes(const SecretBytes& raw, const char* what) {
  if (raw.size() == kMasterKeySize) return SecretBytes::CopyOf(raw.span());
  size_t len = raw.size();
  while (len > 0 && (raw.data()[len - 1] == '\n' || raw.data()[len - 1] == '\r')) --len;
  if (len != 2 * kMasterKeySize) {
    return KeyFileError(std::string("the ") + what +
                        " must hold 32 raw bytes or 64 hex characters");
  }
  // Decoded by hand rather than with HexDecode, whose Bytes result would put the key
  // in ordinary heap memory; here it goes straight into SecretBytes.
  SecretBytes key(kMasterKeySize);
  for (size_t i = 0; i < kMasterKeySize; ++i) {
    auto nibble = [](uint8_t c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = nibble(raw.data()[2 * i]);
    int lo = nibble(raw.data()[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return KeyFileError(std::string("the ") + what +
                          " must hold 32 raw bytes or 64 hex characters");
    }
    key.data()[i] = static_cast<uint8_t>((hi << 4) | lo);
  }
  return key;
}

Result<SecretBytes> ReadKeyFrom(const std::string& path, const char* what) {
  CADCANFS_ASSIGN_OR_RETURN(SecretBytes raw, ReadSecretFile(path, what));
  return ParseKeyBytes(raw, what);
}

std::optional<std::string> CredentialPath() {
  const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
  if (dir == nullptr || *dir == '\0') return std::nullopt;
  std::string path = std::string(dir) + "/" + kCredentialName;
  if (access(path.c_str(), F_OK) != 0) return std::nullopt;
  return path;
}

Result<LoadedKey> FromKek(SecretBytes kek, std::optional<KdfParams> kdf) {
  CADCANFS_ASSIGN_OR_RETURN(MasterKey master, MasterKey::FromBytes(std::move(kek)));
  return LoadedKey{std::move(master), std::move(kdf)};
}

Result<LoadedKey> FromPassphrase(const std::string& path, const KdfParams& kdf) {
  CADCANFS_ASSIGN_OR_RETURN(SecretBytes pass, ReadPassphraseFile(path));
  CADCANFS_ASSIGN_OR_RETURN(SecretBytes kek, Scrypt(pass, kdf.salt, kdf.scrypt, kMasterKeySize));
  return FromKek(std::move(kek), kdf);
}

Status NoKeyGiven() {
  return Status::Error(Code::kInvalidArgument,
                       "no master key given: use --key-file, a systemd credential named "
                       "cadcanfs.key, or --passphrase-file");
}

}  // namespace

Result<SecretBytes> ReadKeyFile(const std::string& path) { return ReadKeyFrom(path, "key file"); }

Result<SecretBytes> ReadPassphraseFile(const std::string& path) {
  CADCANFS_ASSIGN_OR_RETURN(SecretBytes raw, ReadSecretFile(path, "passphrase file"));
  size_t len = raw.size();
  if (len > 0 && raw.data()[len - 1] == '\n') --len;
  if (len < 8) {
    return KeyFileError("the passphrase must be at least 8 characters long");
  }
  return SecretBytes::CopyOf(std::span<const uint8_t>(raw.data(), len));
}

namespace {

// Sources 1 and 2 (key file, systemd credential), which need no vault parameters.
// Returns nullopt when neither is configured.
Result<std::optional<LoadedKey>> LoadRawKey(const KeyOptions& options) {
  std::optional<std::string> path = options.key_file;
  const char* what = "key file";
  if (!path) {
    path = CredentialPath();
    what = "systemd credential";
  }
  if (!path) return std::optional<LoadedKey>();
  CADCANFS_ASSIGN_OR_RETURN(SecretBytes kek, ReadKeyFrom(*path, what));
  CADCANFS_ASSIGN_OR_RETURN(LoadedKey key, FromKek(std::move(kek), std::nullopt));
  return std::optional<LoadedKey>(std::move(key));
}

}  // namespace

Result<LoadedKey> LoadKeyForVault(const KeyOptions& options, const VaultConfig& config) {
  CADCANFS_ASSIGN_OR_RETURN(std::optional<LoadedKey> raw, LoadRawKey(options));
  if (raw) return std::move(*raw);
  if (options.passphrase_file) {
    // Try each passphrase entry: during a rotation the vault can hold two.
    for (const KeyEntry& entry : config.keys) {
      if (!entry.kdf) continue;
      CADCANFS_ASSIGN_OR_RETURN(LoadedKey key,
                                FromPassphrase(*options.passphrase_file, *entry.kdf));
      if (key.master.id() == entry.kek_id) return key;
    }
    return Status::Error(Code::kWrongKey, "wrong key for this vault");
  }
  return NoKeyGiven();
}

Result<LoadedKey> LoadKeyForNewVault(const KeyOptions& options) {
  CADCANFS_ASSIGN_OR_RETURN(std::optional<LoadedKey> raw, LoadRawKey(options));
  if (raw) return std::move(*raw);
  if (options.passphrase_file) {
    KdfParams kdf;
    kdf.salt.resize(32);
    CADCANFS_RETURN_IF_ERROR(FillRandom(kdf.salt));
    return FromPassphrase(*options.passphrase_file, kdf);
  }
  return NoKeyGiven();
}

Status WriteNewKeyFile(const std::string& path) {
  CADCANFS_ASSIGN_OR_RETURN(SecretBytes key, RandomSecret(kMasterKeySize));
  SecretBytes text(2 * kMasterKeySize + 1);
  static constexpr char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < kMasterKeySize; ++i) {
    text.data()[2 * i] = static_cast<uint8_t>(kDigits[key.data()[i] >> 4]);
    text.data()[2 * i + 1] = static_cast<uint8_t>(kDigits[key.data()[i] & 0xf]);
  }
  text.data()[2 * kMasterKeySize] = '\n';
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == EEXIST) {
      return Status::Error(Code::kAlreadyExists,
                           "the key file already exists; refusing to "
                           "overwrite it",
                           errno);
    }
    return Status::FromErrno(errno, "cannot create the key file");
  }
  // The umask may have narrowed the mode further; it can never widen it.
  ssize_t n = write(fd, text.data(), text.size());
  bool ok = n == static_cast<ssize_t>(text.size()) && fsync(fd) == 0;
  int saved = errno;
  close(fd);
  if (!ok) {
    unlink(path.c_str());
    return Status::FromErrno(saved, "cannot write the key file");
  }
  return Status::Ok();
}

}  // namespace cadcanfs
