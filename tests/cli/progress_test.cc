// The progress line's arithmetic and the meter's drawing (src/cli/progress.h).
#include "../../src/cli/progress.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace cadcanfs::cli {
namespace {

TEST(ProgressFormatTest, Bytes) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(3ULL << 30), "3.0 GiB");
  EXPECT_EQ(FormatBytes(200ULL << 40), "200.0 TiB");
}

TEST(ProgressFormatTest, Duration) {
  EXPECT_EQ(FormatDuration(0), "0:00");
  EXPECT_EQ(FormatDuration(7), "0:07");
  EXPECT_EQ(FormatDuration(723), "12:03");
  EXPECT_EQ(FormatDuration(7209), "2:00:09");
  EXPECT_EQ(FormatDuration(-1), "?");
}

TEST(ProgressFormatTest, LineByBytesShowsRateAndTimeLeft) {
  ProgressState state;
  state.files_done = 2;
  state.files_total = 8;
  state.bytes_done = 25ULL << 20;
  state.bytes_total = 100ULL << 20;
  state.seconds = 5;
  // 5 MiB/s, 75 MiB to go: 15 seconds.
  EXPECT_EQ(FormatProgressLine("decrypting", state),
            "decrypting: 2/8 files, 25.0 MiB/100.0 MiB (25%), 5.0 MiB/s, 0:15 left");
}

TEST(ProgressFormatTest, NoRateInTheFirstSecond) {
  ProgressState state;
  state.files_total = 3;
  state.bytes_done = 10;
  state.bytes_total = 1000;
  state.seconds = 0.5;
  EXPECT_EQ(FormatProgressLine("encrypting", state), "encrypting: 0/3 files, 10 B/1000 B (1%)");
}

TEST(ProgressFormatTest, FilesOnlyWithPasses) {
  ProgressState state;
  state.pass = 2;
  state.passes = 2;
  state.files_done = 300;
  state.files_total = 1000;
  state.seconds = 3;
  // 100 files/s, 700 to go.
  EXPECT_EQ(FormatProgressLine("rekeying", state),
            "rekeying (pass 2 of 2): 300/1000 files (30%), 100 files/s, 0:07 left");
}

TEST(ProgressFormatTest, EmptyWorkIsComplete) {
  ProgressState state;
  EXPECT_EQ(FormatProgressLine("checking", state), "checking: 0/0 files (100%)");
}

std::string ReadAll(int fd) {
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = read(fd, buffer, sizeof(buffer))) > 0;) text.append(buffer, n);
  return text;
}

TEST(ProgressMeterTest, DrawsFirstAndLastStateAndThrottlesTheRest) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_NONBLOCK), 0);
  {
    ProgressMeter meter("checking", fds[1], WorkTotals{1000, 0});
    for (int i = 0; i < 1000; ++i) meter.OnFileDone();
    meter.Finish();
  }
  close(fds[1]);
  std::string out = ReadAll(fds[0]);
  close(fds[0]);
  EXPECT_EQ(out.rfind("\rchecking: 0/1000 files (0%)\033[K", 0), 0u) << out;
  EXPECT_NE(out.find("\rchecking: 1000/1000 files (100%)\033[K\n"), std::string::npos) << out;
  // A thousand files in well under the redraw interval: the first and last states only
  // (plus at most one redraw if this machine is very slow).
  size_t draws = 0;
  for (char c : out) draws += c == '\r';
  EXPECT_LE(draws, 3u) << out;
  EXPECT_EQ(out.back(), '\n');
}

TEST(ProgressMeterTest, AnInterruptedMeterEndsItsLine) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_NONBLOCK), 0);
  { ProgressMeter meter("decrypting", fds[1], WorkTotals{5, 500}); }
  close(fds[1]);
  std::string out = ReadAll(fds[0]);
  close(fds[0]);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back(), '\n');  // so an error sentence starts on a line of its own
}

}  // namespace
}  // namespace cadcanfs::cli
