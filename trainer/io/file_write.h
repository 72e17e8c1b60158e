// Writing files so that a crash, a full disk or a read-only filesystem never leaves a half-written file
// under its final name: the one way neftune writes a small file it must not lose.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace neftune::io {

// The environment refused a write (disk full, read-only filesystem, quota, I/O error): not a problem with
// the user's input, so not a UserError. The message names the path and the system's reason.
class WriteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Writes `text` to `path` through a temporary file beside it: every write checked, fsync, rename over
// `path`, fsync of the directory. On any failure the temporary file is removed, whatever was at `path`
// before is untouched, and WriteError is thrown.
void write_file_atomic(const std::string& path, std::string_view text);

// fsync a file or directory by path (best effort: a path that cannot be opened is skipped).
void fsync_path(const std::string& path);

}  // namespace neftune::io
