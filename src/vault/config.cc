#include "cadcanfs/vault/config.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <vector>

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

// A rotation needs two entries; a handful more is slack. Each passphrase entry costs an
// scrypt run when opening, so a forged config must not be able to list many.
constexpr size_t kMaxKeyEntries = 8;
// scrypt cost bounds, as 128 * r * n (memory) and 128 * r * n * p (work). Opening tries
// every passphrase entry, so the total over all entries is capped too: two entries at
// the per-entry maximum (a rotation between two expensive passphrases).
constexpr uint64_t kMinScryptMemory = uint64_t{64} << 20;
constexpr uint64_t kMaxScryptWork = uint64_t{4} << 30;
constexpr uint64_t kMaxTotalScryptWork = 2 * kMaxScryptWork;

bool IsPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

// A JSON unsigned integer no larger than `max`, or nullopt. Checked before any
// narrowing: get<int>() of 4294967297 would otherwise read as 1.
std::optional<uint64_t> UnsignedAtMost(const json& j, uint64_t max) {
  if (!j.is_number_unsigned()) return std::nullopt;
  uint64_t v = j.get<uint64_t>();
  if (v > max) return std::nullopt;
  return v;
}

// Hex exactly as SerializeConfig writes it: lowercase digits only, so every value has
// one spelling (uppercase would pass the MAC, which covers the lowercase form).
std::optional<Bytes> DecodeCanonicalHex(const json& j) {
  if (!j.is_string()) return std::nullopt;
  const std::string& text = j.get_ref<const std::string&>();
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  return HexDecode(text);
}

template <size_t N>
bool DecodeFixedHex(const json& j, std::array<uint8_t, N>& out) {
  auto bytes = DecodeCanonicalHex(j);
  if (!bytes || bytes->size() != N) return false;
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return true;
}

// Parses `text` as JSON, refusing an object that names one member twice (the parser
// would silently keep the last one, so two readers could disagree).
json ParseWithoutDuplicateKeys(std::string_view text) {
  std::vector<std::set<std::string>> open_objects;
  bool duplicate = false;
  json::parser_callback_t check = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() && parsed.is_string() &&
            !open_objects.back().insert(parsed.get<std::string>()).second) {
          duplicate = true;
        }
        break;
      default:
        break;
    }
    return true;
  };
  json j = json::parse(text, check, /*allow_exceptions=*/false);
  if (duplicate) return json(json::value_t::discarded);
  return j;
}

bool HasExactlyKeys(const json& obj, std::span<const std::string_view> keys) {
  if (!obj.is_object() || obj.size() != keys.size()) return false;
  return std::all_of(keys.begin(), keys.end(),
                     [&](std::string_view k) { return obj.contains(std::string(k)); });
}

bool HasExactlyKeys(const json& obj, std::initializer_list<std::string_view> keys) {
  return HasExactlyKeys(obj, std::span<const std::string_view>(keys.begin(), keys.size()));
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
  auto salt = DecodeCanonicalHex(j["salt"]);
  if (!salt || salt->size() != kSaltSize) return Corrupt("bad kdf salt");
  kdf.salt = std::move(*salt);
  // Refuse parameters below our 64 MiB floor (an attacker could weaken them) and ones
  // that would make opening the vault a denial of service: scrypt's work grows with
  // 128 * r * n * p, capped at 4 GiB per entry (and by ParseConfig across entries).
  // Every value is range-checked as a 64-bit number before it is narrowed, and the
  // bounds keep the products far from overflowing.
  auto n = UnsignedAtMost(j["n"], kMaxScryptWork / 128);
  auto r = UnsignedAtMost(j["r"], kMaxScryptWork / 128);
  auto p = UnsignedAtMost(j["p"], 16);
  if (!n || !r || !p || *n < 2 || !IsPowerOfTwo(*n) || *r == 0 || *p == 0) {
    return Corrupt("scrypt parameters are outside the accepted range");
  }
  uint64_t memory = 128 * *r * *n;  // at most 2^7 * 2^25 * 2^25: no overflow
  if (memory < kMinScryptMemory || memory > kMaxScryptWork || memory * *p > kMaxScryptWork) {
    return Corrupt("scrypt parameters are outside the accepted range");
  }
  kdf.scrypt.n = *n;
  kdf.scrypt.r = static_cast<uint32_t>(*r);
  kdf.scrypt.p = static_cast<uint32_t>(*p);
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
  auto wrapped = DecodeCanonicalHex(j["wrapped_name_key"]);
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
  if (config.version >= kFlatLayoutVersion) j["layout"] = LayoutName(config.layout);
  return j.dump(2) + "\n";
}

