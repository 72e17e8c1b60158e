#include "trainer/run/memory_budget.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "config/errors.h"

namespace neftune::run {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The value after "<key> " on a line of a memory.stat file; -1 when absent.
int64_t stat_value(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string k;
  long long v = 0;
  while (in >> k >> v)
    if (k == key) return v;
  return -1;
}

int64_t read_int(const std::string& path) {
  long long v = -1;
  std::istringstream(read_text(path)) >> v;
  return v;
}

// Lines "hierarchy-id:controllers:path" of /proc/self/cgroup: the path of the v2 hierarchy ("0::") or
// of the v1 memory controller.
std::string cgroup_path(const std::string& proc_cgroup, bool v2) {
  std::istringstream in(proc_cgroup);
  for (std::string line; std::getline(in, line);) {
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = "," + line.substr(a + 1, b - a - 1) + ",";
    if (v2 ? line.compare(0, 3, "0::") == 0 : controllers.find(",memory,") != std::string::npos)
      return line.substr(b + 1);
  }
  return "";
}

struct CgroupLimit {
  int64_t room = -1;   // what the limit still allows: limit - (usage - reclaimable page cache)
  int64_t limit = -1;  // -1: no limit
  std::string file;
};

// The tightest memory limit of this process's cgroups: v2 checks its cgroup and every ancestor up to
// the mount (inside a container, the container's own cgroup); v1 reads the hierarchical limit.
CgroupLimit cgroup_limit() {
  CgroupLimit best;
  auto consider = [&](int64_t limit, int64_t usage, int64_t inactive, const std::string& file) {
    if (limit < 0) return;
    const int64_t room = std::max<int64_t>(0, limit - std::max<int64_t>(0, usage - std::max<int64_t>(0, inactive)));
    if (best.room < 0 || room < best.room) best = {room, limit, file};
  };
  const std::string proc = read_text("/proc/self/cgroup");
  if (std::ifstream("/sys/fs/cgroup/cgroup.controllers")) {  // the unified (v2) hierarchy
    std::string path = cgroup_path(proc, true);
    while (true) {
      const std::string dir = "/sys/fs/cgroup" + (path == "/" ? "" : path);
      consider(cgroup_limit_bytes(read_text(dir + "/memory.max")), read_int(dir + "/memory.current"),
               stat_value(read_text(dir + "/memory.stat"), "inactive_file"), dir + "/memory.max");
      if (path.empty() || path == "/") break;
      path = path.substr(0, path.find_last_of('/'));
    }
  } else {
    std::string dir = "/sys/fs/cgroup/memory" + cgroup_path(proc, false);
    if (!std::ifstream(dir + "/memory.limit_in_bytes")) dir = "/sys/fs/cgroup/memory";  // a namespaced mount
    const std::string stat = read_text(dir + "/memory.stat");
    const int64_t hierarchical = stat_value(stat, "hierarchical_memory_limit");  // the ancestors' limits too
    const int64_t limit = cgroup_limit_bytes(hierarchical >= 0 ? std::to_string(hierarchical)
                                                               : read_text(dir + "/memory.limit_in_bytes"));
    consider(limit, read_int(dir + "/memory.usage_in_bytes"), stat_value(stat, "total_inactive_file"),
             dir + "/memory.limit_in_bytes");
  }
  return best;
}

std::string format_count(double n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", n);
  return buf;
}

// The integer at the start of `s` (after blanks); -1 when there is none, or it is negative or too large.
int64_t leading_integer(const char* s) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s, &end, 10);
  return end == s || errno == ERANGE || v < 0 ? -1 : static_cast<int64_t>(v);
}

}  // namespace

int64_t meminfo_bytes(const std::string& text, const std::string& field) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.compare(0, field.size() + 1, field + ":") != 0) continue;
    const int64_t kb = leading_integer(line.c_str() + field.size() + 1);
    return kb < 0 ? -1 : kb * 1024;
  }
  return -1;
}

int64_t cgroup_limit_bytes(const std::string& text) {
  const int64_t v = text.compare(0, 3, "max") == 0 ? -1 : leading_integer(text.c_str());
  return v >= (int64_t{1} << 62) ? -1 : v;  // v1 says "unlimited" as ~2^63
}

