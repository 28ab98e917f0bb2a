// The filesystem core under an access policy and an audit log, without a kernel: the
// requests carry their caller through RequestScope, as the FUSE frontend installs it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>

#include "access/access_test_util.h"
#include "cadcanfs/fs/filesystem.h"
#include "cadcanfs/fs/plain_format.h"
#include "cadcanfs/store/memory_store.h"

namespace cadcanfs {
namespace {

using access::testing::FakeIds;
using access::testing::kExamplePolicy;
using access::testing::ReadFile;
using access::testing::TempDir;
using access::testing::TestKey;
using access::testing::WriteFile;

constexpr uid_t kAlice = 1001;  // SmithDental staff, through group 2001
constexpr gid_t kSmithGroup = 2001;
constexpr uid_t kDave = 1004;  // JonesOrtho staff
constexpr uid_t kErin = 1005;  // designer: read on SmithDental/Doe_Jane_2026-03-01
constexpr char kCase[] = "Doe_Jane_2026-03-01";

RequestCredentials As(uid_t uid, std::vector<gid_t> groups = {}) {
  return RequestCredentials{uid, 100, static_cast<pid_t>(getpid()), std::move(groups), {}};
}

class FileSystemAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Root may set the tree up; the example policy is otherwise unchanged.
    policy_ = kExamplePolicy;
    policy_.replace(policy_.find("\"root_bypass\": false"), 20, "\"root_bypass\": true ");
    WriteFile(dir_.path() + "/policy.json", policy_);
    auto holder = access::PolicyHolder::Load(dir_.path() + "/policy.json", FakeIds());
    ASSERT_TRUE(holder.ok()) << holder.status().ToString();
    holder_ = std::move(holder).value();
    auto audit = access::AuditLog::Open(audit_path(), TestKey(7));
    ASSERT_TRUE(audit.ok()) << audit.status().ToString();
    FsOptions options;
    options.access.policy = holder_;
    options.access.audit = std::move(audit).value();
    options.access.case_coder = std::make_shared<const access::CaseCoder>(TestKey(3));
    fs_ = std::make_unique<FileSystem>(std::make_unique<PlainFormat>(NewMemoryStore()), options);

    RequestScope root(As(0));
    smith_ = MakeDir(kRootInode, "SmithDental");
    MakeDir(kRootInode, "JonesOrtho");
    case_ = MakeDir(smith_, kCase);
    other_case_ = MakeDir(smith_, "Roe_Rick");
    auto created = fs_->Create(case_, "Doe_Jane_upper.stl", 0666, O_WRONLY, Caller{0, 0});
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    fs_->Release(created->second);
    file_ = created->first.ino;
  }

  InodeNumber MakeDir(InodeNumber parent, const std::string& name) {
    auto made = fs_->MakeDir(parent, name, 0777, Caller{0, 0});
    EXPECT_TRUE(made.ok()) << made.status().ToString();
    return made.ok() ? made->ino : 0;
  }

  std::vector<std::string> Listing(InodeNumber dir) {
    auto handle = fs_->OpenDir(dir);
    if (!handle.ok()) return {"<" + handle.status().ToString() + ">"};
    auto snapshot = fs_->ReadDir(*handle, 0);
    std::vector<std::string> names;
    if (snapshot.ok()) {
      for (const PlainDirEntry& e : **snapshot) names.push_back(e.shown.empty() ? e.name : e.shown);
    }
    fs_->ReleaseDir(*handle);
    std::sort(names.begin(), names.end());
    return names;
  }

  std::vector<std::string> AuditLines() {
    std::istringstream text(ReadFile(audit_path()));
    std::vector<std::string> lines;
    for (std::string line; std::getline(text, line);) lines.push_back(line);
    return lines;
  }

  std::string audit_path() const { return dir_.path() + "/audit.log"; }

  TempDir dir_;
  std::string policy_;
  std::shared_ptr<access::PolicyHolder> holder_;
  std::unique_ptr<FileSystem> fs_;
  InodeNumber smith_ = 0, case_ = 0, other_case_ = 0, file_ = 0;
};

TEST_F(FileSystemAccessTest, AnotherOfficeSeesNothingOfTheFirst) {
  RequestScope dave(As(kDave));
  EXPECT_EQ(Listing(kRootInode), std::vector<std::string>{"JonesOrtho"});
  EXPECT_EQ(fs_->Lookup(kRootInode, "SmithDental").status().code(), Code::kNotFound);
  // Inode numbers learnt elsewhere (file handles, an old cwd) lead nowhere either.
  EXPECT_EQ(fs_->GetAttr(smith_).status().code(), Code::kNotFound);
  EXPECT_EQ(fs_->Open(file_, O_RDONLY).status().code(), Code::kNotFound);
  EXPECT_EQ(fs_->OpenDir(case_).status().code(), Code::kNotFound);
  EXPECT_EQ(fs_->LookupByNumber(file_).status().code(), Code::kNotFound);
}

