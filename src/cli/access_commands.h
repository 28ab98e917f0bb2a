// The access layer's commands: audit verify/show, case-code and policy check.
#ifndef CADCANFS_CLI_ACCESS_COMMANDS_H_
#define CADCANFS_CLI_ACCESS_COMMANDS_H_

#include <string>
#include <vector>

namespace cadcanfs::cli {

int RunAudit(const std::vector<std::string>& argv);
int RunCaseCode(const std::vector<std::string>& argv);
int RunPolicy(const std::vector<std::string>& argv);

}  // namespace cadcanfs::cli

#endif  // CADCANFS_CLI_ACCESS_COMMANDS_H_
