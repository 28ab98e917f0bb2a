// TokenStore: the refresh token at rest, encrypted, in one small 0600 file.
//
// File layout (version 1), all of it authenticated:
//   "CCTS" | version u8 = 1 | settings length u32 BE | settings JSON (login URL,
//   tenant, client id, scope: not secret, so readable for `logout` and support) |
//   nonce (12) | AES-256-GCM(refresh token) | tag (16)
// The header and the settings are the GCM additional data. The key is
// MasterKey::token_store_key() = HKDF(KEK, "cadcanfs v1 token-store").
// Writes are atomic: a temp file in the same directory, fsync, rename, fsync of the
// directory, so a crash leaves the old token or the new one, never half of either.
//
// Thread safety: Save and Load may run concurrently; saves are serialised.
#ifndef CADCANFS_GRAPH_TOKEN_STORE_H_
#define CADCANFS_GRAPH_TOKEN_STORE_H_

#include <mutex>
#include <string>

#include "cadcanfs/common/status.h"
#include "cadcanfs/crypto/secret.h"
#include "cadcanfs/graph/auth.h"

namespace cadcanfs::graph {

struct StoredLogin {
  LoginSettings settings;
  SecretBytes refresh_token;
};

class TokenStore {
 public:
  // REQUIRES: key.size() == 32.
  TokenStore(std::string path, SecretBytes key);

  // Replaces the stored login atomically; the file gets mode 0600.
  Status Save(const LoginSettings& settings, const SecretBytes& refresh_token);
  // kNotFound when there is no file; kAuthenticationFailed for a wrong key or a
  // damaged file; kCorrupt for a file that is not a token store at all.
  Result<StoredLogin> Load() const;
  // Deletes the file (logout). kNotFound when there was none; kCorrupt (and nothing
  // deleted) when the file is not a token store.
  static Status Remove(const std::string& path);

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  SecretBytes key_;
  std::mutex save_mu_;
};

}  // namespace cadcanfs::graph

#endif  // CADCANFS_GRAPH_TOKEN_STORE_H_