TEST_F(FileSystemAccessTest, OfficeStaffSeeAndChangeTheirCases) {
  RequestScope alice(As(kAlice, {kSmithGroup}));
  EXPECT_EQ(Listing(kRootInode), std::vector<std::string>{"SmithDental"});
  EXPECT_EQ(Listing(smith_), (std::vector<std::string>{kCase, "Roe_Rick"}));
  auto opened = fs_->Open(file_, O_RDWR);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  fs_->Release(*opened);
  EXPECT_TRUE(fs_->MakeDir(smith_, "New_Case", 0777, Caller{kAlice, 100}).ok());
  // Only a bypassing root creates offices.
  EXPECT_EQ(fs_->MakeDir(kRootInode, "Mine", 0777, Caller{kAlice, 100}).status().code(),
            Code::kPermissionDenied);
}

TEST_F(FileSystemAccessTest, ReadOnlyDesignerSeesItsCaseAndCannotChangeIt) {
  RequestScope erin(As(kErin));
  EXPECT_EQ(Listing(smith_), std::vector<std::string>{kCase});
  EXPECT_EQ(fs_->Lookup(smith_, "Roe_Rick").status().code(), Code::kNotFound);
  auto read = fs_->Open(file_, O_RDONLY);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  fs_->Release(*read);
  EXPECT_EQ(fs_->Open(file_, O_WRONLY).status().code(), Code::kPermissionDenied);
  EXPECT_EQ(fs_->Create(case_, "x.stl", 0666, O_WRONLY, Caller{kErin, 100}).status().code(),
            Code::kPermissionDenied);
  EXPECT_EQ(fs_->Unlink(case_, "Doe_Jane_upper.stl").code(), Code::kPermissionDenied);
  AttrChanges truncate;
  truncate.size = 0;
  EXPECT_EQ(fs_->SetAttr(file_, truncate, std::nullopt).status().code(), Code::kPermissionDenied);
  const uint8_t value[] = {1};
  EXPECT_EQ(fs_->SetXattr(file_, "user.x", value, 0).code(), Code::kPermissionDenied);
}

TEST_F(FileSystemAccessTest, PseudonymizedDesignerSeesNothingOfItsCasesInTheRealView) {
  RequestScope bob(As(1002));  // pseudonymize: true; assigned in both offices
  EXPECT_EQ(Listing(kRootInode), (std::vector<std::string>{"JonesOrtho", "SmithDental"}));
  EXPECT_TRUE(Listing(smith_).empty());
  EXPECT_EQ(fs_->Lookup(smith_, kCase).status().code(), Code::kNotFound);
  EXPECT_EQ(fs_->Open(file_, O_RDONLY).status().code(), Code::kNotFound);
}

RequestCredentials InView(RequestCredentials credentials) {
  credentials.pseudonymized_view = true;
  return credentials;
}

