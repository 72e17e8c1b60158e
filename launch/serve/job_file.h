// Reading a job file that a user dropped in incoming/. Whoever can write there cannot make the daemon
// read anything else, or hang it: a symlink is not followed (O_NOFOLLOW), a FIFO or device does not
// block (O_NONBLOCK) and is refused (regular files only, by fstat), a file with a second name (a hard
// link to a file elsewhere) is refused, and nothing over config::kMaxConfigBytes is read. A refusal
// names the file and why, never its content.
#pragma once

#include <string>

namespace neftune::serve {

struct JobFile {
  std::string text;   // the content, when read
  std::string error;  // why it was refused; empty when read
  bool keep = false;  // refused, but the user's own regular file (too big): moved to failed/ unread
};

JobFile read_job_file(const std::string& path);

}  // namespace neftune::serve
