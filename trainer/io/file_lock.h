// An exclusive flock(2) on one file, taken without waiting and held until destruction. The file records
// its holder ("pid N on HOST") for the message a refused process prints; the kernel drops the lock when
// the holder dies, so a crash leaves nothing stale. The file itself stays: removing it would race with
// the next process taking the lock.
#pragma once

#include <optional>
#include <string>

namespace neftune::io {

class FileLock {
 public:
  // Opens (creating) `path` and takes the lock. Returns nullopt when another process holds it, with that
  // holder's record in *holder ("" if it has not written one yet); throws std::system_error (with the
  // errno) when the file cannot be opened, locked or written.
  static std::optional<FileLock> try_lock(const std::string& path, std::string* holder);
  ~FileLock();
  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace neftune::io
