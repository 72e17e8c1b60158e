// Graceful stops. SIGTERM and SIGUSR1 (what Slurm's --signal and schedulers send before a time limit or a
// preemption) only set a flag; the trainer checks it on every rank after each optimizer step (an
// all-reduce, so all ranks stop at the same step), writes a checkpoint and exits with kExitPreempted.
// request_stop() does the same from code (the daemon's cancel). The two are kept apart so that clearing a
// cancel can never swallow a signal that arrived meanwhile.
#pragma once

namespace neftune::run {

void install_stop_handlers();
// The signal that asked to stop if any, else -1 if request_stop() did, else 0.
int stop_requested();
// A signal only (request_stop() does not count).
int stop_signal();
void request_stop();
// Withdraws a request_stop(); a signal stays.
void clear_stop_request();

// When $NEFTUNE_STOP_MARKER names a file, creates it: main() calls this on rank 0 as it exits with
// kExitPreempted (a checkpoint was written after a stop), so a wrapper whose launcher loses that exit
// code (mpirun answers a SIGTERM of its own with 1) still knows (launch/mpirun-requeue.sh).
void write_stop_marker();

}  // namespace neftune::run
