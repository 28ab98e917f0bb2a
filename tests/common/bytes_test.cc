#include "cadcanfs/common/bytes.h"

#include <gtest/gtest.h>

namespace cadcanfs {
namespace {

TEST(Base32Test, Rfc4648VectorsInLowercaseWithoutPadding) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"f", "my"},
                                                         {"fo", "mzxq"},
                                                         {"foo", "mzxw6"},
                                                         {"foob", "mzxw6yq"},
                                                         {"fooba", "mzxw6ytb"},
                                                         {"foobar", "mzxw6ytboi"}};
  for (auto [plain, encoded] : vectors) {
    EXPECT_EQ(Base32Encode(AsBytes(plain)), encoded);
    auto decoded = Base32Decode(encoded);
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(AsChars(*decoded), plain);
  }
}

TEST(Base32Test, RejectsNonCanonicalInput) {
  EXPECT_FALSE(Base32Decode("MZXW6").has_value());     // uppercase
  EXPECT_FALSE(Base32Decode("mzxw6===").has_value());  // padding
  EXPECT_FALSE(Base32Decode("m").has_value());         // impossible length
  EXPECT_FALSE(Base32Decode("mz").has_value());        // trailing bits set
  EXPECT_FALSE(Base32Decode("my1").has_value());       // outside alphabet
}

TEST(HexTest, RoundTripAndRejects) {
  Bytes data = {0x00, 0xab, 0xff};
  EXPECT_EQ(HexEncode(data), "00abff");
  EXPECT_EQ(*HexDecode("00ABff"), data);
  EXPECT_FALSE(HexDecode("abc").has_value());
  EXPECT_FALSE(HexDecode("zz").has_value());
}

TEST(BigEndianTest, RoundTrip) {
  uint8_t buf[8];
  PutU64BE(buf, 0x0102030405060708ull);
  EXPECT_EQ(buf[0], 1);
  EXPECT_EQ(GetU64BE(buf), 0x0102030405060708ull);
  PutU16BE(buf, 0xabcd);
  EXPECT_EQ(GetU16BE(buf), 0xabcd);
}

}  // namespace
}  // namespace cadcanfs
