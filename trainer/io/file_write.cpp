#include "trainer/io/file_write.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace neftune::io {
namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path, int err, const std::string& tmp) {
  if (!tmp.empty()) ::unlink(tmp.c_str());
  std::string hint;
  if (err == ENOSPC || err == EDQUOT) hint = ": the disk (or quota) is full; free space and run again";
  if (err == EROFS) hint = ": the filesystem is read-only";
  throw WriteError(path + ": " + what + " failed (" + std::strerror(err) + ")" + hint +
                   "; the file's previous version, if any, is kept");
}

}  // namespace

void write_file_atomic(const std::string& path, std::string_view text) {
  const std::filesystem::path p(path);
  const std::string tmp = (p.parent_path() / ("." + p.filename().string() + ".tmp")).string();
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("create " + tmp, path, errno, "");
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      fail("write", path, err, tmp);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    fail("fsync", path, err, tmp);
  }
  if (::close(fd) != 0) fail("close", path, errno, tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename", path, errno, tmp);
  fsync_path(p.parent_path().empty() ? "." : p.parent_path().string());
}

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace neftune::io
