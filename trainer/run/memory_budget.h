// Whether a model fits the machine before anything is allocated for it: the host memory this process can
// still use (MemAvailable, or less under a cgroup limit), and the bytes training and generation need
// at least. A model that cannot fit is a UserError saying how much it needs and how much there is,
// instead of minutes of swapping or an allocator's backtrace.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <string>

#include "config/train_config.h"
#include "distributed/world.h"
#include "trainer/model/llama_config.h"

namespace neftune::run {

struct HostMemory {
  int64_t available = -1;  // bytes this process may still allocate; -1 = unknown
  int64_t total = -1;      // MemTotal, or the cgroup limit when smaller; -1 = unknown
  std::string source;      // what `available` was read from ("MemAvailable", "cgroup memory.max", ...)
};

// /proc/meminfo and the cgroup (v2 memory.max/memory.current, v1 memory.limit_in_bytes/usage_in_bytes)
// of this process: the smaller of what each allows.
HostMemory host_memory();

// "MemAvailable:  123456 kB" -> bytes; -1 when the field is absent. For tests.
int64_t meminfo_bytes(const std::string& meminfo_text, const std::string& field);
// The limit in a cgroup memory.max / memory.limit_in_bytes text: -1 for "max" (or a v1 "unlimited"
// value above 2^62), else bytes. For tests.
int64_t cgroup_limit_bytes(const std::string& text);

// "1.5 GB", "812 MB", "52.4 TB": decimal units, for messages.
std::string format_bytes(double bytes);

// The least one rank holds to train `c` on `world_size` ranks: its fp32 master weights, gradients and
// both AdamW moments (16 bytes a parameter) over its shard of every unit (each unit padded to a multiple
// of the world size, as FlatUnit shards it), or over every unit when `sharding` is none. Activations,
// gathered units and the data come on top. nullopt when it does not fit in 64 bits.
std::optional<int64_t> training_state_bytes(const model::LlamaConfig& c, int world_size, config::Sharding sharding);

// Throws UserError when the training state of the ranks on this node cannot fit the memory this node
// has available, naming the model (model.path or model.init), what it needs and what there is. CPU
// training only: on a GPU the state lives in the GPU's memory, which this does not read.
void check_training_memory(const model::LlamaConfig& c, const config::TrainConfig& cfg, const dist::World& world,
                           at::Device device);

// Throws UserError when a KV cache of `capacity` positions in `dtype` cannot fit the host memory that is
// available; `option` names what set the capacity (e.g. "--max-new-tokens"). CPU only.
void check_generation_memory(const model::LlamaConfig& c, int64_t capacity, at::ScalarType dtype, at::Device device,
                             const std::string& option);

}  // namespace neftune::run