std::string_view LayoutName(VaultLayout layout) {
  return layout == VaultLayout::kFlat ? "flat" : "tree";
}

std::optional<VaultLayout> ParseLayoutName(std::string_view name) {
  if (name == "tree") return VaultLayout::kTree;
  if (name == "flat") return VaultLayout::kFlat;
  return std::nullopt;
}

Result<VaultConfig> ParseConfig(std::string_view text) {
  const json j = ParseWithoutDuplicateKeys(text);
  if (j.is_discarded() || !j.is_object()) return Corrupt("not a JSON object");
  if (!j.contains("format") || j["format"] != kFormatName) return Corrupt("not a cadcanfs vault");
  // Only a non-negative integer is a version at all; compare it as 64 bits, never narrowed.
  if (!j.contains("version") || !j["version"].is_number_unsigned()) return Corrupt("no version");
  uint64_t version = j["version"].get<uint64_t>();
  if (version < static_cast<uint64_t>(kOldestFormatVersion) ||
      version > static_cast<uint64_t>(kFormatVersion)) {
    return Status::Error(Code::kUnsupported, "vault format version " + std::to_string(version) +
                                                 " is not supported by this build");
  }
  std::vector<std::string_view> fields = {"format",         "version",    "vault_id",
                                          "content_cipher", "block_size", "name_cipher",
                                          "name_encoding",  "key_wrap",   "keys"};
  // Version 3 names its layout; earlier versions have only the tree layout.
  if (version >= static_cast<uint64_t>(kFlatLayoutVersion)) fields.push_back("layout");
  if (!HasExactlyKeys(j, fields)) return Corrupt("unexpected or missing fields");
  if (j["content_cipher"] != kContentCipher || j["name_cipher"] != kNameCipher ||
      j["name_encoding"] != kNameEncoding || j["key_wrap"] != kKeyWrap) {
    return Corrupt("unsupported cipher suite");
  }
  VaultConfig config;
  config.version = static_cast<int>(version);  // in range: checked above
  if (j.contains("layout")) {
    std::optional<VaultLayout> layout;
    if (j["layout"].is_string()) layout = ParseLayoutName(j["layout"].get<std::string>());
    // Version 3 exists for the flat layout: a version-3 tree vault is not one we write.
    if (layout != VaultLayout::kFlat) return Corrupt("unsupported layout");
    config.layout = *layout;
  }
  if (!DecodeFixedHex(j["vault_id"], config.vault_id)) return Corrupt("bad vault id");
  auto block_size = UnsignedAtMost(j["block_size"], kMaxBlockSize);
  if (!block_size || *block_size < kMinBlockSize || !IsPowerOfTwo(*block_size)) {
    return Corrupt("block size must be a power of two from 4 KiB to 1 MiB");
  }
  config.block_size = static_cast<uint32_t>(*block_size);
  if (!j["keys"].is_array() || j["keys"].empty()) return Corrupt("no key entries");
  if (j["keys"].size() > kMaxKeyEntries) return Corrupt("too many key entries");
  uint64_t total_work = 0;
  for (const json& k : j["keys"]) {
    CADCANFS_ASSIGN_OR_RETURN(KeyEntry entry, ParseKeyEntry(k));
    if (entry.kdf) {
      total_work += 128 * uint64_t{entry.kdf->scrypt.r} * entry.kdf->scrypt.n * entry.kdf->scrypt.p;
    }
    config.keys.push_back(std::move(entry));
  }
  if (total_work > kMaxTotalScryptWork) return Corrupt("the key entries' scrypt cost is too high");
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
  // Only from version 3, so the MACs of earlier configs stay valid.
  if (config.version >= kFlatLayoutVersion) {
    out += "layout=" + std::string(LayoutName(config.layout)) + "\n";
  }
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
