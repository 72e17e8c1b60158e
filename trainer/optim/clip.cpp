#include "trainer/optim/clip.h"

#include <cmath>

namespace neftune::optim {

double global_grad_norm(const std::vector<dist::FlatUnit*>& units, dist::Communicator& comm) {
  at::Tensor sq = at::zeros({1}, at::TensorOptions().dtype(at::kDouble).device(units.front()->grads().device()));
  bool replicated = true;
  for (dist::FlatUnit* u : units) {
    u->finish_reduce();
    sq += at::linalg_vector_norm(u->grads(), 2, c10::nullopt, false, at::kDouble).pow(2);
    replicated = replicated && u->replicated();
  }
  // Replicated units already hold the whole (all-reduced) gradient on every rank.
  if (!replicated && comm.size() > 1) comm.all_reduce(sq, dist::ReduceOp::sum)->wait();
  return std::sqrt(sq.item<double>());
}

double clip_grads(const std::vector<dist::FlatUnit*>& units, double norm, double max_norm) {
  if (max_norm <= 0 || !(norm > max_norm)) return 1.0;
  const double factor = max_norm / (norm + 1e-6);
  at::NoGradGuard no_grad;
  for (dist::FlatUnit* u : units) u->grads().mul_(factor);
  return factor;
}

}  // namespace neftune::optim
