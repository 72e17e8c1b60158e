// The daemon's HTTP API on rank 0 (cpp-httplib, its own thread):
//   GET    /v1/jobs          all jobs: [{id, name, state, step, total_steps, loss, eta_s, ...}]
//   GET    /v1/jobs/{id}     one job
//   POST   /v1/jobs          a YAML job file as the body (?name=...): 201 {"id", "ids"}, 400 {"error"}
//                            (invalid, or a sweep over --max-sweep-jobs), 429 {"error"} (queue full)
//   DELETE /v1/jobs/{id}     cancel: a queued job at once; a running one checkpoints and stops (202)
//   GET    /metrics          Prometheus text format
//   GET    /healthz
// Every request needs "Authorization: Bearer <token>" when a token is configured (401 otherwise);
// bodies above the limit get 413; an unknown path 404, another method on a known path 405 with an
// Allow header. Every error has a JSON body {"error": "..."}.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "launch/serve/spool.h"

namespace httplib {
class Server;
}

namespace neftune::serve {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8471;
  std::optional<std::string> token;  // required for any host but loopback
  size_t max_body_bytes = 1 << 20;   // at most config::kMaxConfigBytes (cmd_serve checks)
};

class HttpApi {
 public:
  HttpApi(Spool& spool, HttpOptions options);  // binds (UserError if it cannot) and starts serving
  ~HttpApi();                                  // stops and joins
  int port() const { return port_; }

 private:
  Spool& spool_;
  HttpOptions options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

bool is_loopback(const std::string& host);

}  // namespace neftune::serve
