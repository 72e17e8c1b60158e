#include "trainer/io/file_read.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "config/size_limit.h"
#include "trainer/run/stop_signal.h"

namespace neftune::io {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr size_t kChunk = size_t{4} << 20;  // a stop request waits for at most one chunk's read

// Each kind's name in messages, the variable that sets its limit ("" for none) and its default limit.
struct KindInfo {
  const char* name;
  const char* variable;
  uint64_t default_limit;
};

KindInfo info(Input kind) {
  switch (kind) {
    case Input::config:
      return {"config", "", config::kMaxConfigBytes};
    case Input::json:
      return {"JSON", "NEFTUNE_MAX_JSON_MIB", 64 * kMiB};
    case Input::tokenizer:
      return {"tokenizer", "NEFTUNE_MAX_TOKENIZER_MIB", 512 * kMiB};
    case Input::data:
      return {"data", "NEFTUNE_MAX_DATA_MIB", 16384 * kMiB};
    case Input::weights:
      return {"weights", "NEFTUNE_MAX_WEIGHTS_MIB", UINT64_MAX};
  }
  return {"input", "", 0};
}

const char* file_type(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  return "not a regular file";
}

std::string limit_text(Input kind, uint64_t limit) {
  const char* var = input_limit_variable(kind);
  if (*var == '\0') return config::format_size(limit);
  return config::format_size(limit) + " (" + var + " raises it)";
}

[[noreturn]] void too_big(const std::string& path, std::string_view what, Input kind, uint64_t size, bool at_least) {
  throw InputError(path + ": " + std::string(what) + " is " + (at_least ? "more than " : "") +
                   config::format_size(size) + ", over the limit of " + limit_text(kind, input_limit(kind)) +
                   " for a " + info(kind).name + " file: check that this is the right file");
}

}  // namespace

const char* input_limit_variable(Input kind) { return info(kind).variable; }

uint64_t input_limit(Input kind) {
  const char* var = input_limit_variable(kind);
  const char* value = *var ? std::getenv(var) : nullptr;
  if (!value || !*value) return info(kind).default_limit;
  errno = 0;
  char* end = nullptr;
  const unsigned long long mib = std::strtoull(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || value[0] == '-' || mib == 0 || mib > (UINT64_MAX / kMiB)) {
    throw InputError(std::string(var) + "=" + value + ": not a size in MiB (a whole number, e.g. " + var + "=" +
                     std::to_string(info(kind).default_limit / kMiB) + ")");
  }
  return static_cast<uint64_t>(mib) * kMiB;
}

InputFile::InputFile(const std::string& path, Input kind, std::string_view what)
    : path_(path), what_(what), kind_(kind) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) {
    const int err = errno;
    if (err == ENOENT) throw InputError(path + ": cannot open " + what_ + " (no such file): check the path");
    throw InputError(path + ": cannot open " + what_ + " (" + std::strerror(err) + ")");
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    ::close(fd_);
    throw InputError(path + ": cannot stat " + what_ + " (" + std::strerror(err) + ")");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw InputError(path + ": " + file_type(st.st_mode) + ", not a regular file: the " + what_ +
                     " is read only from a regular file (copy it into one and name that)");
  }
  size_ = static_cast<uint64_t>(st.st_size);
  const uint64_t limit = input_limit(kind);
  if (size_ > limit) {
    ::close(fd_);
    too_big(path, what_, kind, size_, false);
  }
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags >= 0) ::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK);
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::string InputFile::read_all() {
  const uint64_t limit = input_limit(kind_);
  std::string text;
  text.reserve(static_cast<size_t>(size_));
  for (;;) {
    // Between chunks only: a file of one chunk (every config, status or job file) is read whole whatever
    // was requested, so a pending cancel never stops the reading of the daemon's own files.
    if (text.size() >= kChunk && run::stop_requested() != 0) {
      throw StopRequested(path_ + ": stop requested while reading the " + what_ + " (" +
                          config::format_size(text.size()) + " read): nothing to save");
    }
    const size_t old = text.size();
    // Reads up to one byte past the limit, so a file that grew since it was opened is caught.
    const uint64_t room = limit == UINT64_MAX ? kChunk : limit - std::min<uint64_t>(limit, old) + 1;
    // What fstat said is left, plus a little to see the end (or growth): a small file is not given a
    // whole chunk of zeroed buffer.
    const uint64_t expected = size_ - std::min<uint64_t>(size_, old) + 4096;
    const size_t want = static_cast<size_t>(std::min({uint64_t{kChunk}, room, expected}));
    text.resize(old + want);
    const ssize_t n = ::read(fd_, text.data() + old, want);
    if (n < 0 && errno == EINTR) {
      text.resize(old);
      continue;
    }
    if (n < 0) throw InputError(path_ + ": cannot read " + what_ + " (" + std::strerror(errno) + ")");
    text.resize(old + static_cast<size_t>(n));
    if (n == 0) break;
    if (text.size() > limit) too_big(path_, what_, kind_, text.size(), true);
  }
  return text;
}

std::string read_input(const std::string& path, Input kind, std::string_view what) {
  return InputFile(path, kind, what).read_all();
}

}  // namespace neftune::io
