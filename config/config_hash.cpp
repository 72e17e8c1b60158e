// The config hash ranks compare before training: FNV-1a 64 over the dumped YAML.
#include "config/config.h"

namespace neftune::config {

uint64_t config_hash(const TrainConfig& cfg) {
  uint64_t h = 1469598103934665603ull;
  for (const unsigned char c : dump_config(cfg)) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace neftune::config
