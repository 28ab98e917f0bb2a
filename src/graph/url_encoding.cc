#include "url_encoding.h"

namespace cadcanfs::graph {
namespace {

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

bool IsPathChar(unsigned char c) {
  static constexpr std::string_view kSubDelimsAndMore = "!$&'()*+,;=:@";
  return IsUnreserved(c) || kSubDelimsAndMore.find(static_cast<char>(c)) != std::string_view::npos;
}

// Appends in place, so a secret form value leaves no temporary copy behind.
template <typename Keep>
void EncodeInto(std::string& out, std::string_view text, Keep keep) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (keep(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
}

template <typename Keep>
std::string Encode(std::string_view text, Keep keep) {
  std::string out;
  out.reserve(text.size());
  EncodeInto(out, text, keep);
  return out;
}

}  // namespace

std::string EncodePathSegment(std::string_view segment) { return Encode(segment, IsPathChar); }

std::string EncodePath(std::string_view path) {
  std::string out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    out += EncodePathSegment(path.substr(start, slash - start));
    if (slash < path.size()) out.push_back('/');
    start = slash + 1;
  }
  return out;
}

std::string EncodeFormValue(std::string_view value) { return Encode(value, IsUnreserved); }

void AppendFormField(std::string& form, std::string_view name, std::string_view value) {
  if (!form.empty()) form.push_back('&');
  form.append(name);
  form.push_back('=');
  EncodeInto(form, value, IsUnreserved);
}

}  // namespace cadcanfs::graph
