#include "launch/serve/http_api.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <regex>
#include <vector>

#include "config/config.h"
#include "trainer/io/file_write.h"

namespace neftune::serve {
using json = nlohmann::json;

namespace {

// Invalid UTF-8 (a message quoting a submitted value) is replaced, never a failure to reply.
void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(2, ' ', false, json::error_handler_t::replace) + "\n", "application/json");
}

// Every path the API serves and its methods (HEAD is GET without the body; OPTIONS lists them).
struct Route {
  std::regex path;
  const char* allow;
};
const std::vector<Route>& routes() {
  static const std::vector<Route> kRoutes = {{std::regex("/healthz"), "GET, HEAD"},
                                             {std::regex("/metrics"), "GET, HEAD"},
                                             {std::regex("/v1/jobs"), "GET, HEAD, POST"},
                                             {std::regex("/v1/jobs/[^/]+"), "GET, HEAD, DELETE"}};
  return kRoutes;
}
const char* kApiSummary = "GET /v1/jobs, POST /v1/jobs, GET|DELETE /v1/jobs/{id}, GET /metrics, GET /healthz";

bool allows(const std::string& allow, const std::string& method) {
  size_t at = 0;
  while (at < allow.size()) {
    const size_t end = std::min(allow.find(", ", at), allow.size());
    if (allow.compare(at, end - at, method) == 0) return true;
    at = end + 2;
  }
  return false;
}

// Unknown paths get 404, known paths with another method 405 (with Allow), OPTIONS 204 (with Allow):
// all with a JSON body, before any handler runs.
bool route_error(const httplib::Request& req, httplib::Response& res) {
  const Route* route = nullptr;
  for (const auto& r : routes())
    if (std::regex_match(req.path, r.path)) route = &r;
  if (!route) {
    reply(res, 404,
          {{"error", "no such endpoint: " + req.method + " " + req.path + " (the API: " + kApiSummary + ")"}});
    return true;
  }
  if (allows(route->allow, req.method)) return false;
  res.set_header("Allow", route->allow);
  if (req.method == "OPTIONS") {
    res.status = 204;
    return true;
  }
  reply(res, 405, {{"error", req.method + " is not allowed on " + req.path + " (allowed: " + route->allow + ")"}});
  return true;
}

}  // namespace

bool is_loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

