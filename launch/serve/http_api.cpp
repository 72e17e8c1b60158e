#include "launch/serve/http_api.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <regex>
#include <vector>

#include "config/config.h"

namespace neftune::serve {
using json = nlohmann::json;

namespace {

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(2) + "\n", "application/json");
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
    if (options_.token && req.get_header_value("Authorization") != "Bearer " + *options_.token) {
      reply(res, 401, {{"error", "missing or wrong bearer token"}});
      return httplib::Server::HandlerResponse::Handled;
    }
    return route_error(req, res) ? httplib::Server::HandlerResponse::Handled
                                 : httplib::Server::HandlerResponse::Unhandled;
  });
  // What cpp-httplib refuses itself (a body over the limit, a malformed request) gets a JSON body too.
  s.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;  // one of ours
    // `curl --data-binary` without a Content-Type sends a form, which cpp-httplib caps far lower.
    const bool form = req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0;
    if (res.status == 413 && form) {
      reply(res, 413,
            {{"error", "a form-encoded body is limited to " +
                           std::to_string(CPPHTTPLIB_FORM_URL_ENCODED_PAYLOAD_MAX_LENGTH) +
                           " bytes: send the job file as YAML (curl -H 'Content-Type: application/yaml' "
                           "--data-binary @job.yaml ...)"}});
    } else if (res.status == 413) {
      reply(res, 413,
            {{"error", "request body over " + std::to_string(options_.max_body_bytes) + " bytes (--max-body-bytes)"}});
    } else {
      reply(res, res.status,
            {{"error", "HTTP " + std::to_string(res.status) +
                           ": a malformed request or an unknown method (the API: " + kApiSummary + ")"}});
    }
  });
  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
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
  s.Post("/v1/jobs", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.has_param("name") ? req.get_param_value("name") : "job";
    try {
      const auto ids = spool_.submit(req.body, name, "POST /v1/jobs");
      const auto first = spool_.get(ids.front());
      json body = {{"id", ids.front()}, {"ids", ids}};
      if (first && !first->sweep.empty()) body["sweep"] = first->sweep;
      reply(res, 201, body);
    } catch (const config::ConfigError& e) {
      reply(res, 400, {{"error", e.what()}});
    } catch (const QueueFull& e) {
      reply(res, 429, {{"error", e.what()}});
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

  port_ = options_.port == 0 ? s.bind_to_any_port(options_.host)
                             : (s.bind_to_port(options_.host, options_.port) ? options_.port : -1);
  if (port_ <= 0) {
    throw UserError("serve: cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                    " (in use? pass --listen HOST:PORT)");
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
