#include "support/cli_fixture.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "support/golden.hpp"

namespace fs = std::filesystem;

namespace ovis::test {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string ovis_binary() {
  const char* bin = std::getenv("OVIS_BINARY");
  return bin ? bin : OVIS_BINARY;
}

void CliTest::SetUp() {
  dir_ =
      fs::temp_directory_path() / ("ovis_" + prefix_ + "_" + std::to_string(::getpid()) + "_" +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
  fs::remove_all(dir_);
  fs::create_directories(dir_);
}

void CliTest::TearDown() {
  fs::remove_all(dir_);
}

CliRun CliTest::run(const std::string& args, const std::string& env) const {
  const fs::path out = dir_ / "stdout.txt", err = dir_ / "stderr.txt";
  const std::string cmd = (env.empty() ? "" : env + " ") + ovis_binary() + " " + args + " >" +
                          out.string() + " 2>" + err.string() + " </dev/null";
  const int status = std::system(cmd.c_str());
  CliRun r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

std::string CliTest::model() const {
  return "-m " + fixture_dir();
}

std::string CliTest::input(const std::string& f) const {
  return fixture_path("inputs/" + f);
}

void CliTest::expect_one_line_error(const CliRun& r, const std::string& mentions) {
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  if (!mentions.empty()) {
    EXPECT_NE(r.err.find(mentions), std::string::npos) << r.err;
  }
}

}  // namespace ovis::test
