// audit verify, audit show, case-code and policy check: the offline side of the
// access layer (src/access). Only `case-code --reverse` and `audit show --resolve`
// print plaintext names, to the terminal of someone holding the master key.
#include "access_commands.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "cadcanfs/access/audit_log.h"
#include "cadcanfs/access/audit_verify.h"
#include "cadcanfs/access/keys.h"
#include "cadcanfs/access/policy.h"
#include "cadcanfs/access/pseudonym.h"
#include "cadcanfs/common/bytes.h"
#include "cadcanfs/store/store.h"
#include "exit_codes.h"
#include "support.h"

namespace cadcanfs::cli {

namespace {

using access::AuditRecord;
using access::CaseCoder;
using access::VerifyOutcome;
using access::VerifyReport;

constexpr char kCredentialName[] = "cadcanfs.key";

// The master key from --key-file or the systemd credential, which need no vault. A
// passphrase needs the vault's scrypt salt, hence --vault.
std::optional<MasterKey> MasterKeyWithoutVault(const Args& args, int& code) {
  std::optional<std::string> path = args.Value("key-file");
  if (!path) {
    const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
    std::string credential = dir && *dir ? std::string(dir) + "/" + kCredentialName : "";
    if (!credential.empty() && ::access(credential.c_str(), F_OK) == 0) path = credential;
  }
  if (!path) {
    code = args.Value("passphrase-file")
               ? UsageError("a passphrase key needs --vault VAULT, whose config holds its salt")
               : Fail(Status::Error(Code::kInvalidArgument,
                                    "no master key given: use --key-file, a systemd credential "
                                    "named cadcanfs.key, or --passphrase-file with --vault"),
                      Stage::kKey);
    return std::nullopt;
  }
  auto kek = ReadKeyFile(*path);
  if (!kek.ok()) {
    code = Fail(kek.status(), Stage::kKey);
    return std::nullopt;
  }
  auto master = MasterKey::FromBytes(std::move(kek).value());
  if (!master.ok()) {
    code = Fail(master.status(), Stage::kKey);
    return std::nullopt;
  }
  return std::move(master).value();
}

std::optional<SecretBytes> AuditKeyFrom(const MasterKey& master, int& code) {
  auto key = access::DeriveAuditKey(master);
  if (!key.ok()) {
    code = Fail(key.status(), Stage::kKey);
    return std::nullopt;
  }
  return std::move(key).value();
}

// Reads every LOG argument; on failure prints the error and sets `code`.
std::optional<std::vector<std::string>> ReadLogs(const std::vector<std::string>& paths, int& code) {
  std::vector<std::string> texts;
  for (size_t i = 0; i < paths.size(); ++i) {
    std::ifstream in(paths[i], std::ios::binary);
    if (!in) {
      code = Fail(
          Status::Error(Code::kNotFound, "cannot read audit log file " + std::to_string(i + 1) +
                                             " of " + std::to_string(paths.size())),
          Stage::kData);
      return std::nullopt;
    }
    std::ostringstream text;
    text << in.rdbuf();
    texts.push_back(text.str());
  }
  return texts;
}

std::string Where(const VerifyReport& report, size_t files) {
  std::string where = files > 1 ? "file " + std::to_string(report.file_index + 1) + " of " +
                                      std::to_string(files) + ", "
                                : "";
  return where + "line " + std::to_string(report.line);
}

int ExitCodeFor(VerifyOutcome outcome) {
  switch (outcome) {
    case VerifyOutcome::kIntact:
      return exit_code::kOk;
    case VerifyOutcome::kOpenEnd:
      return exit_code::kAuditOpenEnd;
    case VerifyOutcome::kTruncated:
      return exit_code::kAuditTruncated;
    case VerifyOutcome::kTampered:
      return exit_code::kAuditTampered;
    case VerifyOutcome::kWrongKey:
      return exit_code::kWrongKey;
  }
  return exit_code::kInternal;
}

int RunAuditVerify(const Args& args, const std::vector<std::string>& logs) {
  int code = exit_code::kOk;
  std::optional<SecretBytes> key;
  if (auto vault_path = args.Value("vault")) {
    auto vault =
        OpenVaultOrReport(StoreLocationFrom(args, *vault_path), KeyOptionsFrom(args), code);
    if (!vault) return code;
    key = AuditKeyFrom(vault->master(), code);
  } else if (auto master = MasterKeyWithoutVault(args, code)) {
    key = AuditKeyFrom(*master, code);
  }
  if (!key) return code;
  auto texts = ReadLogs(logs, code);
  if (!texts) return code;
  VerifyReport report = access::VerifyAuditLogs(*texts, *key);
  for (const std::string& note : report.notes) std::cout << "note: " << note << "\n";
  if (report.outcome == VerifyOutcome::kIntact) {
    std::cout << "audit log intact: " << report.lines << " lines, seq " << report.first_seq
              << " to " << report.last_seq << ", in " << logs.size() << " file"
              << (logs.size() == 1 ? "" : "s") << "\n";
    return exit_code::kOk;
  }
  std::cerr << "cadcanfs: " << Where(report, logs.size()) << ": " << report.problem << "\n";
  return ExitCodeFor(report.outcome);
}

// Walks a vault once, on demand, to map case codes and file ids back to paths.
class VaultIndex {
 public:
  VaultIndex(Vault& vault, const CaseCoder& coder, int case_depth)
      : vault_(vault), coder_(coder), case_depth_(case_depth) {}

