#include "trainer/run/stop_signal.h"

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <fstream>

namespace neftune::run {
namespace {
// Lock-free atomics are async-signal-safe; the HTTP thread sets the request while a handler may run.
std::atomic<int> g_signal{0};
std::atomic<bool> g_request{false};
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<bool>::is_always_lock_free);
extern "C" void on_stop_signal(int sig) { g_signal.store(sig); }
}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
}

int stop_signal() { return g_signal.load(); }
int stop_requested() {
  if (const int sig = g_signal.load()) return sig;
  return g_request.load() ? -1 : 0;
}
void request_stop() { g_request.store(true); }
void clear_stop_request() { g_request.store(false); }

void write_stop_marker() {
  if (const char* path = std::getenv("NEFTUNE_STOP_MARKER"); path && *path) std::ofstream(path) << "preempted\n";
}

}  // namespace neftune::run
