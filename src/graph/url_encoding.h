// Percent-encoding for URL path segments and form bodies (RFC 3986).
#ifndef CADCANFS_GRAPH_URL_ENCODING_H_
#define CADCANFS_GRAPH_URL_ENCODING_H_

#include <string>
#include <string_view>

namespace cadcanfs::graph {

// One path segment: unreserved, sub-delims, ':' and '@' stay; all else is %XX.
std::string EncodePathSegment(std::string_view segment);
// A "/a/b c" path, each segment encoded on its own.
std::string EncodePath(std::string_view path);
// application/x-www-form-urlencoded value: only unreserved characters stay.
std::string EncodeFormValue(std::string_view value);
// Appends "name=value" (value encoded) to a form body.
void AppendFormField(std::string& form, std::string_view name, std::string_view value);

}  // namespace cadcanfs::graph

#endif  // CADCANFS_GRAPH_URL_ENCODING_H_
