// Test helpers for hex literals.
#ifndef CADCANFS_TESTS_TESTING_HEX_H_
#define CADCANFS_TESTS_TESTING_HEX_H_

#include <gtest/gtest.h>

#include <string>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/crypto/secret.h"

namespace cadcanfs::testing {

inline Bytes Hex(std::string text) {
  std::erase(text, ' ');
  auto decoded = HexDecode(text);
  EXPECT_TRUE(decoded.has_value()) << "bad hex literal in test";
  return decoded.value_or(Bytes{});
}

inline SecretBytes SecretHex(const std::string& text) { return SecretBytes::CopyOf(Hex(text)); }

}  // namespace cadcanfs::testing

#endif  // CADCANFS_TESTS_TESTING_HEX_H_