  std::vector<std::string> CasePaths(std::string_view code) {
    if (!cases_built_) {
      CollectCases("", "", 1);
      cases_built_ = true;
    }
    std::vector<std::string> names;
    for (const auto& [name, path] : cases_) names.push_back(name);
    std::vector<std::string> found;
    for (size_t i : coder_.Reverse(code, names)) found.push_back(cases_[i].second);
    return found;
  }

  std::optional<std::string> FilePath(std::string_view file_id) {
    if (!files_built_) {
      CollectFiles("", "");
      files_built_ = true;
    }
    auto it = files_.find(std::string(file_id));
    if (it == files_.end()) return std::nullopt;
    return it->second;
  }

  access::AuditNameResolver Resolver() {
    return access::AuditNameResolver{[this](std::string_view c) { return CasePaths(c); },
                                     [this](std::string_view f) { return FilePath(f); }};
  }

 private:
  // Directories at depth `case_depth_` below the root, with their plaintext paths.
  // `cipher_dir` is the entry of the directory to search.
  void CollectCases(const std::string& cipher_dir, const std::string& plain_dir, int depth) {
    auto entries = vault_.EntriesDirOf(cipher_dir);
    if (!entries.ok()) return;
    auto listing = vault_.ListDirectory(*entries);
    if (!listing.ok()) return;
    for (const PlainDirEntry& e : listing->entries) {
      if (e.type != ObjectType::kDirectory) continue;
      std::string plain = plain_dir.empty() ? e.name : plain_dir + "/" + e.name;
      if (depth == case_depth_) {
        cases_.emplace_back(e.name, plain);
      } else {
        CollectCases(JoinStorePath(*entries, e.stored_name), plain, depth + 1);
      }
    }
  }

  void CollectFiles(const std::string& cipher_dir, const std::string& plain_dir) {
    auto entries = vault_.EntriesDirOf(cipher_dir);
    if (!entries.ok()) return;
    auto listing = vault_.ListDirectory(*entries);
    if (!listing.ok()) return;
    for (const PlainDirEntry& e : listing->entries) {
      std::string cipher = JoinStorePath(*entries, e.stored_name);
      std::string plain = plain_dir.empty() ? e.name : plain_dir + "/" + e.name;
      if (e.type == ObjectType::kDirectory) {
        CollectFiles(cipher, plain);
      } else if (e.type == ObjectType::kFile) {
        auto file = vault_.OpenFile(cipher, false);
        if (file.ok()) files_.emplace(HexEncode((*file)->file_id()), plain);
      }
    }
  }

