#include "trainer/run/stop_signal.h"

#include <csignal>

namespace neftune::run {
namespace {
volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop_signal(int sig) { g_stop = sig; }
}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
}

int stop_requested() { return g_stop; }
void request_stop() { g_stop = -1; }
void clear_stop() { g_stop = 0; }

}  // namespace neftune::run
