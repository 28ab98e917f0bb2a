#include "cadcanfs/access/policy.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>

#include "access/access_test_util.h"

namespace cadcanfs::access {
namespace {

using testing::FakeIds;
using testing::kExamplePolicy;

Policy Example() {
  auto policy = Policy::Parse(kExamplePolicy, FakeIds());
  EXPECT_TRUE(policy.ok()) << policy.status().ToString();
  return std::move(policy).value();
}

Decision DecideFor(const Policy& policy, Caller caller, std::vector<std::string> path,
                   EntryKind kind = EntryKind::kDirectory) {
  return policy.Decide(caller, path, kind);
}

const Decision kNone{Access::kNone, false};
const Decision kRead{Access::kRead, false};
const Decision kWrite{Access::kReadWrite, false};
const Decision kReadPseudo{Access::kRead, true};
const Decision kWritePseudo{Access::kReadWrite, true};

const Caller kAlice{1001, 100, {2001}};  // in group smith
const Caller kCarol{1003, 100, {}};
const Caller kDave{1004, 100, {}};
const Caller kBob{1002, 100, {}};
const Caller kErin{1005, 100, {}};
const Caller kRoot{0, 0, {}};
const Caller kStranger{4242, 4242, {}};

TEST(PolicyTest, OfficeStaffSeeTheirOfficeWithRealNamesAndNothingElse) {
  Policy p = Example();
  EXPECT_EQ(DecideFor(p, kAlice, {"SmithDental"}), kWrite);
  EXPECT_EQ(DecideFor(p, kAlice, {"SmithDental", "Doe_Jane_2026-03-01"}), kWrite);
  EXPECT_EQ(DecideFor(p, kAlice, {"SmithDental", "Any_Case", "scan.stl"}, EntryKind::kOther),
            kWrite);
  EXPECT_EQ(DecideFor(p, kAlice, {"SmithDental", "notes.txt"}, EntryKind::kOther), kWrite);
  EXPECT_EQ(DecideFor(p, kAlice, {"JonesOrtho"}), kNone);
  EXPECT_EQ(DecideFor(p, kAlice, {"JonesOrtho", "Roe_Rick_2026-01-02"}), kNone);
  // Membership through the primary group counts as well.
  EXPECT_EQ(DecideFor(p, Caller{1001, 2001, {}}, {"SmithDental", "X"}), kWrite);
  // Without the group, alice is nobody.
  EXPECT_EQ(DecideFor(p, Caller{1001, 100, {}}, {"SmithDental"}), kNone);
}

TEST(PolicyTest, ASecondOfficeSeesNoneOfTheFirstsCases) {
  Policy p = Example();
  EXPECT_EQ(DecideFor(p, kDave, {"JonesOrtho", "Roe_Rick_2026-01-02"}), kWrite);
  EXPECT_EQ(DecideFor(p, kDave, {"SmithDental"}), kNone);
  EXPECT_EQ(DecideFor(p, kDave, {"SmithDental", "Doe_Jane_2026-03-01"}), kNone);
  EXPECT_EQ(DecideFor(p, Caller{1099, 1, {}}, {"JonesOrtho", "Y"}), kWrite);  // numeric uid
}

TEST(PolicyTest, ReadOnlyOfficeRoleCannotWrite) {
  Policy p = Example();
  EXPECT_EQ(DecideFor(p, kCarol, {"SmithDental", "Doe_Jane_2026-03-01", "a.stl"}), kRead);
  EXPECT_EQ(DecideFor(p, kCarol, {"SmithDental"}), kRead);
}

TEST(PolicyTest, DesignersSeeAssignedCasesOnly) {
  Policy p = Example();
  EXPECT_EQ(DecideFor(p, kBob, {"SmithDental", "Doe_Jane_2026-03-01"}), kWritePseudo);
  EXPECT_EQ(
      DecideFor(p, kBob, {"SmithDental", "Doe_Jane_2026-03-01", "a", "b.stl"}, EntryKind::kOther),
      kWritePseudo);
  EXPECT_EQ(DecideFor(p, kBob, {"SmithDental", "Doe_John_2026-03-01"}), kNone);
  EXPECT_EQ(DecideFor(p, kBob, {"JonesOrtho", "Roe_Rick_2026-01-02"}), kReadPseudo);
  EXPECT_EQ(DecideFor(p, kBob, {"JonesOrtho", "Poe_Ann_2026-01-02"}), kNone);
  // The office folder leads to the cases: visible, read-only; other entries there are not.
  EXPECT_EQ(DecideFor(p, kBob, {"SmithDental"}), kRead);
  EXPECT_EQ(DecideFor(p, kBob, {"SmithDental", "notes.txt"}, EntryKind::kOther), kNone);
  EXPECT_EQ(DecideFor(p, kBob, {"OtherOffice"}), kNone);
  // A read-only designer without pseudonyms.
  EXPECT_EQ(DecideFor(p, kErin, {"SmithDental", "Doe_Jane_2026-03-01", "x"}), kRead);
  EXPECT_EQ(DecideFor(p, kErin, {"JonesOrtho"}), kNone);
}

TEST(PolicyTest, RootHasNoBypassUnlessThePolicySaysSo) {
  Policy p = Example();
  EXPECT_EQ(DecideFor(p, kRoot, {"SmithDental", "Doe_Jane_2026-03-01"}), kNone);
  EXPECT_EQ(DecideFor(p, kRoot, {"SmithDental"}), kNone);
  std::string bypass = kExamplePolicy;
  bypass.replace(bypass.find("\"root_bypass\": false"), 20, "\"root_bypass\": true");
  auto q = Policy::Parse(bypass, FakeIds());
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_TRUE(q->root_bypass());
  EXPECT_EQ(DecideFor(*q, kRoot, {"SmithDental", "Doe_Jane_2026-03-01"}), kWrite);
  EXPECT_EQ(DecideFor(*q, kRoot, {}), kWrite);
  EXPECT_EQ(DecideFor(*q, kStranger, {"SmithDental"}), kNone);
}

TEST(PolicyTest, EveryoneMayListTheRootButStrangersSeeNothingBelow) {
  Policy p = Example();
  EXPECT_EQ(DecideFor(p, kStranger, {}), kRead);
  EXPECT_EQ(DecideFor(p, kStranger, {"SmithDental"}), kNone);
  EXPECT_EQ(DecideFor(p, kAlice, {}), kRead);
}

TEST(PolicyTest, DeeperCaseDepthPutsStructureBetweenOfficeAndCase) {
  auto p = Policy::Parse(R"({"version": 1, "case_depth": 3,
    "principals": {"bob": {"users": ["bob"], "role": "designer"},
                   "staff": {"users": ["alice"], "role": "office", "office": "Smith"}},
    "assignments": [{"principal": "bob", "office": "Smith", "case": "Doe_*", "access": "write"}]})",
                         FakeIds());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->case_depth(), 3);
  EXPECT_EQ(p->CaseComponent(2), std::nullopt);
  EXPECT_EQ(p->CaseComponent(4), std::optional<size_t>(2));
  EXPECT_EQ(DecideFor(*p, kBob, {"Smith", "2026"}), kRead);
  EXPECT_EQ(DecideFor(*p, kBob, {"Smith", "2026", "Doe_Jane"}), kWrite);
  EXPECT_EQ(DecideFor(*p, kBob, {"Smith", "2026", "Roe_Rick"}), kNone);
  // At depth 2 "Doe_Jane" is a year folder, not a case: only a directory to pass.
  EXPECT_EQ(DecideFor(*p, kBob, {"Smith", "Doe_Jane"}, EntryKind::kOther), kNone);
  EXPECT_EQ(DecideFor(*p, Caller{1001, 1, {}}, {"Smith", "2026", "Roe_Rick"}), kWrite);
}

