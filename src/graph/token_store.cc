#include "cadcanfs/graph/token_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/common/unique_fd.h"
#include "cadcanfs/crypto/gcm.h"
#include "cadcanfs/crypto/random.h"

namespace cadcanfs::graph {
namespace {

constexpr char kMagic[] = "CCTS";
constexpr size_t kMagicSize = 4;
constexpr uint8_t kVersion = 1;
constexpr size_t kHeaderSize = kMagicSize + 1 + 4;
constexpr size_t kMaxFileSize = 64 * 1024;

Status Unreadable() {
  return Status::Error(Code::kAuthenticationFailed,
                       "the token store cannot be read: wrong key or a damaged file "
                       "(run cadcanfs login again)");
}

Status NotATokenStore() {
  return Status::Error(Code::kCorrupt, "the token file is not a cadcanfs token store");
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status WriteAll(int fd, ByteSpan data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "writing the token store");
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// Writes `data` to `path` atomically with mode 0600: temp file, fsync, rename, fsync dir.
Status ReplaceFileAtomically(const std::string& path, ByteSpan data) {
  const std::string temp = path + ".tmp";
  ::unlink(temp.c_str());
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) return Status::FromErrno(errno, "creating the token store");
  Status written = WriteAll(fd.get(), data);
  if (written.ok() && ::fchmod(fd.get(), 0600) != 0) {
    written = Status::FromErrno(errno, "protecting the token store");
  }
  if (written.ok() && ::fsync(fd.get()) != 0) {
    written = Status::FromErrno(errno, "syncing the token store");
  }
  if (written.ok() && ::rename(temp.c_str(), path.c_str()) != 0) {
    written = Status::FromErrno(errno, "replacing the token store");
  }
  if (!written.ok()) {
    ::unlink(temp.c_str());
    return written;
  }
  UniqueFd dir(::open(DirectoryOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() >= 0) ::fsync(dir.get());
  return Status::Ok();
}

Result<Bytes> ReadSmallFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    if (errno == ENOENT) {
      return Status::Error(Code::kNotFound, "no token store: run cadcanfs login first", ENOENT);
    }
    return Status::FromErrno(errno, "opening the token store");
  }
  Bytes data;
  uint8_t buffer[4096];
  while (true) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "reading the token store");
    }
    if (n == 0) break;
    data.insert(data.end(), buffer, buffer + n);
    if (data.size() > kMaxFileSize) return NotATokenStore();
  }
  return data;
}

std::string SettingsJson(const LoginSettings& settings) {
  nlohmann::json json = {{"login_url", settings.login_url},
                         {"tenant", settings.tenant},
                         {"client_id", settings.client_id},
                         {"scope", settings.scope}};
  return json.dump();
}

bool ReadSettings(std::string_view text, LoginSettings& settings) {
  auto json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_object()) return false;
  for (auto [name, field] :
       {std::pair{"login_url", &settings.login_url}, std::pair{"tenant", &settings.tenant},
        std::pair{"client_id", &settings.client_id}, std::pair{"scope", &settings.scope}}) {
    if (!json.contains(name) || !json[name].is_string()) return false;
    *field = json[name].get<std::string>();
  }
  return true;
}

}  // namespace

TokenStore::TokenStore(std::string path, SecretBytes key)
    : path_(std::move(path)), key_(std::move(key)) {}

Status TokenStore::Save(const LoginSettings& settings, const SecretBytes& refresh_token) {
  if (key_.size() != kGcmKeySize) return Status::Error(Code::kInternal, "token store key size");
  const std::string settings_json = SettingsJson(settings);
  Bytes file(kHeaderSize + settings_json.size() + kGcmNonceSize + refresh_token.size() +
             kGcmTagSize);
  std::memcpy(file.data(), kMagic, kMagicSize);
  file[kMagicSize] = kVersion;
  PutU32BE(file.data() + kMagicSize + 1, static_cast<uint32_t>(settings_json.size()));
  std::memcpy(file.data() + kHeaderSize, settings_json.data(), settings_json.size());
  const size_t aad_size = kHeaderSize + settings_json.size();
  uint8_t* nonce = file.data() + aad_size;
  CADCANFS_RETURN_IF_ERROR(FillRandom({nonce, kGcmNonceSize}));
  uint8_t* ciphertext = nonce + kGcmNonceSize;
  GcmKey key(SecretBytes::CopyOf(key_.span()));
  CADCANFS_RETURN_IF_ERROR(GcmSeal(key, ByteSpan(nonce, kGcmNonceSize),
                                   ByteSpan(file.data(), aad_size), refresh_token.span(),
                                   ciphertext, ciphertext + refresh_token.size()));
  std::lock_guard lock(save_mu_);
  return ReplaceFileAtomically(path_, file);
}

Result<StoredLogin> TokenStore::Load() const {
  if (key_.size() != kGcmKeySize) return Status::Error(Code::kInternal, "token store key size");
  CADCANFS_ASSIGN_OR_RETURN(Bytes file, ReadSmallFile(path_));
  if (file.size() < kHeaderSize || std::memcmp(file.data(), kMagic, kMagicSize) != 0) {
    return NotATokenStore();
  }
  if (file[kMagicSize] != kVersion) {
    return Status::Error(Code::kUnsupported, "the token store has an unsupported version");
  }
  const size_t settings_size = GetU32BE(file.data() + kMagicSize + 1);
  if (file.size() < kHeaderSize + settings_size + kGcmNonceSize + kGcmTagSize) return Unreadable();
  StoredLogin login;
  const size_t aad_size = kHeaderSize + settings_size;
  if (!ReadSettings(AsChars(ByteSpan(file.data() + kHeaderSize, settings_size)), login.settings)) {
    return Unreadable();
  }
  const uint8_t* nonce = file.data() + aad_size;
  const uint8_t* ciphertext = nonce + kGcmNonceSize;
  const size_t token_size = file.size() - aad_size - kGcmNonceSize - kGcmTagSize;
  login.refresh_token = SecretBytes(token_size);
  GcmKey key(SecretBytes::CopyOf(key_.span()));
  Status opened =
      GcmOpen(key, ByteSpan(nonce, kGcmNonceSize), ByteSpan(file.data(), aad_size),
              ByteSpan(ciphertext, token_size), ByteSpan(ciphertext + token_size, kGcmTagSize),
              login.refresh_token.data());
  if (!opened.ok()) return Unreadable();
  return login;
}

Status TokenStore::Remove(const std::string& path) {
  // Only a token store is deleted: a mistyped path must not cost the user a file.
  CADCANFS_ASSIGN_OR_RETURN(Bytes file, ReadSmallFile(path));
  if (file.size() < kHeaderSize || std::memcmp(file.data(), kMagic, kMagicSize) != 0) {
    return Status::Error(Code::kCorrupt, "the file is not a cadcanfs token store; not removed");
  }
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT)
      return Status::Error(Code::kNotFound, "there is no stored sign-in", ENOENT);
    return Status::FromErrno(errno, "removing the token store");
  }
  return Status::Ok();
}

}  // namespace cadcanfs::graph
