// Pseudonyms for the designer view: case codes and patient-name replacement.
//
// A case code is "C-" followed by the first 6 characters of the Crockford base32
// encoding (alphabet 0-9A-Z without I, L, O, U) of HMAC-SHA256(case-code key, case
// folder name). The key comes from the vault (keys.h), so a code is stable across
// mounts and key rotations, and cannot be computed from a name without the key.
//
// Collisions: 6 characters are 30 bits; two case folders of one directory share a code
// with probability about n^2 / 2^31 (0.05% for 1,000 cases). Such folders are all shown
// with longer codes (8, 10, ... characters of the same encoding) until they differ;
// CodeOf always gives the 6-character form, and Reverse accepts either.
//
// Names inside a case (docs/access-policy.md, "Pseudonymized view" is the reference):
// a case folder is named Last_First[_anything], fields separated by '_'. Replaced,
// ASCII case-insensitively, by the case code wherever they occur:
//   - the whole case folder name;
//   - if the first two fields are free of digits: Last and First joined by "", "_", " ",
//     "-", ".", "," or ", " in either order;
// and, only as whole words (bounded by the name's ends or a character that is not an
// ASCII letter or digit), each of the first two fields that is free of digits and at
// least 2 characters long. Longer matches win; the scan runs left to right.
//
// Thread safety: CaseCoder is immutable after construction; the functions are pure.
#ifndef CADCANFS_ACCESS_PSEUDONYM_H_
#define CADCANFS_ACCESS_PSEUDONYM_H_

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cadcanfs/crypto/secret.h"

namespace cadcanfs::access {

inline constexpr size_t kCaseCodeChars = 6;
inline constexpr char kCaseCodePrefix[] = "C-";

class CaseCoder {
 public:
  // REQUIRES: key is the case-code key (keys.h), 32 bytes.
  explicit CaseCoder(SecretBytes key) : key_(std::move(key)) {}

  // "C-" + `chars` characters (6 to 51).
  std::string CodeOf(std::string_view case_folder, size_t chars = kCaseCodeChars) const;

  // The codes the case folders of one directory are shown under, parallel to
  // `case_folders` (which must be distinct): CodeOf, lengthened where two collide.
  std::vector<std::string> DisplayCodes(std::span<const std::string> case_folders) const;

  // Indices of the folders in `case_folders` shown under `code` or whose 6-character
  // code is `code` (case-insensitive). Two or more only on a collision.
  std::vector<size_t> Reverse(std::string_view code,
                              std::span<const std::string> case_folders) const;

 private:
  SecretBytes key_;
};

// True for "C-" followed by 6 or more Crockford base32 characters.
bool LooksLikeCaseCode(std::string_view name);

// The strings replaced in names inside a case, in the order they are tried.
struct PatientNameTokens {
  std::vector<std::string> substrings;  // matched anywhere
  std::vector<std::string> words;       // matched only as whole words
};
PatientNameTokens PatientNameTokensOf(std::string_view case_folder);

// `name` with every patient-name token replaced by `code`.
std::string PseudonymizeName(std::string_view name, const PatientNameTokens& tokens,
                             std::string_view code);

// The names the entries of one directory inside a pseudonymized case are shown under,
// parallel to `names` (which must be distinct). An entry whose name holds no token keeps
// it. A replaced name that would equal another entry's shown name gets "~2", "~3", ...
// before its extension (the first free one, in byte order of the real names), so
// every entry stays reachable and the mapping is one to one.
std::vector<std::string> PseudonymizeListing(std::span<const std::string> names,
                                             const PatientNameTokens& tokens,
                                             std::string_view code);

}  // namespace cadcanfs::access

#endif  // CADCANFS_ACCESS_PSEUDONYM_H_
