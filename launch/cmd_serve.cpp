// neftune serve --spool DIR [--listen HOST:PORT] [--token-file FILE] ...
#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "config/errors.h"
#include "config/size_limit.h"
#include "launch/commands.h"
#include "launch/serve/daemon.h"
#include "trainer/io/file_read.h"

namespace neftune::launch {

namespace {

// "HOST:PORT": a port from 1 to 65535, or 0 for any free one (the daemon writes it to daemon.json).
void parse_listen(const std::string& listen, serve::HttpOptions& http) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0)
    throw UserError("--listen " + listen + ": expected HOST:PORT, e.g. 127.0.0.1:8471");
  const std::string port = listen.substr(colon + 1);
  const bool digits = !port.empty() && port.size() <= 5 &&
                      std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); });
  if (!digits || std::stoi(port) > 65535) {
    throw UserError("--listen " + listen + ": the port must be a number from 1 to 65535 (0 picks a free one), got '" +
                    port + "'");
  }
  http.host = listen.substr(0, colon);
  http.port = std::stoi(port);
}

}  // namespace

Action add_serve_command(CLI::App& app, dist::World& world) {
  struct Opts {
    serve::ServeOptions serve;
    std::string listen = "127.0.0.1:8471", token_file;
    bool no_default_job = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("serve", "Run queued training jobs one after another on one live MPI world");
  cmd->add_option("--spool", o->serve.spool,
                  "spool directory: incoming/ queue/ running/ done/ failed/ cancelled/ reports/")
      ->required();
  cmd->add_option("--listen", o->listen,
                  "HTTP API address (anything but loopback needs --token-file; port 0 = any free)")
      ->capture_default_str();
  cmd->add_option("--token-file", o->token_file, "file holding the bearer token every request must carry");
  cmd->add_option("--max-body-bytes", o->serve.http.max_body_bytes, "largest accepted request body (413 above)")
      ->check(CLI::Range(size_t{1}, config::kMaxConfigBytes))
      ->capture_default_str();
  cmd->add_option("--max-sweep-jobs", o->serve.limits.max_sweep_jobs, "most jobs one sweep may make (400 above)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->capture_default_str();
  cmd->add_option("--max-queued-jobs", o->serve.limits.max_queued_jobs, "most jobs waiting in the queue (429 above)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->capture_default_str();
  cmd->add_option("--poll-ms", o->serve.poll_ms, "how often incoming/ is scanned")->capture_default_str();
  cmd->add_flag("--exit-when-idle", o->serve.exit_when_idle, "exit once nothing is queued or running");
  cmd->add_flag("--no-default-job", o->no_default_job, "do not queue the quick-start job on a new spool");
  return [o, &world]() {
    serve::ServeOptions opts = o->serve;
    opts.default_job = !o->no_default_job;
    // Every rank checks the same arguments: a mistake is one clean exit 2 everywhere, not an abort.
    dist::agree(*world.host, [&] {
      parse_listen(o->listen, opts.http);
      if (!o->token_file.empty()) {
        std::istringstream in(io::read_input(o->token_file, io::Input::json, "bearer token file (--token-file)"));
        std::string token;
        if (!(in >> token) || token.empty())
          throw UserError(o->token_file + ": cannot read a bearer token (--token-file)");
        opts.http.token = token;
      }
    });
    return serve::run_daemon(opts, world);
  };
}

}  // namespace neftune::launch
