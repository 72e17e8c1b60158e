// Writing files so that a crash, a full disk or a read-only filesystem never leaves a half-written file
// under its final name: the one way neftune writes a file it must not lose.
#pragma once

#include <cstddef>
#include <cstdint>
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

// A file too large to hold in memory, written in pieces with the guarantees of write_file_atomic: the
// pieces go to a temporary file beside `path` (".<name>.tmp"), every write checked; commit() fsyncs it,
// renames it over `path` and fsyncs the directory. Destroyed without commit(), or on any failure, the
// temporary file is removed and whatever was at `path` before is untouched. Failures throw WriteError.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t n);
  void commit();
  uint64_t bytes() const { return written_; }

 private:
  [[noreturn]] void fail(const std::string& what, int err);

  std::string path_, tmp_;
  int fd_ = -1;
  uint64_t written_ = 0, writeback_started_ = 0;  // bytes written / handed to the disk so far
};

// Writes `text` to `path` through a temporary file beside it: every write checked, fsync, rename over
// `path`, fsync of the directory. On any failure the temporary file is removed, whatever was at `path`
// before is untouched, and WriteError is thrown.
void write_file_atomic(const std::string& path, std::string_view text);

// Copies the file `from` to `to` the same way (a source that cannot be read is a WriteError naming it).
void copy_file_atomic(const std::string& from, const std::string& to);

// fsync a file or directory by path (best effort: a path that cannot be opened is skipped).
void fsync_path(const std::string& path);

}  // namespace neftune::io
