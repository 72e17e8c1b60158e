#include "launch/serve/spool_lock.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <system_error>
#include <utility>

#include "config/errors.h"

namespace neftune::serve {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void refuse(const std::string& spool, const std::string& what) {
  throw UserError("--spool " + spool + ": " + what);
}

io::FileLock lock_spool(const std::string& spool) {
  std::error_code ec;
  const fs::file_status st = fs::status(spool, ec);
  if (fs::exists(st) && !fs::is_directory(st))
    refuse(spool, "exists and is not a directory (pass a directory; a missing one is created)");
  if (!fs::exists(st)) {
    fs::create_directories(spool, ec);
    if (ec) refuse(spool, "cannot create the spool directory: " + ec.message());
  }
  // Every state change is a rename inside the spool: it must be writable, which access() checks for
  // users (root passes it: taking the lock then finds a read-only file system).
  if (access(spool.c_str(), W_OK | X_OK) != 0) {
    refuse(spool, std::string("the spool directory is not writable (") + std::strerror(errno) +
                      "): pass a directory this user can write");
  }
  std::string holder;
  std::optional<io::FileLock> lock;
  try {
    lock = io::FileLock::try_lock((fs::path(spool) / ".lock").string(), &holder);
  } catch (const std::system_error& e) {
    const int err = e.code().value();
    if (err == EACCES || err == EPERM || err == EROFS) {
      refuse(spool, std::string("the spool directory is not writable (") + e.what() +
                        "): pass a directory this user can write");
    }
    // flock itself failed (ENOLCK: a file system without locks, as some NFS mounts are) or the disk is full.
    refuse(spool, std::string(e.what()) + ": pass a spool directory on a local file system with space left");
  }
  if (!lock) {
    throw UserError("spool " + spool + " is in use by another daemon" + (holder.empty() ? "" : " (" + holder + ")") +
                    ": stop that daemon first, or pass another --spool");
  }
  return std::move(*lock);
}

}  // namespace

SpoolLock::SpoolLock(const std::string& spool) : lock_(lock_spool(spool)) {}

}  // namespace neftune::serve
