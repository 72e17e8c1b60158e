#include "launch/serve/job_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "config/size_limit.h"

namespace neftune::serve {

namespace {

const char* kind_of(mode_t mode) {
  if (S_ISLNK(mode)) return "symbolic link";
  if (S_ISDIR(mode)) return "directory";
  if (S_ISFIFO(mode)) return "FIFO";
  if (S_ISSOCK(mode)) return "socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "device";
  return "special file";
}

std::string refused(const std::string& path, mode_t mode) {
  return path + ": a " + kind_of(mode) + ", refused: job files must be regular files" +
         (S_ISLNK(mode) ? " (copy the file into incoming/ instead of linking it)" : "");
}

std::string too_big(const std::string& path, uint64_t size) {
  return path + ": job file is " + config::format_size(size) + ", over the limit of " +
         config::format_size(config::kMaxConfigBytes) + " (a job file is a few KB: check that this is the job file)";
}

}  // namespace

JobFile read_job_file(const std::string& path) {
  JobFile f;
  const int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    struct stat st {};
    if (lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
      f.error = refused(path, st.st_mode);
    } else {
      f.error = path + ": cannot open (" + std::strerror(err) + ")";
      f.keep = err != ENOENT;
    }
    return f;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    f.error = path + ": cannot stat (" + std::strerror(errno) + ")";
  } else if (!S_ISREG(st.st_mode)) {
    f.error = refused(path, st.st_mode);
  } else if (st.st_nlink != 1) {
    f.error = path + ": has " + std::to_string(st.st_nlink) +
              " names (a hard link), refused: copy the file into incoming/ instead of linking it";
  } else if (static_cast<uint64_t>(st.st_size) > config::kMaxConfigBytes) {
    f.error = too_big(path, static_cast<uint64_t>(st.st_size));
    f.keep = true;
  } else {
    // Up to one chunk over the limit: a file that grew since fstat is refused as well.
    char buf[1 << 16];
    while (f.error.empty()) {
      const ssize_t n = read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) f.error = path + ": cannot read (" + std::strerror(errno) + ")";
      if (n <= 0) break;
      f.text.append(buf, static_cast<size_t>(n));
      if (f.text.size() > config::kMaxConfigBytes) f.error = too_big(path, f.text.size());
    }
    if (!f.error.empty()) {
      f.text.clear();
      f.keep = true;
    }
  }
  close(fd);
  return f;
}

}  // namespace neftune::serve
