// io::read_input / io::InputFile, the one way neftune opens a file it reads: a FIFO, a device or a
// directory is refused at once (a FIFO without a writer used to block the open forever, /dev/zero to be
// read without end), a file over its kind's limit is refused before it is read, the limit follows its
// environment variable, and a stop request ends a long read.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <thread>

#include "tests/test_util.h"
#include "trainer/io/file_read.h"
#include "trainer/run/stop_signal.h"

namespace neftune::io {
namespace {

using test::TempDir;
using ::testing::HasSubstr;

// The error of read_input(path, kind), or "" when it read. A read still blocked after 20 s fails the test
// and ends the process (a thread blocked in open(2) cannot be joined).
std::string read_error(const std::string& path, Input kind) {
  std::promise<std::string> done;
  std::future<std::string> result = done.get_future();
  std::thread([&done, path, kind] {
    done.set_value(test::error_of([&] { read_input(path, kind, "test file"); }));
  }).detach();
  if (result.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    ADD_FAILURE() << path << ": still blocked after 20 s";
    std::_Exit(1);
  }
  return result.get();
}

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) { setenv(name, value.c_str(), 1); }
  ~ScopedEnv() { unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

TEST(FileRead, RefusesWhatIsNotARegularFileWithoutBlocking) {
  TempDir d;
  ASSERT_EQ(mkfifo((d / "pipe.json").c_str(), 0600), 0);
  EXPECT_THAT(read_error(d / "pipe.json", Input::tokenizer),
              HasSubstr(d / "pipe.json" + ": a FIFO (named pipe), not a regular file: the test file is read only"));
  EXPECT_THAT(read_error("/dev/zero", Input::data), HasSubstr("/dev/zero: a device, not a regular file"));
  EXPECT_THAT(read_error(d.path(), Input::json), HasSubstr(d.path() + ": a directory, not a regular file"));
  EXPECT_THAT(read_error(d / "absent.json", Input::json),
              HasSubstr(d / "absent.json" + ": cannot open test file (no such file): check the path"));
  EXPECT_THROW(InputFile(d / "pipe.json", Input::tokenizer, "tokenizer.model"), InputError);
}

TEST(FileRead, ReadsRegularFilesAndLinksToThemWhole) {
  TempDir d;
  std::string text(9 << 20, '\0');  // more than two of the 4 MiB chunks read at a time
  for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>((i * 2654435761u) >> 24);
  test::write_file(d / "data.bin", text);
  EXPECT_EQ(read_input(d / "data.bin", Input::data, "data"), text);
  // A model directory in the HF cache links each file to a blob: a link to a regular file is read.
  std::filesystem::create_symlink(d / "data.bin", d / "link.bin");
  EXPECT_EQ(read_input(d / "link.bin", Input::data, "data"), text);
  test::write_file(d / "empty.json", "");
  EXPECT_EQ(read_input(d / "empty.json", Input::json, "json"), "");
}

TEST(FileRead, AKindsLimitRefusesBiggerFilesAndItsVariableMovesIt) {
  TempDir d;
  EXPECT_EQ(input_limit(Input::config), uint64_t{1} << 20);
  EXPECT_EQ(input_limit(Input::json), uint64_t{64} << 20);
  EXPECT_EQ(input_limit(Input::data), uint64_t{16384} << 20);
  test::write_file(d / "at.json", std::string(1 << 20, ' '));
  test::write_file(d / "over.json", std::string((1 << 20) + 1, ' '));
  {
    const ScopedEnv env("NEFTUNE_MAX_JSON_MIB", "1");
    EXPECT_EQ(read_error(d / "at.json", Input::json), "");
    EXPECT_THAT(read_error(d / "over.json", Input::json),
                HasSubstr(d / "over.json" + ": test file is 1.0 MiB (1048577 bytes), over the limit of 1 MiB "
                                            "(NEFTUNE_MAX_JSON_MIB raises it) for a JSON file"));
  }
  EXPECT_EQ(read_error(d / "over.json", Input::json), "");  // the default, 64 MiB
  // A sparse file: its size is refused without reading (or allocating) a byte of it.
  test::write_file(d / "sparse.json", "");
  ASSERT_EQ(truncate((d / "sparse.json").c_str(), off_t{3} << 30), 0);
  EXPECT_THAT(read_error(d / "sparse.json", Input::tokenizer),
              HasSubstr("sparse.json: test file is 3072 MiB, over the limit of 512 MiB (NEFTUNE_MAX_TOKENIZER_MIB "
                        "raises it)"));
  for (const char* bad : {"abc", "-1", "0", "12x", "99999999999999999999"}) {
    const ScopedEnv env("NEFTUNE_MAX_DATA_MIB", bad);
    EXPECT_THAT(read_error(d / "at.json", Input::data),
                HasSubstr(std::string("NEFTUNE_MAX_DATA_MIB=") + bad + ": not a size in MiB"));
  }
}

// Between chunks: a file of one chunk is read whole (the daemon reads its own small files while a
// cancel is pending), a longer one stops.
TEST(FileRead, AStopRequestEndsALongRead) {
  TempDir d;
  test::write_file(d / "small.json", "[]");
  test::write_file(d / "long.json", std::string(9 << 20, ' '));
  run::request_stop();
  EXPECT_EQ(read_input(d / "small.json", Input::data, "data"), "[]");
  EXPECT_THAT(test::error_of([&] { read_input(d / "long.json", Input::data, "data"); }),
              HasSubstr("long.json: stop requested while reading the data (4 MiB read)"));
  run::clear_stop_request();
  EXPECT_EQ(read_input(d / "long.json", Input::data, "data").size(), size_t{9} << 20);
}

}  // namespace
}  // namespace neftune::io
