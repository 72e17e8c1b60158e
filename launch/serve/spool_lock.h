// Claims a spool directory for one daemon. Two daemons on one spool would hand out the same job ids
// and move each other's jobs, so the first holds an exclusive lock on <spool>/.lock (io::FileLock: the
// holder's pid and host in the file) for as long as it lives, and a second is refused. The lock goes
// with the process: a daemon killed by SIGKILL leaves no stale lock behind.
#pragma once

#include <string>

#include "trainer/io/file_lock.h"

namespace neftune::serve {

class SpoolLock {
 public:
  // Creates the spool directory if missing and takes the lock. UserError (naming the path and --spool)
  // when the path is not a directory, is not writable, or another daemon holds the lock.
  explicit SpoolLock(const std::string& spool);

 private:
  io::FileLock lock_;
};

}  // namespace neftune::serve
