// keygen, init and info: creating keys and vaults, and describing a vault.
#include <sys/stat.h>

#include <iostream>

#include "cadcanfs/store/open_store.h"
#include "exit_codes.h"
#include "support.h"

namespace cadcanfs::cli {

int RunKeygen(const std::vector<std::string>& argv) {
  Args args({}, {});
  if (std::string e = args.Parse(argv); !e.empty()) return UsageError(e);
  if (args.positional().size() != 1) return UsageError("keygen takes exactly one FILE");
  Status s = WriteNewKeyFile(args.positional()[0]);
  if (!s.ok()) return Fail(s, s.code() == Code::kAlreadyExists ? Stage::kData : Stage::kKey);
  std::cout << "wrote a new 256-bit master key (mode 0600); keep it outside the vault and "
               "back it up separately\n";
  return exit_code::kOk;
}

int RunInit(const std::vector<std::string>& argv) {
  Args args(WithStoreFlags({"block-size", "layout"}), WithStoreSwitches({}));
  if (std::string e = args.Parse(argv); !e.empty()) return UsageError(e);
  if (args.positional().size() != 1) return UsageError("init takes exactly one VAULT directory");
  uint32_t block_size = kDefaultBlockSize;
  if (auto value = args.Value("block-size")) {
    std::optional<uint64_t> parsed = ParseDecimal(*value);
    if (!parsed || *parsed < kMinBlockSize || *parsed > kMaxBlockSize ||
        (*parsed & (*parsed - 1)) != 0) {
      return UsageError("--block-size must be a power of two from 4096 to 1048576");
    }
    block_size = static_cast<uint32_t>(*parsed);
  }
  const std::string& location = args.positional()[0];
  auto local = LocalPathOfStore(location);
  const bool is_local = local.ok() && *local;
  if (is_local) mkdir((*local)->c_str(), 0700);  // an existing empty directory is fine too
  // Local vaults keep one ciphertext folder per plaintext folder, which backup operators
  // like; remote stores limit whole paths, which only the flat layout always fits.
  VaultLayout layout = is_local ? VaultLayout::kTree : VaultLayout::kFlat;
  if (auto value = args.Value("layout")) {
    std::optional<VaultLayout> parsed = ParseLayoutName(*value);
    if (!parsed) return UsageError("--layout must be tree or flat");
    layout = *parsed;
  }
  int code = exit_code::kOk;
  StoreLocation where = StoreLocationFrom(args, location);
  where.create_folder = true;
  std::unique_ptr<Store> store = OpenStoreOrReport(where, code);
  if (!store) return code;
  auto key = LoadKeyForNewVault(KeyOptionsFrom(args));
  if (!key.ok()) return Fail(key.status(), Stage::kKey);
  Status s = Vault::Initialize(*store, *key, block_size, layout);
  if (!s.ok()) return Fail(s, Stage::kData);
  std::cout << "created vault (key id " << key->master.id_hex() << ", block size " << block_size
            << ", " << LayoutName(layout) << " layout)\n";
  return exit_code::kOk;
}

int RunInfo(const std::vector<std::string>& argv) {
  // Key options only open a onedrive: location's token store: info reads no key.
  Args args(WithStoreFlags({}), WithStoreSwitches({}));
  if (std::string e = args.Parse(argv); !e.empty()) return UsageError(e);
  if (args.positional().size() != 1) return UsageError("info takes exactly one VAULT");
  int code = exit_code::kOk;
  std::unique_ptr<Store> store =
      OpenStoreOrReport(StoreLocationFrom(args, args.positional()[0]), code);
  if (!store) return code;
  auto config = Vault::ReadConfig(*store);
  if (!config.ok()) return Fail(config.status(), Stage::kVault);
  std::cout << "format version: " << config->version << "\n"
            << "vault id:       " << config->vault_id_hex() << "\n"
            << "layout:         " << LayoutName(config->layout) << "\n"
            << "content:        AES-256-GCM, " << config->block_size
            << "-byte blocks, random 96-bit nonces\n"
            << "file keys:      random 256-bit per file, wrapped with AES-256-KW (RFC 3394)\n"
            << "names:          AES-256-SIV, parent directory id as associated data, "
               "lowercase base32\n"
            << "master keys:    " << config->keys.size() << "\n";
  for (const KeyEntry& k : config->keys) {
    std::cout << "  key id " << HexEncode(k.kek_id)
              << (k.kdf ? " (passphrase, scrypt N=" + std::to_string(k.kdf->scrypt.n) +
                              " r=" + std::to_string(k.kdf->scrypt.r) +
                              " p=" + std::to_string(k.kdf->scrypt.p) + ")"
                        : " (key file or credential)")
              << "\n";
  }
  if (config->keys.size() > 1) {
    std::cout << "note: more than one master key: a key rotation is in progress or was "
                 "interrupted; rerun cadcanfs rekey to finish it\n";
  }
  return exit_code::kOk;
}

}  // namespace cadcanfs::cli