  Vault& vault_;
  const CaseCoder& coder_;
  const int case_depth_;
  bool cases_built_ = false;
  bool files_built_ = false;
  std::vector<std::pair<std::string, std::string>> cases_;  // folder name, plaintext path
  std::map<std::string, std::string> files_;                // file id hex, plaintext path
};

std::optional<int> CaseDepthFrom(const Args& args) {
  auto value = args.Value("case-depth");
  if (!value) return access::kDefaultCaseDepth;
  std::optional<uint64_t> depth = ParseDecimal(*value);
  if (!depth || *depth < 2 || *depth > access::kMaxCaseDepth) return std::nullopt;
  return static_cast<int>(*depth);
}

int RunAuditShow(const Args& args, const std::vector<std::string>& logs) {
  int code = exit_code::kOk;
  std::optional<int> depth = CaseDepthFrom(args);
  if (!depth) return UsageError("--case-depth must be a number from 2 to 16");
  std::unique_ptr<Vault> vault;
  std::optional<SecretBytes> key;
  std::unique_ptr<CaseCoder> coder;
  if (auto resolve = args.Value("resolve")) {
    vault = OpenVaultOrReport(StoreLocationFrom(args, *resolve), KeyOptionsFrom(args), code);
    if (!vault) return code;
    key = AuditKeyFrom(vault->master(), code);
    auto case_key = access::DeriveCaseCodeKey(vault->config(), vault->master());
    if (!case_key.ok()) return Fail(case_key.status(), Stage::kKey);
    coder = std::make_unique<CaseCoder>(std::move(case_key).value());
  } else if (auto master = MasterKeyWithoutVault(args, code)) {
    key = AuditKeyFrom(*master, code);
  }
  if (!key) return code;
  auto texts = ReadLogs(logs, code);
  if (!texts) return code;
  std::optional<VaultIndex> index;
  access::AuditNameResolver resolver;
  if (vault) {
    index.emplace(*vault, *coder, *depth);
    resolver = index->Resolver();
  }
  for (const std::string& text : *texts) {
    std::istringstream lines(text);
    std::string line;
    uint64_t number = 0;
    while (std::getline(lines, line)) {
      ++number;
      auto record = access::ParseAuditLine(line);
      if (!record.ok()) {
        std::cout << "UNREADABLE line " << number << "\n";
        continue;
      }
      bool authentic = access::AuditLineMac(*key, record->body) == record->mac;
      std::cout << access::FormatAuditRecord(*record, authentic, vault ? &resolver : nullptr)
                << "\n";
    }
  }
  return exit_code::kOk;
}

}  // namespace

int RunAudit(const std::vector<std::string>& argv) {
  if (argv.empty() || (argv[0] != "verify" && argv[0] != "show")) {
    return UsageError("audit takes a subcommand: verify or show");
  }
  const bool verify = argv[0] == "verify";
  Args args(verify ? WithStoreFlags({"vault"}) : WithStoreFlags({"resolve", "case-depth"}),
            WithStoreSwitches({}));
  if (std::string e = args.Parse(std::vector<std::string>(argv.begin() + 1, argv.end()));
      !e.empty()) {
    return UsageError(e);
  }
  if (args.positional().empty()) return UsageError("audit " + argv[0] + " needs at least one LOG");
  return verify ? RunAuditVerify(args, args.positional()) : RunAuditShow(args, args.positional());
}

int RunCaseCode(const std::vector<std::string>& argv) {
  Args args(WithStoreFlags({"reverse", "case-depth"}), WithStoreSwitches({}));
  if (std::string e = args.Parse(argv); !e.empty()) return UsageError(e);
  const auto& pos = args.positional();
  const std::optional<std::string> reverse = args.Value("reverse");
  if (pos.size() != (reverse ? 1u : 2u)) {
    return UsageError("usage: case-code VAULT PATH, or case-code VAULT --reverse CODE");
  }
  std::optional<int> depth = CaseDepthFrom(args);
  if (!depth) return UsageError("--case-depth must be a number from 2 to 16");
  if (reverse && !access::LooksLikeCaseCode(*reverse)) {
    return UsageError("a case code is C- followed by at least 6 letters and digits");
  }
  int code = exit_code::kOk;
  auto vault = OpenVaultOrReport(StoreLocationFrom(args, pos[0]), KeyOptionsFrom(args), code);
  if (!vault) return code;
  auto case_key = access::DeriveCaseCodeKey(vault->config(), vault->master());
  if (!case_key.ok()) return Fail(case_key.status(), Stage::kKey);
  CaseCoder coder(std::move(case_key).value());
  if (reverse) {
    VaultIndex index(*vault, coder, *depth);
    std::vector<std::string> paths = index.CasePaths(*reverse);
    if (paths.empty()) {
      return Fail(Status::Error(Code::kNotFound, "no case folder at depth " +
                                                     std::to_string(*depth) + " has this code"),
                  Stage::kData);
    }
    for (const std::string& path : paths) std::cout << path << "\n";
    return exit_code::kOk;
  }
  std::string plain = pos[1];
  while (plain.size() > 1 && plain.back() == '/') plain.pop_back();
  auto cipher = vault->CipherPathOf(plain);
  if (!cipher.ok()) return Fail(cipher.status(), Stage::kData);
  auto info = vault->store().Stat(*cipher);
  if (!info.ok()) return Fail(info.status(), Stage::kData);
  std::cout << coder.CodeOf(plain.substr(plain.rfind('/') + 1)) << "\n";
  return exit_code::kOk;
}

int RunPolicy(const std::vector<std::string>& argv) {
  Args args({}, {});
  if (std::string e = args.Parse(argv); !e.empty()) return UsageError(e);
  const auto& pos = args.positional();
  if (pos.size() != 2 || pos[0] != "check") return UsageError("usage: policy check FILE");
  auto policy = access::Policy::LoadFile(pos[1]);
  if (!policy.ok()) {
    std::cerr << "cadcanfs: " << policy.status().message() << "\n";
    return exit_code::kBadPolicy;
  }
  std::cout << "policy valid: " << policy->principal_count() << " principals, "
            << policy->assignment_count() << " assignments, cases at depth " << policy->case_depth()
            << ", root bypass " << (policy->root_bypass() ? "on" : "off") << "\n";
  return exit_code::kOk;
}

}  // namespace cadcanfs::cli
