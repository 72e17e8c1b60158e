// The user-error channel: mistakes in configs, data, paths and checkpoints. main() catches these and
// prints the message (which names the file/field/record and a fix) and exits with kExitUserError.
// Library failures (MPI, NCCL, CUDA) do not use this: they go through the check macros in
// distributed/check.h and abort every rank.
#pragma once

#include <stdexcept>
#include <string>

namespace neftune {

// Process exit codes (documented in the README).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;     // a bug or a library failure
inline constexpr int kExitUserError = 2;   // bad config, data, path or checkpoint
inline constexpr int kExitPreempted = 75;  // stopped by SIGTERM/SIGUSR1 after writing a checkpoint (EX_TEMPFAIL)

class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace io {
// A checkpoint or weights file (neftune's own checkpoints, an HF model directory, a safetensors file)
// that is missing, truncated, inconsistent or lying. A write the environment refuses (a full disk) is
// not one: that is io::WriteError (trainer/io/file_write.h).
class CheckpointError : public UserError {
 public:
  using UserError::UserError;
};
}  // namespace io

// A stop signal (SIGTERM/SIGUSR1, or the daemon's cancel) that arrived during setup, before the first
// step: setup gives up at its next check instead of finishing (tokenizing a large dataset or loading a
// large model can take minutes, longer than a scheduler's grace period). Nothing was trained, so nothing
// is saved; the command exits with kExitPreempted and a rerun starts where the last checkpoint left off.
class StopRequested : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace neftune
