#include "launch/serve/spool_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "config/errors.h"

namespace neftune::serve {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void refuse(const std::string& spool, const std::string& what) {
  throw UserError("--spool " + spool + ": " + what);
}

// The pid the holder wrote into the lock file ("unknown" if it has not written it yet).
std::string holder_pid(int fd) {
  char buf[32] = {};
  const ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid.empty() ? "unknown" : pid;
}

}  // namespace

SpoolLock::SpoolLock(const std::string& spool) {
  std::error_code ec;
  const fs::file_status st = fs::status(spool, ec);
  if (fs::exists(st) && !fs::is_directory(st))
    refuse(spool, "exists and is not a directory (pass a directory; a missing one is created)");
  if (!fs::exists(st)) {
    fs::create_directories(spool, ec);
    if (ec) refuse(spool, "cannot create the spool directory: " + ec.message());
  }
  // Every state change is a rename inside the spool: it must be writable, which access() checks for
  // users (root passes it: the open below then finds a read-only file system).
  if (access(spool.c_str(), W_OK | X_OK) != 0) {
    refuse(spool, std::string("the spool directory is not writable (") + std::strerror(errno) +
                      "): pass a directory this user can write");
  }
  const std::string path = (fs::path(spool) / ".lock").string();
  fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd_ < 0) {
    refuse(spool, "the spool directory is not writable (cannot create " + path + ": " + std::strerror(errno) +
                      "): pass a directory this user can write");
  }
  if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string pid = holder_pid(fd_);
    close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK) {
      throw UserError("spool " + spool + " is in use by another daemon (pid " + pid +
                      "): stop that daemon first, or pass another --spool");
    }
    refuse(spool, "cannot lock " + path + ": " + std::strerror(err));
  }
  const std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd_, 0) != 0 || pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const int err = errno;
    close(fd_);
    fd_ = -1;
    refuse(spool, "the spool directory is not writable (cannot write " + path + ": " + std::strerror(err) +
                      "): pass a directory this user can write");
  }
}

SpoolLock::~SpoolLock() {
  if (fd_ >= 0) close(fd_);
}

}  // namespace neftune::serve