TEST_F(FileSystemAccessTest, PseudonymizedViewShowsCodesAndWritesLandInTheRealCase) {
  const access::CaseCoder coder(TestKey(3));
  const std::string code = coder.CodeOf(kCase);
  {
    RequestScope bob(InView(As(1002)));
    EXPECT_EQ(Listing(kRootInode), (std::vector<std::string>{"JonesOrtho", "SmithDental"}))
        << "office folders carry no patient names";
    EXPECT_EQ(Listing(smith_), std::vector<std::string>{code});
    auto found = fs_->Lookup(smith_, code);
    ASSERT_TRUE(found.ok()) << found.status().ToString();
    EXPECT_EQ(found->ino, case_);
    fs_->Forget(case_, 1);
    std::string lower = code;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_TRUE(fs_->Lookup(smith_, lower).ok()) << "codes match in any case";
    fs_->Forget(case_, 1);
    // A patient name cannot be probed for through the view.
    EXPECT_EQ(fs_->Lookup(smith_, kCase).status().code(), Code::kNotFound);
    EXPECT_EQ(fs_->Lookup(case_, "Doe_Jane_upper.stl").status().code(), Code::kNotFound);

    const std::string shown_file = code + "_upper.stl";
    EXPECT_EQ(Listing(case_), std::vector<std::string>{shown_file});
    auto file = fs_->Lookup(case_, shown_file);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    EXPECT_EQ(file->ino, file_);
    auto opened = fs_->Open(file_, O_RDWR);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    fs_->Release(*opened);

    // Writes land in the real case: a new name as typed, a rename, a removal.
    auto created = fs_->Create(case_, "crown.stl", 0666, O_WRONLY, Caller{1002, 100});
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    fs_->Release(created->second);
    EXPECT_TRUE(
        fs_->Rename(case_, "crown.stl", case_, code + "_crown.stl", RenameMode::kReplace).ok());
    // A real name the view shows otherwise is taken, without saying by what.
    EXPECT_EQ(
        fs_->Create(case_, "Doe_Jane_upper.stl", 0666, O_WRONLY, Caller{1002, 100}).status().code(),
        Code::kAlreadyExists);
    EXPECT_EQ(fs_->MakeDir(smith_, "Poe_Edgar", 0777, Caller{1002, 100}).status().code(),
              Code::kPermissionDenied)
        << "cases are made in the real view";
  }
  {
    RequestScope root(As(0));  // the real view: a link whose target names the patient
    auto link = fs_->Symlink(case_, "latest.stl", "Doe_Jane_upper.stl", Caller{0, 0});
    ASSERT_TRUE(link.ok()) << link.status().ToString();
    EXPECT_EQ(*fs_->ReadLink(link->ino), "Doe_Jane_upper.stl");
    {
      RequestScope bob(InView(As(1002)));
      auto shown = fs_->ReadLink(link->ino);
      ASSERT_TRUE(shown.ok()) << shown.status().ToString();
      EXPECT_EQ(*shown, code + "_upper.stl") << "a link's target shows the code too";
    }
    EXPECT_TRUE(fs_->Unlink(case_, "latest.stl").ok());
  }
  {
    RequestScope alice(As(kAlice, {kSmithGroup}));  // the real view
    EXPECT_EQ(Listing(case_), (std::vector<std::string>{code + "_crown.stl", "Doe_Jane_upper.stl"}))
        << "a name typed in the view is stored as typed";
  }
  {
    RequestScope bob(InView(As(1002)));
    EXPECT_TRUE(fs_->Unlink(case_, code + "_crown.stl").ok());
  }
  {
    // Office staff in the view see codes too; the other office still sees nothing.
    RequestScope alice(InView(As(kAlice, {kSmithGroup})));
    std::vector<std::string> codes = {code, coder.CodeOf("Roe_Rick")};
    std::sort(codes.begin(), codes.end());
    EXPECT_EQ(Listing(smith_), codes);
    RequestScope dave(InView(As(kDave)));
    EXPECT_EQ(Listing(kRootInode), std::vector<std::string>{"JonesOrtho"});
  }
  const std::vector<std::string> lines = AuditLines();
  for (const std::string& line : lines) {
    EXPECT_EQ(line.find("Doe"), std::string::npos) << line;
  }
}

TEST_F(FileSystemAccessTest, AReloadAppliesToTheNextRequestAndLinksNeedWriteOnTheFile) {
  // erin also gets write on the other case, through a reload.
  const std::string grant =
      R"({"principal": "erin", "office": "SmithDental", "case": "Roe_Rick", "access": "write"},)";
  policy_.insert(policy_.find("{\"principal\": \"erin\""), grant);
  WriteFile(dir_.path() + "/policy.json", policy_);
  ASSERT_TRUE(holder_->Reload().ok());
  RequestScope erin(As(kErin));
  EXPECT_EQ(Listing(smith_), (std::vector<std::string>{kCase, "Roe_Rick"}));
  EXPECT_TRUE(fs_->Create(other_case_, "mine.stl", 0666, O_WRONLY, Caller{kErin, 100}).ok());
  // Linking the read-only case's file into the writable case would make it writable.
  EXPECT_EQ(fs_->Link(file_, other_case_, "stolen.stl").status().code(), Code::kPermissionDenied);
}

TEST_F(FileSystemAccessTest, AnOpenFileKeepsItsAccessAfterARevokingReload) {
  RequestScope erin(As(kErin));
  auto handle = fs_->Open(file_, O_RDONLY);
  ASSERT_TRUE(handle.ok());
  const std::string assigned = R"("case": "Doe_Jane_2026-03-01", "access": "read")";
  policy_.replace(policy_.find(assigned), assigned.size(), R"("case": "None", "access": "read")");
  WriteFile(dir_.path() + "/policy.json", policy_);
  ASSERT_TRUE(holder_->Reload().ok());
  EXPECT_EQ(fs_->GetAttr(file_).status().code(), Code::kNotFound);
  EXPECT_TRUE(fs_->GetAttr(file_, *handle).ok());
  uint8_t buffer[4];
  EXPECT_TRUE(fs_->Read(*handle, 0, buffer).ok());
  EXPECT_EQ(fs_->Open(file_, O_RDONLY).status().code(), Code::kNotFound);
  fs_->Release(*handle);
}

