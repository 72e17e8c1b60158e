// Graceful stops. SIGTERM and SIGUSR1 (what Slurm's --signal and schedulers send before a time limit or a
// preemption) only set a flag; the trainer checks it on every rank after each optimizer step (an
// all-reduce, so all ranks stop at the same step), writes a checkpoint and exits with kExitPreempted.
// request_stop() does the same from code (the daemon's cancel).
#pragma once

namespace neftune::run {

void install_stop_handlers();
// The signal that asked to stop (or -1 for request_stop()), 0 if none.
int stop_requested();
void request_stop();
void clear_stop();

}  // namespace neftune::run
