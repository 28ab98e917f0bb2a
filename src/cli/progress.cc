#include "progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>

namespace cadcanfs::cli {

namespace {

// Writes all of `text` to `fd`, ignoring failures: progress is best effort and must
// never stop the work it reports on.
void WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

uint64_t PercentOf(uint64_t done, uint64_t total) {
  if (total == 0) return 100;
  return std::min<uint64_t>(100, done * 100 / total);
}

}  // namespace

std::string ReadOutputOptions(const Args& args, OutputOptions& options) {
  options.quiet = args.Has("quiet");
  options.json = args.Has("json");
  if (options.quiet && options.json) return "--quiet and --json exclude each other";
  return "";
}

std::string FormatBytes(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    unit++;
  }
  char out[32];
  std::snprintf(out, sizeof(out), "%.1f %s", value, kUnits[unit]);
  return out;
}

std::string FormatDuration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e8) return "?";
  auto total = static_cast<uint64_t>(std::llround(seconds));
  uint64_t hours = total / 3600;
  uint64_t minutes = total / 60 % 60;
  uint64_t secs = total % 60;
  char out[32];
  if (hours > 0) {
    std::snprintf(out, sizeof(out), "%llu:%02llu:%02llu", static_cast<unsigned long long>(hours),
                  static_cast<unsigned long long>(minutes), static_cast<unsigned long long>(secs));
  } else {
    std::snprintf(out, sizeof(out), "%llu:%02llu", static_cast<unsigned long long>(minutes),
                  static_cast<unsigned long long>(secs));
  }
  return out;
}

std::string FormatProgressLine(const std::string& verb, const ProgressState& state) {
  // The rate and the time left follow bytes when there are any, else files (rekey
  // rewrites one header per file, whatever its size).
  const bool by_bytes = state.bytes_total > 0;
  const uint64_t done = by_bytes ? state.bytes_done : state.files_done;
  const uint64_t total = by_bytes ? state.bytes_total : state.files_total;
  std::string line = verb;
  if (state.passes > 1) {
    line += " (pass " + std::to_string(state.pass) + " of " + std::to_string(state.passes) + ")";
  }
  line +=
      ": " + std::to_string(state.files_done) + "/" + std::to_string(state.files_total) + " files";
  if (by_bytes) line += ", " + FormatBytes(state.bytes_done) + "/" + FormatBytes(state.bytes_total);
  line += " (" + std::to_string(PercentOf(done, total)) + "%)";
  // A rate over less than a second of work says little; leave it out until then.
  if (state.seconds >= 1.0 && done > 0) {
    double rate = static_cast<double>(done) / state.seconds;
    if (by_bytes) {
      line += ", " + FormatBytes(static_cast<uint64_t>(rate)) + "/s";
    } else {
      line += ", " + std::to_string(static_cast<uint64_t>(rate)) + " files/s";
    }
    double left = total > done ? static_cast<double>(total - done) / rate : 0;
    line += ", " + FormatDuration(left) + " left";
  }
  return line;
}

ProgressMeter::ProgressMeter(std::string verb, int terminal_fd, WorkTotals totals)
    : verb_(std::move(verb)), fd_(terminal_fd) {
  state_.files_total = totals.files;
  state_.bytes_total = totals.bytes;
  pass_start_ = std::chrono::steady_clock::now();
  Draw(true);
}

ProgressMeter::~ProgressMeter() {
  // An operation that failed part-way still leaves the cursor on a fresh line for its
  // error sentence.
  if (drawn_ && !finished_) WriteAll(fd_, "\n");
}

void ProgressMeter::OnPass(unsigned pass, unsigned passes) {
  if (state_.pass != 0) Draw(true);  // the end of the previous pass
  if (state_.pass != 0 && drawn_) WriteAll(fd_, "\n");
  state_.pass = pass;
  state_.passes = passes;
  state_.files_done = 0;
  state_.bytes_done = 0;
  pass_start_ = std::chrono::steady_clock::now();
  Draw(true);
}

void ProgressMeter::OnBytes(uint64_t bytes) {
  state_.bytes_done += bytes;
  Draw(false);
}

void ProgressMeter::OnFileDone() {
  state_.files_done++;
  Draw(false);
}

void ProgressMeter::Finish() {
  if (finished_) return;
  Draw(true);
  WriteAll(fd_, "\n");
  finished_ = true;
}

void ProgressMeter::Draw(bool force) {
  auto now = std::chrono::steady_clock::now();
  if (!force && drawn_ && now - last_draw_ < kRedrawInterval) return;
  state_.seconds = std::chrono::duration<double>(now - pass_start_).count();
  // \r returns to the start of the line, \033[K clears what a longer line left.
  std::string line(1, '\r');
  line.append(FormatProgressLine(verb_, state_));
  line.append("\033[K");
  WriteAll(fd_, line);
  last_draw_ = now;
  drawn_ = true;
}

bool ProgressBelongsOnStderr(const OutputOptions& options) {
  return !options.quiet && isatty(STDERR_FILENO) == 1;
}

void ShowCounting(const std::string& verb, int terminal_fd) {
  std::string line(1, '\r');
  line.append(verb);
  line.append(": counting files...\033[K");
  WriteAll(terminal_fd, line);
}

double Stopwatch::Seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void PrintSummary(const OutputOptions& options, const std::string& text,
                  const nlohmann::json& json) {
  if (options.quiet) return;
  if (options.json) {
    // A plaintext name (fsck --show-names) need not be UTF-8: replace, never throw.
    std::cout << json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::cout << text;
  }
  std::cout.flush();
}

}  // namespace cadcanfs::cli
