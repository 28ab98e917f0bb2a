#include "cadcanfs/graph/quick_xor_hash.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cadcanfs::graph {
namespace {

Bytes FromBase64(const std::string& text) {
  auto decoded = Base64Decode(text);
  EXPECT_TRUE(decoded.has_value()) << text;
  return decoded.value_or(Bytes{});
}

// Vectors from rclone's quickxorhash_test.go (also in the emulator's own tests).
TEST(QuickXorHashTest, MatchesReferenceVectors) {
  const std::vector<std::pair<std::string, std::string>> vectors = {
      {"", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="},
      {"Sg==", "SgAAAAAAAAAAAAAAAQAAAAAAAAA="},
      {"tbQ=", "taAFAAAAAAAAAAAAAgAAAAAAAAA="},
      {"2fuxhBJXtpWFe8dOfdGeHw==", "O9tHLAghgSvYohKFyMMxnNCHaHg="},
      {"T6LYJIfDh81JrAK309H2JMJTXis=", "zBTHrspn3mEcohlJdIUAbjGNaNg="},
  };
  for (const auto& [input, expected] : vectors) {
    EXPECT_EQ(QuickXorHashBase64(FromBase64(input)), expected) << input;
  }
}

TEST(QuickXorHashTest, MatchesAsciiVectors) {
  EXPECT_EQ(QuickXorHashBase64(AsBytes("hello world")), "aCgDG9jwBhDc4Q1yawMZAAAAAAA=");
  EXPECT_EQ(QuickXorHashBase64(AsBytes("The quick brown fox jumps over the lazy dog")),
            "bMSlbysmxJL6S75XwfMcQZOpcr4=");
  EXPECT_EQ(QuickXorHashBase64(AsBytes(std::string(1000, 'a'))), "cIADHOAABzjAAQ5waAAcgQhEIAI=");
}

TEST(QuickXorHashTest, ChunkBoundariesAndOrderDoNotMatter) {
  Bytes data(5000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 + 3);
  const std::string whole = QuickXorHashBase64(data);
  for (size_t chunk : {1u, 7u, 160u, 333u, 4096u}) {
    QuickXorHash hash;
    for (size_t at = 0; at < data.size(); at += chunk) {
      hash.AddAt(at, ByteSpan(data).subspan(at, std::min(chunk, data.size() - at)));
    }
    EXPECT_EQ(hash.DigestBase64(data.size()), whole) << chunk;
  }
  QuickXorHash backwards;
  backwards.AddAt(2500, ByteSpan(data).subspan(2500));
  backwards.AddAt(0, ByteSpan(data).subspan(0, 2500));
  EXPECT_EQ(backwards.DigestBase64(data.size()), whole);
  // A saved state continues where it stopped (an upload resumed after a restart).
  QuickXorHash first;
  first.AddAt(0, ByteSpan(data).subspan(0, 1234));
  QuickXorHash resumed(first.state());
  resumed.AddAt(1234, ByteSpan(data).subspan(1234));
  EXPECT_EQ(resumed.DigestBase64(data.size()), whole);
}

}  // namespace
}  // namespace cadcanfs::graph
