#include "trainer/run/run_dirs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <system_error>
#include <utility>

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

io::FileLock lock_dir(const std::string& dir, const std::string& key) {
  std::string holder;
  std::optional<io::FileLock> lock;
  try {
    lock = io::FileLock::try_lock((fs::path(dir) / kLockFile).string(), &holder);
  } catch (const std::system_error& e) {
    refuse(key, dir, e.code().value());
  }
  if (!lock) {
    throw UserError(key + " " + dir + ": in use by another neftune run" + (holder.empty() ? "" : " (" + holder + ")") +
                    ": wait for it to finish, or give this run another " + key);
  }
  return std::move(*lock);
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

DirLock::DirLock(const std::string& dir, const std::string& key) : lock_(lock_dir(dir, key)) {}

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
