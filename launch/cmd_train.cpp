// neftune train CONFIG [--set key=value]... [--overwrite]
#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include <iostream>

#include "config/config.h"
#include "launch/commands.h"
#include "trainer/run/trainer.h"

namespace neftune::launch {

Action add_train_command(CLI::App& app, dist::World& world) {
  struct Opts {
    std::string config;
    std::vector<std::string> overrides;
    bool print_config = false;
    bool overwrite = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("train", "Fine-tune a model as the YAML config says");
  cmd->add_option("config", o->config, "YAML experiment config (keys below; every key has a default)")->required();
  cmd->add_option("--set", o->overrides, "override a config key: --set train.lr=1e-4 (repeatable)");
  cmd->add_flag("--print-config", o->print_config, "print the effective config (defaults filled in) and exit");
  cmd->add_flag("--overwrite", o->overwrite,
                "start a new run even where checkpoint.dir holds another run's checkpoints: they are moved aside "
                "into <checkpoint.dir>.replaced-<time> (without it such a run refuses to start)");
  cmd->footer("\nConfig keys (default, meaning):\n" + config::describe_keys());
  return [o, &world]() {
    config::TrainConfig cfg;
    dist::agree(*world.host, [&] { cfg = config::load_config(o->config, o->overrides); });
    if (o->print_config) {
      if (world.rank == 0) std::cout << config::dump_config(cfg);
      return kExitOk;
    }
    // Every rank must train the same thing: compare the effective config's hash with rank 0's.
    const std::string hash = std::to_string(config::config_hash(cfg));
    const std::string root_hash = world.host->broadcast_string(hash, 0);
    dist::agree(*world.host, [&] {
      if (hash != root_hash) {
        throw UserError("rank " + std::to_string(world.rank) + " loaded a different effective config than rank 0 (" +
                        o->config + " differs between nodes?)");
      }
    });
    const int threads = dist::intra_op_threads(world, static_cast<int>(cfg.train.threads));
    at::set_num_threads(threads);
    spdlog::info("[launch] {} rank(s), {} per node, {} intra-op thread(s) per rank", world.size, world.local_size,
                 threads);
    run::Trainer trainer(cfg, world, {o->overwrite});
    return trainer.train().preempted ? kExitPreempted : kExitOk;
  };
}

}  // namespace neftune::launch
