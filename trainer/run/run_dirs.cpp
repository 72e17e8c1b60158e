#include "trainer/run/run_dirs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "config/errors.h"

namespace neftune::run {
namespace fs = std::filesystem;

namespace {

const char* kLockFile = ".neftune.lock";

std::string hint_for(int err) {
  switch (err) {
    case EROFS:
      return "the filesystem is read-only: choose a writable location";
    case EACCES:
    case EPERM:
      return "no permission to write there: choose a directory this user can write";
    case ENAMETOOLONG:
      return "a name in the path is too long: use a shorter one";
    case ENOTDIR:
    case EEXIST:
      return "a file is in the way: remove it or choose another path";
    case ENOSPC:
      return "the disk is full: free space or choose another location";
    case ENOENT:
      return "it cannot be created there (a virtual filesystem such as /proc?): choose a writable location";
    default:
      return "choose another path";
  }
}

[[noreturn]] void refuse(const std::string& key, const std::string& dir, int err) {
  throw UserError(key + " " + dir + ": " + std::strerror(err) + " (" + hint_for(err) + ")");
}

// Inside `dir` (or `dir` itself): is the path under the checkpoint directory also under output_dir?
bool is_within(const fs::path& inner, const fs::path& outer) {
  const fs::path a = fs::weakly_canonical(inner), b = fs::weakly_canonical(outer);
  const auto mismatch = std::mismatch(b.begin(), b.end(), a.begin(), a.end());
  return mismatch.first == b.end();
}

}  // namespace

void make_writable_dir(const std::string& dir, const std::string& key) {
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) refuse(key, dir, EEXIST);
  fs::create_directories(dir, ec);
  if (ec) refuse(key, dir, ec.value());
  const fs::path probe = fs::path(dir) / ".neftune.write-check";
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) refuse(key, dir, errno);
  ::close(fd);
  ::unlink(probe.c_str());
}

DirLock::DirLock(const std::string& dir, const std::string& key) {
  const fs::path path = fs::path(dir) / kLockFile;
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd_ < 0) refuse(key, dir, errno);
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::ifstream in(path);
    std::string holder;
    std::getline(in, holder);
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK) refuse(key, dir, err);
    throw UserError(key + " " + dir + ": in use by another neftune run" + (holder.empty() ? "" : " (" + holder + ")") +
                    ": wait for it to finish, or give this run another " + key);
  }
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  const std::string who = "pid " + std::to_string(::getpid()) + " on " + host + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, who.data(), who.size(), 0) != static_cast<ssize_t>(who.size())) {
    // The lock is held; the holder's name is only for the message another run prints.
  }
}

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the flock
}

RunDirs::RunDirs(const config::TrainConfig& cfg) {
  make_writable_dir(cfg.output_dir, "output_dir");
  locks_.push_back(std::make_unique<DirLock>(cfg.output_dir, "output_dir"));
  const std::string ckpt =
      cfg.checkpoint.dir ? *cfg.checkpoint.dir : (fs::path(cfg.output_dir) / "checkpoints").string();
  make_writable_dir(ckpt, "checkpoint.dir");
  if (!is_within(ckpt, cfg.output_dir)) locks_.push_back(std::make_unique<DirLock>(ckpt, "checkpoint.dir"));
  std::error_code ec;
  const fs::path latest = fs::path(ckpt) / "latest";
  if (fs::exists(fs::symlink_status(latest, ec)) && !fs::is_regular_file(fs::symlink_status(latest, ec))) {
    throw UserError("checkpoint.dir " + ckpt + ": " + latest.string() +
                    " is not a file (neftune writes the newest checkpoint's name there): remove it");
  }
}

}  // namespace neftune::run
