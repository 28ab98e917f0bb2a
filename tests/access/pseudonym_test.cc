#include "cadcanfs/access/pseudonym.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "access/access_test_util.h"

namespace cadcanfs::access {
namespace {

using testing::TestKey;

constexpr char kFolder[] = "Smith_Jane_2026-03-01";

TEST(CaseCodeTest, MatchesTheDocumentedConstruction) {
  // HMAC-SHA256(key 10 11 .. 2f, "Smith_Jane_2026-03-01"), Crockford base32, computed
  // independently (docs/access-policy.md gives the recipe).
  CaseCoder coder(TestKey(0x10));
  EXPECT_EQ(coder.CodeOf(kFolder), "C-J20AJV");
  EXPECT_EQ(coder.CodeOf(kFolder, 8), "C-J20AJVX3");
  EXPECT_TRUE(LooksLikeCaseCode(coder.CodeOf(kFolder)));
}

TEST(CaseCodeTest, StableForOneKeyAndDifferentUnderAnother) {
  CaseCoder first(TestKey(1));
  CaseCoder again(TestKey(1));  // as after a remount: the key is derived again
  CaseCoder other(TestKey(2));
  std::set<std::string> codes;
  for (int i = 0; i < 50; ++i) {
    std::string folder = "Patient_" + std::to_string(i) + "_2026-01-01";
    EXPECT_EQ(first.CodeOf(folder), again.CodeOf(folder));
    EXPECT_NE(first.CodeOf(folder), other.CodeOf(folder)) << "without the key no one can "
                                                             "compute the code";
    codes.insert(first.CodeOf(folder));
  }
  EXPECT_EQ(codes.size(), 50u);
  EXPECT_EQ(first.CodeOf("Smith_Jane").find("Smith"), std::string::npos);
}

TEST(CaseCodeTest, CollidingCodesAreLengthenedAndStillReverse) {
  CaseCoder coder(TestKey(3));
  // Search for two folder names whose 6-character codes collide (30 bits: a few ten
  // thousand names suffice).
  std::map<std::string, std::string> seen;
  std::string a, b;
  for (int i = 0; a.empty(); ++i) {
    std::string folder = "Case_" + std::to_string(i);
    auto [it, inserted] = seen.emplace(coder.CodeOf(folder), folder);
    if (!inserted) {
      a = it->second;
      b = folder;
    }
  }
  std::vector<std::string> folders = {a, "Other_Case", b};
  std::vector<std::string> shown = coder.DisplayCodes(folders);
  ASSERT_EQ(shown.size(), 3u);
  EXPECT_EQ(shown[1], coder.CodeOf("Other_Case"));
  EXPECT_NE(shown[0], shown[2]);
  EXPECT_GE(shown[0].size(), 10u);
  EXPECT_TRUE(shown[0].starts_with(coder.CodeOf(a)));
  EXPECT_TRUE(shown[2].starts_with(coder.CodeOf(b)));
  EXPECT_EQ(coder.Reverse(coder.CodeOf(a), folders), (std::vector<size_t>{0, 2}));
  EXPECT_EQ(coder.Reverse(shown[2], folders), (std::vector<size_t>{2}));
  std::string lower = shown[0];
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_EQ(coder.Reverse(lower, folders), (std::vector<size_t>{0}));
  EXPECT_TRUE(coder.Reverse("C-UUUUUU", folders).empty());  // U is not in the alphabet
}

TEST(CaseCodeTest, LooksLikeCaseCode) {
  EXPECT_TRUE(LooksLikeCaseCode("C-7F3A9Q"));
  EXPECT_TRUE(LooksLikeCaseCode("C-7F3A9Q12"));
  EXPECT_FALSE(LooksLikeCaseCode("C-7F3A9"));
  EXPECT_FALSE(LooksLikeCaseCode("D-7F3A9Q"));
  EXPECT_FALSE(LooksLikeCaseCode("C-7F3A9QI"));
  EXPECT_FALSE(LooksLikeCaseCode("Smith_Jane"));
}

TEST(PseudonymizeNameTest, ReplacesTheFolderNameAndItsNameParts) {
  const PatientNameTokens tokens = PatientNameTokensOf(kFolder);
  const std::string code = "C-7F3A9Q";
  const std::map<std::string, std::string> expected = {
      {"Smith_Jane_2026-03-01_upper.stl", "C-7F3A9Q_upper.stl"},
      {"smith_jane_lower.stl", "C-7F3A9Q_lower.stl"},
      {"Jane Smith crown.ply", "C-7F3A9Q crown.ply"},
      {"Smith, Jane - notes.pdf", "C-7F3A9Q - notes.pdf"},
      {"JaneSmith.stl", "C-7F3A9Q.stl"},
      {"SMITH.dcm", "C-7F3A9Q.dcm"},
      {"jane-bite.stl", "C-7F3A9Q-bite.stl"},
      {"Smithson_bridge.stl", "Smithson_bridge.stl"},  // a word, not a part of one
      {"scan_2026-03-01.stl", "scan_2026-03-01.stl"},  // the date alone is kept
      {"Smith_Jane_and_Smith.stl", "C-7F3A9Q_and_C-7F3A9Q.stl"},
      {"model.stl", "model.stl"},
  };
  for (const auto& [name, shown] : expected) {
    EXPECT_EQ(PseudonymizeName(name, tokens, code), shown) << name;
  }
}

TEST(PseudonymizeNameTest, FoldersWithoutANamePairStillHideTheWholeName) {
  const PatientNameTokens numbered = PatientNameTokensOf("12345");
  EXPECT_EQ(PseudonymizeName("12345_scan.stl", numbered, "C-000000"), "C-000000_scan.stl");
  EXPECT_TRUE(numbered.words.empty());
  const PatientNameTokens dated = PatientNameTokensOf("2026-03-01_Smith_Jane");
  EXPECT_EQ(PseudonymizeName("smith.stl", dated, "C-000000"), "C-000000.stl");
}

TEST(PseudonymizeListingTest, CollisionsGetNumberedAndTheMappingIsOneToOne) {
  const PatientNameTokens tokens = PatientNameTokensOf(kFolder);
  std::vector<std::string> names = {"Smith_Jane_a.stl", "C-7F3A9Q_a.stl", "smith_jane_a.stl",
                                    "other.txt", "C-7F3A9Q_a~2.stl"};
  std::vector<std::string> shown = PseudonymizeListing(names, tokens, "C-7F3A9Q");
  EXPECT_EQ(shown[1], "C-7F3A9Q_a.stl");    // an unchanged name keeps its place
  EXPECT_EQ(shown[4], "C-7F3A9Q_a~2.stl");  // so does this one
  EXPECT_EQ(shown[0], "C-7F3A9Q_a~3.stl");  // "S" sorts before "s"
  EXPECT_EQ(shown[2], "C-7F3A9Q_a~4.stl");
  EXPECT_EQ(shown[3], "other.txt");
  EXPECT_EQ(std::set<std::string>(shown.begin(), shown.end()).size(), names.size());
  for (const std::string& s : shown) EXPECT_EQ(s.find("mith"), std::string::npos);
}

}  // namespace
}  // namespace cadcanfs::access
