// A run's directories, prepared before any work: output_dir and the checkpoint directory are created
// (or refused with the key, the path and a fix), checked writable, and held with an exclusive lock
// for the run's lifetime, so a second run started on the same directory stops with a clear error
// instead of interleaving its files with the first's.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/train_config.h"
#include "trainer/io/file_lock.h"

namespace neftune::run {

// An exclusive lock on <dir>/.neftune.lock (io::FileLock), held until destruction.
class DirLock {
 public:
  // Throws UserError naming `key` and `dir` (and the holder) when another process holds the lock.
  DirLock(const std::string& dir, const std::string& key);

 private:
  io::FileLock lock_;
};

// Creates `dir` (with parents) and checks that a file can be created in it. Throws UserError
// "<key> <dir>: <reason> (<fix>)" for a file in the way, a read-only or unwritable location, a name too long.
void make_writable_dir(const std::string& dir, const std::string& key);

// Rank 0 of a training run: output_dir and the checkpoint directory made, checked and locked.
class RunDirs {
 public:
  explicit RunDirs(const config::TrainConfig& cfg);

 private:
  std::vector<std::unique_ptr<DirLock>> locks_;
};

}  // namespace neftune::run
