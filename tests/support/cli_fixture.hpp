// The `ovis` binary as a test subject: one run's exit code and output, and a fixture with a
// private temp folder per test.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <utility>

namespace ovis::test {

struct CliRun {
  int code = -1;  // exit status, -1 if killed by a signal
  std::string out, err;
};

// The whole file as bytes ("" if it cannot be read).
std::string slurp(const std::filesystem::path& p);
// The `ovis` binary (env OVIS_BINARY overrides the build-time default).
std::string ovis_binary();

// Each test gets an empty folder temp/ovis_<prefix>_<pid>_<test name> (dir_), removed after it.
class CliTest : public ::testing::Test {
 protected:
  explicit CliTest(std::string prefix) : prefix_(std::move(prefix)) {}
  void SetUp() override;
  void TearDown() override;

  // `ovis <args>` through the shell with stdin from /dev/null; `env` ("VAR=value ...") goes
  // before the binary.
  CliRun run(const std::string& args, const std::string& env = "") const;
  std::string model() const;                      // "-m <fixture folder>"
  std::string input(const std::string& f) const;  // fixture inputs/f
  // Non-zero exit and exactly one stderr line, starting "error: " (and containing `mentions`).
  static void expect_one_line_error(const CliRun& r, const std::string& mentions = "");

  std::filesystem::path dir_;

 private:
  std::string prefix_;
};

}  // namespace ovis::test
