// What the long-running commands (encrypt, decrypt, fsck, rekey) print besides errors:
// a progress line on a terminal, and a one-line summary (text or JSON) at the end.
//
// Neither ever carries a file name: progress is counts, rates and times only.
#ifndef CADCANFS_CLI_PROGRESS_H_
#define CADCANFS_CLI_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "args.h"
#include "cadcanfs/fs/offline.h"

namespace cadcanfs::cli {

// --quiet: no progress and no summary. --json: the summary as one JSON object.
inline const std::set<std::string> kOutputSwitches = {"quiet", "json"};

struct OutputOptions {
  bool quiet = false;
  bool json = false;
};

// Reads --quiet and --json. Returns an error sentence when both are given, else "".
std::string ReadOutputOptions(const Args& args, OutputOptions& options);

// Where the meter stands, for drawing.
struct ProgressState {
  unsigned pass = 0;  // 0 when the operation makes a single pass
  unsigned passes = 0;
  uint64_t files_done = 0;
  uint64_t files_total = 0;
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;  // 0: the work is counted in files only (rekey)
  double seconds = 0;        // since the current pass began
};

// "1.5 MiB", "512 B".
std::string FormatBytes(uint64_t bytes);
// "0:07", "12:03", "2:00:09".
std::string FormatDuration(double seconds);
// One progress line: files and bytes done of the total, the rate, the time left.
std::string FormatProgressLine(const std::string& verb, const ProgressState& state);

// Draws FormatProgressLine on a terminal, in place, at most every kRedrawInterval (and
// always for the first and the last state).
class ProgressMeter : public ProgressObserver {
 public:
  static constexpr std::chrono::milliseconds kRedrawInterval{250};

  ProgressMeter(std::string verb, int terminal_fd, WorkTotals totals);
  ~ProgressMeter() override;
  ProgressMeter(const ProgressMeter&) = delete;
  ProgressMeter& operator=(const ProgressMeter&) = delete;

  void OnPass(unsigned pass, unsigned passes) override;
  void OnBytes(uint64_t bytes) override;
  void OnFileDone() override;

  // Draws the last state and ends the line, so the summary starts on a line of its own.
  void Finish();

 private:
  void Draw(bool force);

  std::string verb_;
  int fd_;
  ProgressState state_;
  std::chrono::steady_clock::time_point pass_start_;
  std::chrono::steady_clock::time_point last_draw_;
  bool drawn_ = false;
  bool finished_ = false;
};

// A meter on stderr when it is a terminal and --quiet is not given; otherwise null
// (then nothing is drawn, and the totals walk is not even made).
bool ProgressBelongsOnStderr(const OutputOptions& options);
// Shows "<verb>: counting files..." while the totals walk runs (it reads no content,
// but lists every directory of a large tree).
void ShowCounting(const std::string& verb, int terminal_fd);

template <typename MeasureFn>
std::unique_ptr<ProgressMeter> MeterIfTerminal(const std::string& verb,
                                               const OutputOptions& options, MeasureFn measure) {
  if (!ProgressBelongsOnStderr(options)) return nullptr;
  constexpr int kStderr = 2;
  ShowCounting(verb, kStderr);
  return std::make_unique<ProgressMeter>(verb, kStderr, measure());
}

// Times a command for its summary.
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double Seconds() const;

 private:
  std::chrono::steady_clock::time_point start_;
};

// Prints the summary on stdout: `text` (one or more lines, each ending in '\n'), or
// with --json `json` as one line, or nothing with --quiet.
void PrintSummary(const OutputOptions& options, const std::string& text,
                  const nlohmann::json& json);

}  // namespace cadcanfs::cli

#endif  // CADCANFS_CLI_PROGRESS_H_
