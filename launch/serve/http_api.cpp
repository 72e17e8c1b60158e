#include "launch/serve/http_api.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "config/config.h"

namespace neftune::serve {
using json = nlohmann::json;

namespace {

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(2) + "\n", "application/json");
}

}  // namespace

bool is_loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

HttpApi::HttpApi(Spool& spool, HttpOptions options)
    : spool_(spool), options_(std::move(options)), server_(std::make_unique<httplib::Server>()) {
  if (!is_loopback(options_.host) && !options_.token)
    throw UserError("serve: listening on " + options_.host +
                    " (not loopback) requires a bearer token: pass --token-file FILE");
  auto& s = *server_;
  s.set_payload_max_length(options_.max_body_bytes);
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (options_.token && req.get_header_value("Authorization") != "Bearer " + *options_.token) {
      reply(res, 401, {{"error", "missing or wrong bearer token"}});
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
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
    } catch (const std::exception& e) {
      reply(res, 500, {{"error", e.what()}});
    }
  });
  s.Delete(R"(/v1/jobs/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    switch (spool_.cancel(id)) {
      case Spool::Cancel::cancelled: return reply(res, 200, {{"id", id}, {"state", "cancelled"}});
      case Spool::Cancel::cancelling: return reply(res, 202, {{"id", id}, {"state", "cancelling"}});
      case Spool::Cancel::not_found: return reply(res, 404, {{"error", "no job " + id}});
      case Spool::Cancel::finished: return reply(res, 409, {{"error", "job " + id + " has already finished"}});
    }
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(spool_.prometheus_metrics(), "text/plain; version=0.0.4");
  });

  port_ = options_.port == 0 ? s.bind_to_any_port(options_.host) : (s.bind_to_port(options_.host, options_.port) ? options_.port : -1);
  if (port_ <= 0)
    throw UserError("serve: cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                    " (in use? pass --listen HOST:PORT)");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  spdlog::info("[serve] HTTP API on http://{}:{}{}", options_.host, port_, options_.token ? " (bearer token required)" : "");
}

HttpApi::~HttpApi() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace neftune::serve
