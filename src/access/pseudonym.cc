#include "cadcanfs/access/pseudonym.h"

#include <algorithm>
#include <map>
#include <set>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/crypto/kdf.h"

namespace cadcanfs::access {

namespace {

constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
constexpr size_t kMaxCodeChars = kSha256Size * 8 / 5;  // 51 whole 5-bit groups
constexpr size_t kPrefixLength = sizeof(kCaseCodePrefix) - 1;

// Every whole 5-bit group of `digest`, most significant bit first.
std::string CrockfordOf(const Digest& digest) {
  std::string out;
  out.reserve(kMaxCodeChars);
  for (size_t group = 0; group < kMaxCodeChars; ++group) {
    unsigned value = 0;
    for (size_t bit = group * 5; bit < group * 5 + 5; ++bit) {
      value = (value << 1) | ((digest[bit / 8] >> (7 - bit % 8)) & 1u);
    }
    out.push_back(kCrockford[value]);
  }
  return out;
}

bool IsCrockford(char c) { return std::string_view(kCrockford).find(c) != std::string_view::npos; }

char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
char AsciiUpper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }
bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool HasDigit(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool EqualsIgnoringAsciiCase(std::string_view text, size_t at, std::string_view token) {
  if (token.empty() || at + token.size() > text.size()) return false;
  for (size_t i = 0; i < token.size(); ++i) {
    if (AsciiLower(text[at + i]) != AsciiLower(token[i])) return false;
  }
  return true;
}

bool IsWordAt(std::string_view text, size_t at, size_t length) {
  bool starts = at == 0 || !IsAsciiAlnum(text[at - 1]);
  bool ends = at + length == text.size() || !IsAsciiAlnum(text[at + length]);
  return starts && ends;
}

// Longest token first, so "Smith_Jane" wins over "Smith".
void SortLongestFirst(std::vector<std::string>& tokens) {
  std::stable_sort(tokens.begin(), tokens.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  tokens.erase(std::unique(tokens.begin(), tokens.end()), tokens.end());
}

// "name.ext" + marker -> "name<marker>.ext"; a leading dot is not an extension.
std::string WithMarkerBeforeExtension(const std::string& name, const std::string& marker) {
  size_t dot = name.rfind('.');
  if (dot == std::string::npos || dot == 0) return name + marker;
  return name.substr(0, dot) + marker + name.substr(dot);
}

}  // namespace

std::string CaseCoder::CodeOf(std::string_view case_folder, size_t chars) const {
  chars = std::clamp(chars, kCaseCodeChars, kMaxCodeChars);
  return kCaseCodePrefix + CrockfordOf(HmacSha256(key_, AsBytes(case_folder))).substr(0, chars);
}

std::vector<std::string> CaseCoder::DisplayCodes(std::span<const std::string> case_folders) const {
  std::vector<std::string> full;
  full.reserve(case_folders.size());
  std::map<std::string, std::vector<size_t>> by_short_code;
  for (size_t i = 0; i < case_folders.size(); ++i) {
    full.push_back(CrockfordOf(HmacSha256(key_, AsBytes(case_folders[i]))));
    by_short_code[full.back().substr(0, kCaseCodeChars)].push_back(i);
  }
  std::vector<std::string> codes(case_folders.size());
  for (const auto& [short_code, members] : by_short_code) {
    size_t chars = kCaseCodeChars;
    if (members.size() > 1) {
      // Lengthen in steps of two until every member differs from every other.
      for (chars = kCaseCodeChars + 2; chars < kMaxCodeChars; chars += 2) {
        std::set<std::string> seen;
        for (size_t i : members) seen.insert(full[i].substr(0, chars));
        if (seen.size() == members.size()) break;
      }
      chars = std::min(chars, kMaxCodeChars);
    }
    for (size_t i : members) codes[i] = kCaseCodePrefix + full[i].substr(0, chars);
  }
  return codes;
}

std::vector<size_t> CaseCoder::Reverse(std::string_view code,
                                       std::span<const std::string> case_folders) const {
  std::vector<size_t> matches;
  if (!LooksLikeCaseCode(code)) return matches;
  std::string body;
  for (char c : code.substr(kPrefixLength)) body.push_back(AsciiUpper(c));
  for (size_t i = 0; i < case_folders.size(); ++i) {
    if (CrockfordOf(HmacSha256(key_, AsBytes(case_folders[i]))).starts_with(body)) {
      matches.push_back(i);
    }
  }
  return matches;
}

bool LooksLikeCaseCode(std::string_view name) {
  if (name.size() < kPrefixLength + kCaseCodeChars || name.size() > kPrefixLength + kMaxCodeChars ||
      AsciiUpper(name[0]) != 'C' || name[1] != '-') {
    return false;
  }
  return std::all_of(name.begin() + kPrefixLength, name.end(),
                     [](char c) { return IsCrockford(AsciiUpper(c)); });
}

PatientNameTokens PatientNameTokensOf(std::string_view case_folder) {
  PatientNameTokens tokens;
  if (case_folder.empty()) return tokens;
  tokens.substrings.emplace_back(case_folder);
  std::vector<std::string_view> fields;
  for (size_t start = 0; start <= case_folder.size();) {
    size_t end = case_folder.find('_', start);
    if (end == std::string_view::npos) end = case_folder.size();
    if (end > start) fields.push_back(case_folder.substr(start, end - start));
    start = end + 1;
  }
  std::vector<std::string_view> name_fields;
  for (size_t i = 0; i < std::min<size_t>(2, fields.size()); ++i) {
    if (!HasDigit(fields[i])) name_fields.push_back(fields[i]);
  }
  if (fields.size() >= 2 && name_fields.size() == 2) {
    std::string_view last = name_fields[0];
    std::string_view first = name_fields[1];
    for (std::string_view sep : {"", "_", " ", "-", ".", ",", ", "}) {
      tokens.substrings.push_back(std::string(last) + std::string(sep) + std::string(first));
      tokens.substrings.push_back(std::string(first) + std::string(sep) + std::string(last));
    }
  }
  for (std::string_view field : name_fields) {
    if (field.size() >= 2) tokens.words.emplace_back(field);
  }
  SortLongestFirst(tokens.substrings);
  SortLongestFirst(tokens.words);
  return tokens;
}

std::string PseudonymizeName(std::string_view name, const PatientNameTokens& tokens,
                             std::string_view code) {
  std::string out;
  out.reserve(name.size());
  size_t at = 0;
  while (at < name.size()) {
    size_t matched = 0;
    for (const std::string& token : tokens.substrings) {
      if (EqualsIgnoringAsciiCase(name, at, token)) {
        matched = token.size();
        break;
      }
    }
    for (const std::string& token : tokens.words) {
      if (token.size() <= matched) break;
      if (EqualsIgnoringAsciiCase(name, at, token) && IsWordAt(name, at, token.size())) {
        matched = token.size();
        break;
      }
    }
    if (matched > 0) {
      out.append(code);
      at += matched;
    } else {
      out.push_back(name[at++]);
    }
  }
  return out;
}

std::vector<std::string> PseudonymizeListing(std::span<const std::string> names,
                                             const PatientNameTokens& tokens,
                                             std::string_view code) {
  std::vector<std::string> shown(names.size());
  std::set<std::string> taken;
  std::vector<size_t> replaced;
  for (size_t i = 0; i < names.size(); ++i) {
    shown[i] = PseudonymizeName(names[i], tokens, code);
    if (shown[i] == names[i]) {
      taken.insert(shown[i]);
    } else {
      replaced.push_back(i);
    }
  }
  // Replaced names claim their shown form in byte order of the real names; a later
  // claimant of a taken form gets the first free "~N".
  std::sort(replaced.begin(), replaced.end(),
            [&](size_t a, size_t b) { return names[a] < names[b]; });
  for (size_t i : replaced) {
    std::string candidate = shown[i];
    for (int n = 2; taken.count(candidate) > 0; ++n) {
      candidate = WithMarkerBeforeExtension(shown[i], std::string("~").append(std::to_string(n)));
    }
    shown[i] = candidate;
    taken.insert(candidate);
  }
  return shown;
}

}  // namespace cadcanfs::access