HostMemory host_memory() {
  HostMemory m;
  const std::string meminfo = read_text("/proc/meminfo");
  m.available = meminfo_bytes(meminfo, "MemAvailable");
  m.total = meminfo_bytes(meminfo, "MemTotal");
  m.source = "MemAvailable in /proc/meminfo";
  const CgroupLimit cg = cgroup_limit();
  if (cg.room >= 0 && (m.available < 0 || cg.room < m.available)) {
    m.available = cg.room;
    m.source = "the cgroup limit in " + cg.file;
  }
  if (cg.limit >= 0 && (m.total < 0 || cg.limit < m.total)) m.total = cg.limit;
  return m;
}

std::string format_bytes(double bytes) {
  static const char* units[] = {"bytes", "KB", "MB", "GB", "TB", "PB", "EB"};
  int u = 0;
  while (bytes >= 1000 && u < 6) {
    bytes /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

std::optional<int64_t> training_state_bytes(const model::LlamaConfig& c, int world_size, config::Sharding sharding) {
  const auto units = c.checked_unit_sizes();
  if (!units) return std::nullopt;
  const int64_t n = sharding == config::Sharding::none ? 1 : std::max(1, world_size);
  // Each unit is padded to a multiple of the world size and split evenly.
  auto per_rank = [&](int64_t numel) { return (numel + n - 1) / n; };
  int64_t elems = 0, layers = 0, bytes = 0;
  if (__builtin_mul_overflow(per_rank(units->layer), c.num_hidden_layers, &layers) ||
      __builtin_add_overflow(per_rank(units->embed) + per_rank(units->head), layers, &elems) ||
      __builtin_mul_overflow(elems, int64_t{16}, &bytes))  // fp32 master + gradient + exp_avg + exp_avg_sq
    return std::nullopt;
  return bytes;
}

void check_training_memory(const model::LlamaConfig& c, const config::TrainConfig& cfg, const dist::World& world,
                           at::Device device) {
  if (!device.is_cpu()) return;  // the state lives in the GPU's memory
  const std::string model = cfg.model.path ? "model.path " + *cfg.model.path : std::string("model.init");
  const double params = static_cast<double>(c.checked_unit_sizes() ? c.num_parameters() : -1);
  const auto per_rank = training_state_bytes(c, world.size, cfg.distributed.sharding);
  const HostMemory host = host_memory();
  if (host.available < 0) return;  // nothing to compare with (no /proc)
  const int ranks_here = std::max(1, world.local_size);
  const double need = per_rank ? static_cast<double>(*per_rank) * ranks_here : 1e300;
  if (need <= static_cast<double>(host.available)) return;
  std::string msg =
      "the model (" + model + ", " + (params >= 0 ? format_count(params) : "over 2^63") +
      " parameters) needs at least " +
      (per_rank ? format_bytes(static_cast<double>(*per_rank)) : std::string("more than 2^63 bytes")) +
      " per rank for training (fp32 weights, gradients and two AdamW moments, 16 bytes a parameter, over " +
      std::to_string(cfg.distributed.sharding == config::Sharding::none ? 1 : world.size) + " shard(s))";
  if (ranks_here > 1)
    msg += ", " + format_bytes(need) + " for the " + std::to_string(ranks_here) + " ranks on this node";
  msg += ", but this machine has " + format_bytes(static_cast<double>(host.available)) + " available (" + host.source;
  if (host.total >= 0) msg += "; total " + format_bytes(static_cast<double>(host.total));
  msg +=
      "): spread the ranks over more nodes (distributed.sharding: full shards the state over all of them), or "
      "use a smaller model";
  if (!cfg.model.path) msg += " (model.init.dim, n_layers, hidden_dim)";
  throw UserError(msg);
}

void check_generation_memory(const model::LlamaConfig& c, int64_t capacity, at::ScalarType dtype, at::Device device,
                             const std::string& option) {
  if (!device.is_cpu()) return;
  // k and v per layer: (1, n_kv_heads, capacity, head_dim) each.
  int64_t per_position = 0, bytes = 0;
  const bool overflow =
      __builtin_mul_overflow(2 * c.num_hidden_layers, c.kv_dim(), &per_position) ||
      __builtin_mul_overflow(per_position, static_cast<int64_t>(at::elementSize(dtype)), &per_position) ||
      __builtin_mul_overflow(per_position, capacity, &bytes);
  const HostMemory host = host_memory();
  if (host.available < 0 || (!overflow && bytes <= host.available)) return;
  throw UserError(option + ": " + std::to_string(capacity) + " positions need a KV cache of " +
                  (overflow ? std::string("more than 2^63 bytes") : format_bytes(static_cast<double>(bytes))) +
                  ", but this machine has " + format_bytes(static_cast<double>(host.available)) + " available (" +
                  host.source + "): ask for fewer new tokens");
}

}  // namespace neftune::run