TEST(PolicyTest, OfficeRoleWinsOverAPseudonymizedAssignment) {
  auto p = Policy::Parse(R"({"version": 1,
    "principals": {"bob": {"users": ["bob"], "role": "designer", "pseudonymize": true},
                   "staff": {"users": ["bob"], "role": "office", "office": "Smith", "access": "read"}},
    "assignments": [{"principal": "bob", "office": "Smith", "case": "*", "access": "write"}]})",
                         FakeIds());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(DecideFor(*p, kBob, {"Smith", "Doe_Jane"}), kWrite);
}

struct BrokenCase {
  const char* what;
  std::string json;
  const char* expected;  // a piece of the sentence
};

TEST(PolicyTest, BrokenPoliciesAreRefusedWithOneSentenceThatNamesNoCase) {
  const std::string principals = R"("principals": {"bob": {"users": ["bob"], "role": "designer"}})";
  const std::vector<BrokenCase> cases = {
      {"not JSON", "{", "not valid JSON"},
      {"not an object", "[]", "top level"},
      {"duplicate member", R"({"version": 1, "version": 1, )" + principals + "}", "twice"},
      {"unknown top-level member", R"({"version": 1, "extra": 1, )" + principals + "}",
       "unknown member 'extra'"},
      {"missing version", "{" + principals + "}", "\"version\""},
      {"wrong version", R"({"version": 2, )" + principals + "}", "\"version\""},
      {"case depth as a string", R"({"version": 1, "case_depth": "2", )" + principals + "}",
       "case_depth"},
      {"case depth 1", R"({"version": 1, "case_depth": 1, )" + principals + "}", "case_depth"},
      {"root_bypass as a number", R"({"version": 1, "root_bypass": 1, )" + principals + "}",
       "root_bypass"},
      {"no principals", R"({"version": 1})", "principals"},
      {"unknown principal member",
       R"({"version": 1, "principals": {"bob": {"users": ["bob"], "role": "designer", "colour": 1}}})",
       "unknown member 'colour' in principals.bob"},
      {"unknown user",
       R"({"version": 1, "principals": {"x": {"users": ["zed"], "role": "designer"}}})",
       "principals.x.users[0] names no user"},
      {"unknown group",
       R"({"version": 1, "principals": {"x": {"groups": ["nope"], "role": "designer"}}})",
       "principals.x.groups[0] names no group"},
      {"user of a wrong type",
       R"({"version": 1, "principals": {"x": {"users": [true], "role": "designer"}}})",
       "name or a numeric id"},
      {"negative uid",
       R"({"version": 1, "principals": {"x": {"users": [-1], "role": "designer"}}})",
       "name or a numeric id"},
      {"no members", R"({"version": 1, "principals": {"x": {"users": [], "role": "designer"}}})",
       "no users and no groups"},
      {"no role", R"({"version": 1, "principals": {"x": {"users": ["bob"]}}})", "role"},
      {"unknown role", R"({"version": 1, "principals": {"x": {"users": ["bob"], "role": "boss"}}})",
       "role"},
      {"office without office",
       R"({"version": 1, "principals": {"x": {"users": ["bob"], "role": "office"}}})", "office"},
      {"office with a slash",
       R"({"version": 1, "principals": {"x": {"users": ["bob"], "role": "office", "office": "a/b"}}})",
       "office"},
      {"pseudonymized office",
       R"({"version": 1, "principals": {"x": {"users": ["bob"], "role": "office", "office": "A", "pseudonymize": true}}})",
       "designers only"},
      {"designer with office",
       R"({"version": 1, "principals": {"x": {"users": ["bob"], "role": "designer", "office": "A"}}})",
       "assignments"},
      {"assignments not an array", R"({"version": 1, )" + principals + R"(, "assignments": {}})",
       "array"},
      {"assignment to an unknown principal",
       R"({"version": 1, )" + principals +
           R"(, "assignments": [{"principal": "amy", "office": "A", "case": "Doe_Jane", "access": "read"}]})",
       "assignments[0].principal names no principal"},
      {"assignment to an office",
       R"({"version": 1, "principals": {"o": {"users": ["bob"], "role": "office", "office": "A"}},
           "assignments": [{"principal": "o", "office": "A", "case": "Doe_Jane", "access": "read"}]})",
       "must be a designer"},
      {"bad access",
       R"({"version": 1, )" + principals +
           R"(, "assignments": [{"principal": "bob", "office": "A", "case": "Doe_Jane", "access": "rw"}]})",
       "assignments[0].access"},
      {"case with a slash",
       R"({"version": 1, )" + principals +
           R"(, "assignments": [{"principal": "bob", "office": "A", "case": "Doe_Jane/x", "access": "read"}]})",
       "assignments[0].case"},
      {"unknown assignment member",
       R"({"version": 1, )" + principals +
           R"(, "assignments": [{"principal": "bob", "office": "A", "case": "Doe_Jane", "access": "read", "until": 1}]})",
       "unknown member 'until' in assignments[0]"},
  };
  for (const BrokenCase& c : cases) {
    auto p = Policy::Parse(c.json, FakeIds());
    ASSERT_FALSE(p.ok()) << c.what;
    EXPECT_EQ(p.status().code(), Code::kCorrupt) << c.what;
    const std::string& message = p.status().message();
    EXPECT_NE(message.find(c.expected), std::string::npos) << c.what << ": " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << c.what;
    EXPECT_EQ(message.find("Doe"), std::string::npos) << c.what << ": " << message;
  }
}

