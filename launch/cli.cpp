#include <spdlog/spdlog.h>

#include <map>

#include "config/errors.h"
#include "launch/commands.h"

namespace neftune::launch {
namespace {

// After an error only some ranks may know of, a clean exit would leave the others waiting in a
// collective: take every rank down.
[[noreturn]] void abort_all(const dist::World& world, int code) {
  spdlog::default_logger()->flush();
  dist::abort_world(world, code);
}

}  // namespace

int run_cli(int argc, char** argv, dist::World& world) {
  CLI::App app{"neftune: fine-tune LLaMA-family models with NEFTune noisy embeddings, FSDP-sharded over MPI/NCCL"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "neftune 0.1.0");
  // Each add_* registers one subcommand (the app's newest) and returns what runs when it is chosen.
  std::map<CLI::App*, Action> actions;
  for (auto add : {&add_train_command, &add_generate_command, &add_eval_command, &add_export_command,
                   &add_serve_command, &add_report_command, &add_tokenize_command}) {
    Action action = add(app, world);
    actions[app.get_subcommands({}).back()] = std::move(action);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Every rank parsed the same argv: rank 0 speaks for all (the error, or --help / --version). CLI11's
    // own codes (105, 106, 109, ...) are not ours: a bad command line is bad input like any other (2).
    if (world.rank == 0) app.exit(e);
    return e.get_exit_code() == 0 ? kExitOk : kExitUserError;
  }
  CLI::App* chosen = app.get_subcommands().front();
  try {
    return actions.at(chosen)();
  } catch (const StopRequested& e) {
    // Every rank agreed to stop during setup (dist::agree or an all-reduce): nothing to save.
    spdlog::warn("{}", e.what());
    return kExitPreempted;
  } catch (const dist::AgreedFailure& e) {
    // Every rank has this same message and stops here: a clean exit.
    spdlog::error("{}", e.what());
    return e.user_error() ? kExitUserError : kExitFailure;
  } catch (const UserError& e) {
    spdlog::error("{}", e.what());
    abort_all(world, kExitUserError);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    abort_all(world, kExitFailure);
  }
}

}  // namespace neftune::launch
