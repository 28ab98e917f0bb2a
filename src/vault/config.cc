#include "cadcanfs/vault/config.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cadcanfs/crypto/keywrap.h"

namespace cadcanfs {

namespace {

using nlohmann::json;

constexpr char kFormatName[] = "cadcanfs-vault";
constexpr char kContentCipher[] = "AES-256-GCM";
constexpr char kNameCipher[] = "AES-256-SIV";
constexpr char kNameEncoding[] = "base32-lower";
constexpr char kKeyWrap[] = "AES-256-KW";
constexpr size_t kSaltSize = 32;

Status Corrupt(const std::string& what) {
  return Status::Error(Code::kCorrupt, "vault config is invalid: " + what);
}

bool IsPowerOfTwo(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

template <size_t N>
bool DecodeFixedHex(const json& j, std::array<uint8_t, N>& out) {
  if (!j.is_string()) return false;
  auto bytes = HexDecode(j.get<std::string>());
  if (!bytes || bytes->size() != N) return false;
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return true;
}

bool HasExactlyKeys(const json& obj, std::initializer_list<const char*> keys) {
  if (!obj.is_object() || obj.size() != keys.size()) return false;
  return std::all_of(keys.begin(), keys.end(), [&](const char* k) { return obj.contains(k); });
}

std::string KdfCanonical(const std::optional<KdfParams>& kdf) {
  if (!kdf) return "none";
  return "scrypt:" + HexEncode(kdf->salt) + ":" + std::to_string(kdf->scrypt.n) + ":" +
         std::to_string(kdf->scrypt.r) + ":" + std::to_string(kdf->scrypt.p);
}

Result<KdfParams> ParseKdf(const json& j) {
  if (!HasExactlyKeys(j, {"type", "salt", "n", "r", "p"}) || j["type"] != "scrypt" ||
      !j["salt"].is_string() || !j["n"].is_number_unsigned() || !j["r"].is_number_unsigned() ||
      !j["p"].is_number_unsigned()) {
    return Corrupt("bad kdf entry");
  }
  KdfParams kdf;
  auto salt = HexDecode(j["salt"].get<std::string>());
  if (!salt || salt->size() != kSaltSize) return Corrupt("bad kdf salt");
  kdf.salt = std::move(*salt);
  kdf.scrypt.n = j["n"].get<uint64_t>();
  kdf.scrypt.r = j["r"].get<uint32_t>();
  kdf.scrypt.p = j["p"].get<uint32_t>();
  // Refuse parameters below our 64 MiB floor (an attacker could weaken them) and absurd ones.
  uint64_t memory = 128 * uint64_t{kdf.scrypt.r} * kdf.scrypt.n;
  if (kdf.scrypt.n < 2 || (kdf.scrypt.n & (kdf.scrypt.n - 1)) != 0 || kdf.scrypt.r == 0 ||
      kdf.scrypt.p == 0 || kdf.scrypt.p > 16 || memory < (uint64_t{64} << 20) ||
      memory > (uint64_t{4} << 30)) {
    return Corrupt("scrypt parameters are outside the accepted range");
  }
  return kdf;
}

Result<KeyEntry> ParseKeyEntry(const json& j) {
  bool has_kdf = j.is_object() && j.contains("kdf");
  bool shape_ok = has_kdf ? HasExactlyKeys(j, {"kek_id", "kdf", "wrapped_name_key", "mac"})
                          : HasExactlyKeys(j, {"kek_id", "wrapped_name_key", "mac"});
  if (!shape_ok) return Corrupt("bad key entry");
  KeyEntry entry;
  if (!DecodeFixedHex(j["kek_id"], entry.kek_id) || !DecodeFixedHex(j["mac"], entry.mac)) {
    return Corrupt("bad key id or mac");
  }
  if (!j["wrapped_name_key"].is_string()) return Corrupt("bad wrapped name key");
  auto wrapped = HexDecode(j["wrapped_name_key"].get<std::string>());
  if (!wrapped || wrapped->size() != kNameKeySize + kKeyWrapOverhead) {
    return Corrupt("bad wrapped name key");
  }
  entry.wrapped_name_key = std::move(*wrapped);
  if (has_kdf) {
    CADCANFS_ASSIGN_OR_RETURN(KdfParams kdf, ParseKdf(j["kdf"]));
    entry.kdf = std::move(kdf);
  }
  return entry;
}

}  // namespace

const KeyEntry* VaultConfig::FindKey(const KekId& id) const {
  for (const KeyEntry& e : keys) {
    if (e.kek_id == id) return &e;
  }
  return nullptr;
}

const KdfParams* VaultConfig::PassphraseKdf() const {
  for (const KeyEntry& e : keys) {
    if (e.kdf) return &*e.kdf;
  }
  return nullptr;
}

std::string SerializeConfig(const VaultConfig& config) {
  json keys = json::array();
  for (const KeyEntry& e : config.keys) {
    json entry = {{"kek_id", HexEncode(e.kek_id)},
                  {"wrapped_name_key", HexEncode(e.wrapped_name_key)},
                  {"mac", HexEncode(e.mac)}};
    if (e.kdf) {
      entry["kdf"] = {{"type", "scrypt"},
                      {"salt", HexEncode(e.kdf->salt)},
                      {"n", e.kdf->scrypt.n},
                      {"r", e.kdf->scrypt.r},
                      {"p", e.kdf->scrypt.p}};
    }
    keys.push_back(std::move(entry));
  }
  json j = {{"format", kFormatName},
            {"version", config.version},
            {"vault_id", config.vault_id_hex()},
            {"content_cipher", kContentCipher},
            {"block_size", config.block_size},
            {"name_cipher", kNameCipher},
            {"name_encoding", kNameEncoding},
            {"key_wrap", kKeyWrap},
            {"keys", std::move(keys)}};
  return j.dump(2) + "\n";
}

Result<VaultConfig> ParseConfig(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Corrupt("not a JSON object");
  if (!j.contains("format") || j["format"] != kFormatName) return Corrupt("not a cadcanfs vault");
  if (!j.contains("version") || !j["version"].is_number_integer()) return Corrupt("no version");
  if (j["version"].get<int>() != kFormatVersion) {
    return Status::Error(Code::kUnsupported, "vault format version " +
                                                 std::to_string(j["version"].get<int>()) +
                                                 " is not supported by this build");
  }
  if (!HasExactlyKeys(j, {"format", "version", "vault_id", "content_cipher", "block_size",
                          "name_cipher", "name_encoding", "key_wrap", "keys"})) {
    return Corrupt("unexpected or missing fields");
  }
  if (j["content_cipher"] != kContentCipher || j["name_cipher"] != kNameCipher ||
      j["name_encoding"] != kNameEncoding || j["key_wrap"] != kKeyWrap) {
    return Corrupt("unsupported cipher suite");
  }
  VaultConfig config;
  if (!DecodeFixedHex(j["vault_id"], config.vault_id)) return Corrupt("bad vault id");
  if (!j["block_size"].is_number_unsigned()) return Corrupt("bad block size");
  uint64_t block_size = j["block_size"].get<uint64_t>();
  if (block_size < kMinBlockSize || block_size > kMaxBlockSize ||
      !IsPowerOfTwo(static_cast<uint32_t>(block_size))) {
    return Corrupt("block size must be a power of two from 4 KiB to 1 MiB");
  }
  config.block_size = static_cast<uint32_t>(block_size);
  if (!j["keys"].is_array() || j["keys"].empty()) return Corrupt("no key entries");
  for (const json& k : j["keys"]) {
    CADCANFS_ASSIGN_OR_RETURN(KeyEntry entry, ParseKeyEntry(k));
    config.keys.push_back(std::move(entry));
  }
  return config;
}

std::string CanonicalConfigBytes(const VaultConfig& config, const KeyEntry& entry) {
  std::string out = "cadcanfs-config-v1\n";
  out += "version=" + std::to_string(config.version) + "\n";
  out += "vault_id=" + config.vault_id_hex() + "\n";
  out += std::string("content_cipher=") + kContentCipher + "\n";
  out += "block_size=" + std::to_string(config.block_size) + "\n";
  out += std::string("name_cipher=") + kNameCipher + "\n";
  out += std::string("name_encoding=") + kNameEncoding + "\n";
  out += std::string("key_wrap=") + kKeyWrap + "\n";
  out += "kek_id=" + HexEncode(entry.kek_id) + "\n";
  out += "kdf=" + KdfCanonical(entry.kdf) + "\n";
  out += "wrapped_name_key=" + HexEncode(entry.wrapped_name_key) + "\n";
  return out;
}

Result<KeyEntry> MakeKeyEntry(const VaultConfig& config, const MasterKey& master,
                              const SecretBytes& name_key, std::optional<KdfParams> kdf) {
  KeyEntry entry;
  entry.kek_id = master.id();
  entry.kdf = std::move(kdf);
  CADCANFS_ASSIGN_OR_RETURN(entry.wrapped_name_key, AesKeyWrap(master.wrap_key(), name_key));
  entry.mac = HmacSha256(master.config_mac_key(), AsBytes(CanonicalConfigBytes(config, entry)));
  return entry;
}

Result<SecretBytes> UnlockConfig(const VaultConfig& config, const MasterKey& master) {
  const KeyEntry* entry = config.FindKey(master.id());
  if (entry == nullptr) return Status::Error(Code::kWrongKey, "wrong key for this vault");
  Digest expected =
      HmacSha256(master.config_mac_key(), AsBytes(CanonicalConfigBytes(config, *entry)));
  if (!ConstantTimeEqual(expected, entry->mac)) {
    return Status::Error(Code::kAuthenticationFailed,
                         "vault config failed authentication (edited or damaged)");
  }
  auto name_key = AesKeyUnwrap(master.wrap_key(), entry->wrapped_name_key);
  if (!name_key.ok()) {
    return Status::Error(Code::kAuthenticationFailed, "vault name key failed authentication");
  }
  return std::move(name_key).value();
}

}  // namespace cadcanfs
