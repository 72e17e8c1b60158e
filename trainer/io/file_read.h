// The one way neftune opens a file it reads: configs, data, tokenizers, model and checkpoint files, job
// files, token files. Only a regular file is read (a FIFO, a device, a socket or a directory is refused
// before a byte is read, so `mkfifo` or /dev/zero at a path cannot hang or flood a run), a file over its
// kind's size limit is refused before it is read, and a stop request (SIGTERM/SIGUSR1, the daemon's
// cancel) is honoured between chunks of a long read.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "config/errors.h"

namespace neftune::io {

// A file that cannot be read as the input it should be: missing, unreadable, not a regular file, or
// over its size limit. The message names the path, what it was read as, and what to do.
class InputError : public UserError {
 public:
  using UserError::UserError;
};

// What a file is read as. Each kind has a size limit (see input_limit): a real file of that kind is far
// below it, so a bigger one is almost surely the wrong file, and it is refused before it is read.
enum class Input {
  config,     // a YAML config or a daemon job file: 1 MiB, fixed
  json,       // small JSON: config.json, tokenizer_config.json, an index, meta.json, a token file: 64 MiB
  tokenizer,  // tokenizer.json, tokenizer.model, a chat template file: 512 MiB
  data,       // training/eval data, prompts, task files: 16 GiB
  weights,    // safetensors files and checkpoint shards: mapped or streamed, never held whole: no limit
};

// The limit for `kind` in bytes. Every kind but config can be raised (or lowered) by an environment
// variable giving MiB: NEFTUNE_MAX_JSON_MIB, NEFTUNE_MAX_TOKENIZER_MIB, NEFTUNE_MAX_DATA_MIB,
// NEFTUNE_MAX_WEIGHTS_MIB. An unparsable value is an InputError naming the variable.
uint64_t input_limit(Input kind);
// The environment variable that sets `kind`'s limit ("" for config).
const char* input_limit_variable(Input kind);

// An open regular file: its descriptor (closed on destruction) and size at open.
class InputFile {
 public:
  // Opens `path` without blocking (a FIFO without a writer cannot hold the open), checks with fstat that
  // it is a regular file within the limit of `kind`, then makes reads blocking again. `what` says what
  // the file is for in errors ("data file (data.train)", "tokenizer").
  InputFile(const std::string& path, Input kind, std::string_view what);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Hands the descriptor to the caller, who closes it.
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  // The whole file, read in chunks of 4 MiB. A file that grew past its limit since it was opened is
  // refused; a stop request between chunks throws StopRequested.
  std::string read_all();

 private:
  std::string path_, what_;
  Input kind_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// InputFile(path, kind, what).read_all().
std::string read_input(const std::string& path, Input kind, std::string_view what);

// read_input, with an InputError rethrown as `Error` (a CheckpointError, a ConfigError) for callers whose
// callers tell errors apart by type.
template <class Error>
std::string read_input_as(const std::string& path, Input kind, std::string_view what) {
  try {
    return read_input(path, kind, what);
  } catch (const InputError& e) {
    throw Error(e.what());
  }
}

}  // namespace neftune::io
