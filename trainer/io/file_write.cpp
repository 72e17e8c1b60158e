#include "trainer/io/file_write.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

namespace neftune::io {
namespace {

std::string temp_path_for(const std::string& path) {
  const std::filesystem::path p(path);
  return (p.parent_path() / ("." + p.filename().string() + ".tmp")).string();
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)), tmp_(temp_path_for(path_)) {
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    const int err = errno;
    tmp_.clear();  // nothing was created: nothing to remove
    fail("create " + temp_path_for(path_), err);
  }
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
}

void AtomicFileWriter::fail(const std::string& what, int err) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
  tmp_.clear();
  std::string hint;
  if (err == ENOSPC || err == EDQUOT) hint = ": the disk (or quota) is full; free space and run again";
  if (err == EROFS) hint = ": the filesystem is read-only";
  throw WriteError(path_ + ": " + what + " failed (" + std::strerror(err) + ")" + hint +
                   "; the file's previous version, if any, is kept");
}

void AtomicFileWriter::write(const void* data, size_t n) {
  if (fd_ < 0) throw std::logic_error("AtomicFileWriter: write after commit or failure: " + path_);
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("write", w < 0 ? errno : EIO);
    p += w;
    n -= static_cast<size_t>(w);
    written_ += static_cast<uint64_t>(w);
  }
  // Start the disk writing what is already in the page cache while the caller prepares the next piece,
  // instead of all of it at the final fsync (non-blocking; commit() still fsyncs everything).
  constexpr uint64_t kWritebackChunk = 32ull << 20;
  if (written_ - writeback_started_ >= kWritebackChunk) {
    ::sync_file_range(fd_, static_cast<off_t>(writeback_started_), static_cast<off_t>(written_ - writeback_started_),
                      SYNC_FILE_RANGE_WRITE);
    writeback_started_ = written_;
  }
}

void AtomicFileWriter::commit() {
  if (fd_ < 0) throw std::logic_error("AtomicFileWriter: commit after commit or failure: " + path_);
  if (::fsync(fd_) != 0) fail("fsync", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("close", errno);
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) fail("rename", errno);
  tmp_.clear();
  const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
  fsync_path(parent.empty() ? "." : parent.string());
}

void write_file_atomic(const std::string& path, std::string_view text) {
  AtomicFileWriter w(path);
  w.write(text.data(), text.size());
  w.commit();
}

void copy_file_atomic(const std::string& from, const std::string& to) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) throw WriteError(to + ": cannot read " + from + " to copy it (" + std::strerror(errno) + ")");
  try {
    AtomicFileWriter w(to);
    std::vector<char> buf(1 << 20);
    for (;;) {
      const ssize_t n = ::read(in, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw WriteError(to + ": reading " + from + " to copy it failed (" + std::strerror(errno) + ")");
      if (n == 0) break;
      w.write(buf.data(), static_cast<size_t>(n));
    }
    w.commit();
  } catch (...) {
    ::close(in);
    throw;
  }
  ::close(in);
}

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace neftune::io