TEST(PolicyTest, SystemNamesResolveAtLoadTime) {
  auto p = Policy::Parse(R"({"version": 1, "principals": {
      "admins": {"users": ["root"], "groups": ["root"], "role": "office", "office": "A"}}})");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(DecideFor(*p, kRoot, {"A", "case"}), kWrite);
}

TEST(PolicyTest, LoadFileRefusesFilesOthersCouldEdit) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/policy.json";
  testing::WriteFile(path, kExamplePolicy, 0644);
  EXPECT_TRUE(Policy::LoadFile(path, FakeIds()).ok());
  chmod(path.c_str(), 0664);
  auto loose = Policy::LoadFile(path, FakeIds());
  ASSERT_FALSE(loose.ok());
  EXPECT_NE(loose.status().message().find("writable by group or others"), std::string::npos);
  chmod(path.c_str(), 0600);
  const std::string link = dir.path() + "/link.json";
  ASSERT_EQ(symlink(path.c_str(), link.c_str()), 0);
  EXPECT_FALSE(Policy::LoadFile(link, FakeIds()).ok());
  auto missing = Policy::LoadFile(dir.path() + "/none.json", FakeIds());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
}

TEST(PolicyTest, SupplementaryGroupsComeFromProc) {
  std::vector<gid_t> expected(static_cast<size_t>(getgroups(0, nullptr)));
  getgroups(static_cast<int>(expected.size()), expected.data());
  auto groups = SupplementaryGroupsOf(getpid());
  ASSERT_TRUE(groups.ok());
  std::vector<uint32_t> want(expected.begin(), expected.end());
  std::sort(want.begin(), want.end());
  std::vector<uint32_t> got = *groups;
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace cadcanfs::access