HttpApi::HttpApi(Spool& spool, HttpOptions options)
    : spool_(spool), options_(std::move(options)), server_(std::make_unique<httplib::Server>()) {
  if (!is_loopback(options_.host) && !options_.token) {
    throw UserError("serve: listening on " + options_.host +
                    " (not loopback) requires a bearer token: pass --token-file FILE");
  }
  auto& s = *server_;
  s.set_payload_max_length(options_.max_body_bytes);
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    // Two lengths for one body (request smuggling): which one a proxy and this server believe differs.
    if (req.get_header_value_count("Content-Length") > 1 ||
        (req.has_header("Content-Length") && req.has_header("Transfer-Encoding"))) {
      reply(res, 400,
            {{"error",
              "a request with more than one body length (Content-Length twice, or with "
              "Transfer-Encoding) is refused: send one Content-Length or a chunked body"}});
      res.set_header("Connection", "close");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (options_.token && req.get_header_value("Authorization") != "Bearer " + *options_.token) {
      reply(res, 401, {{"error", "missing or wrong bearer token"}});
      return httplib::Server::HandlerResponse::Handled;
    }
    return route_error(req, res) ? httplib::Server::HandlerResponse::Handled
                                 : httplib::Server::HandlerResponse::Unhandled;
  });
  // What cpp-httplib refuses itself (a body over the limit, a malformed request) gets a JSON body too.
  s.set_error_handler([this](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;  // one of ours
    if (res.status == 413) {
      reply(res, 413,
            {{"error", "request body over " + std::to_string(options_.max_body_bytes) + " bytes (--max-body-bytes)"}});
    } else {
      reply(res, res.status,
            {{"error", "HTTP " + std::to_string(res.status) +
                           ": a malformed request or an unknown method (the API: " + kApiSummary + ")"}});
    }
  });
  // The pid tells a second daemon started on this port which process holds it.
  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("X-Neftune-Pid", std::to_string(::getpid()));
    res.set_content("ok\n", "text/plain");
  });
  s.Get("/v1/jobs", [this](const httplib::Request&, httplib::Response& res) {
    json jobs = json::array();
    for (const auto& j : spool_.list()) jobs.push_back(j.to_json());
    reply(res, 200, {{"jobs", jobs}});
  });
  s.Get(R"(/v1/jobs/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    const auto j = spool_.get(req.matches[1]);
    if (!j) return reply(res, 404, {{"error", "no job " + std::string(req.matches[1])}});
    reply(res, 200, j->to_json());
  });
  // The body is read here, a piece at a time, so the limit holds for a chunked body as for one with a
  // Content-Length: reading stops at the first byte over it.
  s.Post("/v1/jobs", [this](const httplib::Request& req, httplib::Response& res,
                            const httplib::ContentReader& content) {
    std::string body;
    bool over = false;
    const bool read = content([&](const char* data, size_t n) {
      if (body.size() + n > options_.max_body_bytes) {
        over = true;
        return false;
      }
      body.append(data, n);
      return true;
    });
    if (over || res.status == 413) {          // ours, or cpp-httplib's for a Content-Length over the limit
      res.set_header("Connection", "close");  // the rest of the body is never read
      return reply(
          res, 413,
          {{"error", "request body over " + std::to_string(options_.max_body_bytes) + " bytes (--max-body-bytes)"}});
    }
    if (!read) {
      res.set_header("Connection", "close");
      return reply(res, 400, {{"error", "the request body could not be read (cut short, or a malformed chunk)"}});
    }
    const std::string name = req.has_param("name") ? req.get_param_value("name") : "job";
    try {
      const auto ids = spool_.submit(body, name, "POST /v1/jobs");
      const auto first = spool_.get(ids.front());
      json body = {{"id", ids.front()}, {"ids", ids}};
      if (first && !first->sweep.empty()) body["sweep"] = first->sweep;
      reply(res, 201, body);
    } catch (const config::ConfigError& e) {
      reply(res, 400, {{"error", e.what()}});
    } catch (const QueueFull& e) {
      reply(res, 429, {{"error", e.what()}});
    } catch (const UserError& e) {
      reply(res, 400, {{"error", e.what()}});
    } catch (const io::WriteError& e) {
      reply(res, 507, {{"error", std::string("the spool cannot be written (a full disk?): ") + e.what()}});
    } catch (const std::exception& e) {
      reply(res, 500, {{"error", e.what()}});
    }
  });
  s.Delete(R"(/v1/jobs/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    switch (spool_.cancel(id)) {
      case Spool::Cancel::cancelled:
        return reply(res, 200, {{"id", id}, {"state", "cancelled"}});
      case Spool::Cancel::cancelling:
        return reply(res, 202, {{"id", id}, {"state", "cancelling"}});
      case Spool::Cancel::not_found:
        return reply(res, 404, {{"error", "no job " + id}});
      case Spool::Cancel::finished:
        return reply(res, 409, {{"error", "job " + id + " has already finished"}});
    }
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(spool_.prometheus_metrics(), "text/plain; version=0.0.4");
  });

  // An exclusive port: cpp-httplib's default also sets SO_REUSEPORT, with which a second daemon binds the
  // same port and the kernel splits the requests between the two.
  s.set_socket_options([](socket_t sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);  // a restart may bind a port in TIME_WAIT
  });
  port_ = options_.port == 0 ? s.bind_to_any_port(options_.host)
                             : (s.bind_to_port(options_.host, options_.port) ? options_.port : -1);
  if (port_ <= 0) {
    const std::string where = options_.host + ":" + std::to_string(options_.port);
    httplib::Client other(options_.host, options_.port);
    other.set_connection_timeout(1);
    other.set_read_timeout(2);
    const auto r = other.Get("/healthz");
    if (r && r->has_header("X-Neftune-Pid")) {
      throw UserError("serve: " + where + " is in use by another neftune daemon (pid " +
                      r->get_header_value("X-Neftune-Pid") +
                      "): stop it, or give this one another port with --listen HOST:PORT");
    }
    throw UserError("serve: cannot listen on " + where + " (in use by another program?): pass --listen HOST:PORT");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() does nothing until the accept loop runs: wait for it, so that a daemon with nothing to do
  // (--exit-when-idle) can stop the server a moment after starting it instead of hanging in join().
  for (int i = 0; i < 1000 && !server_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  spdlog::info("[serve] HTTP API on http://{}:{}{}", options_.host, port_,
               options_.token ? " (bearer token required)" : "");
}

HttpApi::~HttpApi() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace neftune::serve
