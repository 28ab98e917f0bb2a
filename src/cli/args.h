// A small command-line parser: positional arguments plus "--name value" options and
// "--flag" switches, each declared up front so typos are usage errors.
#ifndef CADCANFS_CLI_ARGS_H_
#define CADCANFS_CLI_ARGS_H_

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace cadcanfs::cli {

class Args {
 public:
  // `with_value` options take the next argument; `switches` take none. "-o X" and "-f"
  // are accepted as short forms when declared as "o" and "f".
  Args(std::set<std::string> with_value, std::set<std::string> switches)
      : with_value_(std::move(with_value)), switches_(std::move(switches)) {}

  // Returns an error sentence, or empty on success.
  std::string Parse(const std::vector<std::string>& argv);

  const std::vector<std::string>& positional() const { return positional_; }
  std::optional<std::string> Value(const std::string& name) const;
  std::vector<std::string> Values(const std::string& name) const;
  bool Has(const std::string& name) const { return seen_switches_.count(name) > 0; }

 private:
  std::set<std::string> with_value_;
  std::set<std::string> switches_;
  std::vector<std::string> positional_;
  std::multimap<std::string, std::string> values_;
  std::set<std::string> seen_switches_;
};

// A plain decimal number (digits only, no sign or spaces), or nullopt.
std::optional<uint64_t> ParseDecimal(const std::string& text);

}  // namespace cadcanfs::cli

#endif  // CADCANFS_CLI_ARGS_H_
