// io::write_file_atomic: the whole text or nothing under the final name; on a failed write (here the
// file-size limit, which fails write(2) with EFBIG exactly as a full disk fails it with ENOSPC) the
// previous file is intact, no temporary file is left, and WriteError names the path and the reason.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <filesystem>

#include "tests/test_util.h"
#include "trainer/io/file_write.h"

namespace neftune::io {
namespace {

using test::TempDir;
using ::testing::HasSubstr;

TEST(FileWrite, WritesAndReplacesWholeFiles) {
  TempDir d;
  write_file_atomic(d / "a.txt", "first\n");
  EXPECT_EQ(test::read_file(d / "a.txt"), "first\n");
  const std::string big(1 << 20, 'x');
  write_file_atomic(d / "a.txt", big);
  EXPECT_EQ(test::read_file(d / "a.txt"), big);
  EXPECT_FALSE(std::filesystem::exists(d / ".a.txt.tmp"));
}

// In a child process (the size limit applies to the whole process): a write over the limit.
[[noreturn]] void write_over_the_size_limit(const std::string& path) {
  std::signal(SIGXFSZ, SIG_IGN);  // write(2) then fails with EFBIG instead of killing the process
  const rlimit lim{4096, 4096};
  setrlimit(RLIMIT_FSIZE, &lim);
  try {
    write_file_atomic(path, std::string(100000, 'y'));
    std::fprintf(stderr, "no error\n");
  } catch (const WriteError& e) {
    std::fprintf(stderr, "%s\n", e.what());
  }
  std::_Exit(0);
}

TEST(FileWrite, AFailedWriteKeepsThePreviousFileAndSaysWhy) {
  TempDir d;
  write_file_atomic(d / "state.json", "{\"step\": 4}\n");
  EXPECT_EXIT(write_over_the_size_limit(d / "state.json"), ::testing::ExitedWithCode(0),
              "state.json: write failed \\(File too large\\).*previous version.*kept");
  EXPECT_EQ(test::read_file(d / "state.json"), "{\"step\": 4}\n");
  EXPECT_FALSE(std::filesystem::exists(d / ".state.json.tmp"));
}

TEST(FileWrite, AMissingDirectoryIsAWriteErrorNamingThePath) {
  TempDir d;
  try {
    write_file_atomic(d / "no/such/dir/x.txt", "x");
    FAIL() << "no error";
  } catch (const WriteError& e) {
    EXPECT_THAT(e.what(), HasSubstr("x.txt: create"));
    EXPECT_THAT(e.what(), HasSubstr("No such file or directory"));
  }
}

}  // namespace
}  // namespace neftune::io
