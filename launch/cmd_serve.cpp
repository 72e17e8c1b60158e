// neftune serve --spool DIR [--listen HOST:PORT] [--token-file FILE] ...
#include <fstream>

#include "config/errors.h"
#include "launch/commands.h"
#include "launch/serve/daemon.h"

namespace neftune::launch {

Action add_serve_command(CLI::App& app, dist::World& world) {
  struct Opts {
    serve::ServeOptions serve;
    std::string listen = "127.0.0.1:8471", token_file;
    bool no_default_job = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("serve", "Run queued training jobs one after another on one live MPI world");
  cmd->add_option("--spool", o->serve.spool, "spool directory: incoming/ queue/ running/ done/ failed/ cancelled/ reports/")
      ->required();
  cmd->add_option("--listen", o->listen, "HTTP API address (anything but loopback needs --token-file)")->capture_default_str();
  cmd->add_option("--token-file", o->token_file, "file holding the bearer token every request must carry");
  cmd->add_option("--max-body-bytes", o->serve.http.max_body_bytes, "largest accepted request body (413 above)")
      ->capture_default_str();
  cmd->add_option("--poll-ms", o->serve.poll_ms, "how often incoming/ is scanned")->capture_default_str();
  cmd->add_flag("--exit-when-idle", o->serve.exit_when_idle, "exit once nothing is queued or running");
  cmd->add_flag("--no-default-job", o->no_default_job, "do not queue the quick-start job on a new spool");
  return [o, &world]() {
    serve::ServeOptions opts = o->serve;
    opts.default_job = !o->no_default_job;
    const auto colon = o->listen.rfind(':');
    if (colon == std::string::npos) throw UserError("--listen: expected HOST:PORT, got '" + o->listen + "'");
    opts.http.host = o->listen.substr(0, colon);
    try {
      opts.http.port = std::stoi(o->listen.substr(colon + 1));
    } catch (const std::exception&) {
      throw UserError("--listen: bad port in '" + o->listen + "'");
    }
    if (!o->token_file.empty()) {
      std::ifstream in(o->token_file);
      std::string token;
      if (!in || !(in >> token) || token.empty())
        throw UserError(o->token_file + ": cannot read a bearer token (--token-file)");
      opts.http.token = token;
    }
    return serve::run_daemon(opts, world);
  };
}

}  // namespace neftune::launch