TEST_F(FileSystemAccessTest, RenameIntoAnotherCaseMovesTheDecision) {
  {
    RequestScope alice(As(kAlice, {kSmithGroup}));
    ASSERT_TRUE(
        fs_->Rename(case_, "Doe_Jane_upper.stl", other_case_, "moved.stl", RenameMode::kReplace)
            .ok());
  }
  RequestScope erin(As(kErin));
  // The inode now lies in a case erin is not assigned to.
  EXPECT_EQ(fs_->GetAttr(file_).status().code(), Code::kNotFound);
  EXPECT_TRUE(Listing(case_).empty());
}

TEST_F(FileSystemAccessTest, CachedAnswersAboveCaseDepthNeverOutliveAChange) {
  RequestScope alice(As(kAlice, {kSmithGroup}));
  ASSERT_TRUE(fs_->Lookup(smith_, kCase).ok());
  ASSERT_TRUE(fs_->Lookup(smith_, kCase).ok());  // from the daemon's cache
  auto before = fs_->GetAttr(smith_);
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(fs_->Rename(smith_, kCase, smith_, "Renamed_Case", RenameMode::kReplace).ok());
  EXPECT_EQ(fs_->Lookup(smith_, kCase).status().code(), Code::kNotFound);
  EXPECT_EQ(fs_->Lookup(smith_, "Renamed_Case").value().ino, case_);
  ASSERT_TRUE(fs_->MakeDir(smith_, "Third_Case", 0777, Caller{kAlice, 100}).ok());
  EXPECT_EQ(fs_->GetAttr(smith_).value().st_nlink, before->st_nlink + 1);
  // A cached answer is still decided per caller.
  RequestScope dave(As(kDave));
  EXPECT_EQ(fs_->Lookup(smith_, "Renamed_Case").status().code(), Code::kNotFound);
}

TEST_F(FileSystemAccessTest, KernelCachingIsOffOnlyWhereAnswersDifferPerCaller) {
  EXPECT_TRUE(fs_->AnswersVaryByCaller(kRootInode));
  EXPECT_TRUE(fs_->AnswersVaryByCaller(smith_));
  EXPECT_TRUE(fs_->AnswersVaryByCaller(case_));
  EXPECT_FALSE(fs_->AnswersVaryByCaller(file_));
  EXPECT_TRUE(fs_->ListingVariesByCaller(smith_));
  EXPECT_FALSE(fs_->ListingVariesByCaller(case_));
  FileSystem open_fs(std::make_unique<PlainFormat>(NewMemoryStore()), FsOptions{});
  EXPECT_FALSE(open_fs.AnswersVaryByCaller(kRootInode));
  EXPECT_FALSE(open_fs.ListingVariesByCaller(kRootInode));
}

TEST_F(FileSystemAccessTest, OneAuditLinePerOperationWithCaseCodeAndNoName) {
  const size_t before = AuditLines().size();
  const std::string code = access::CaseCoder(TestKey(3)).CodeOf(kCase);
  {
    RequestScope erin(As(kErin));
    auto read = fs_->Open(file_, O_RDONLY);
    ASSERT_TRUE(read.ok());
    fs_->Release(*read);
    EXPECT_FALSE(fs_->Open(file_, O_WRONLY).ok());
    EXPECT_FALSE(fs_->Lookup(smith_, "Roe_Rick").ok());
  }
  std::vector<std::string> lines = AuditLines();
  ASSERT_EQ(lines.size(), before + 3);
  EXPECT_NE(lines[before].find("\"event\":\"open-read\",\"uid\":1005"), std::string::npos);
  EXPECT_NE(lines[before].find("\"case\":\"" + code + "\""), std::string::npos);
  EXPECT_NE(lines[before + 1].find("\"attempt\":\"open-write\",\"result\":\"EACCES\""),
            std::string::npos);
  EXPECT_NE(lines[before + 2].find("\"attempt\":\"lookup\",\"result\":\"ENOENT\""),
            std::string::npos);
  for (const std::string& line : lines) {
    EXPECT_EQ(line.find("Doe"), std::string::npos);
    EXPECT_EQ(line.find("Roe"), std::string::npos);
  }
}

}  // namespace
}  // namespace cadcanfs
