// Global-norm gradient clipping over sharded gradients: the norm is
// sqrt(all-reduce-sum over ranks of the squared norms of each rank's shards); padding holds zeros and
// adds nothing. Clipping is never per shard.
#pragma once

#include <vector>

#include "distributed/communicator.h"
#include "distributed/flat_unit.h"

namespace neftune::optim {

double global_grad_norm(const std::vector<dist::FlatUnit*>& units, dist::Communicator& comm);
// Scales every grad by max_norm / (norm + 1e-6) when norm > max_norm (torch's clip_grad_norm_).
// Returns the factor applied (1 when not clipped).
double clip_grads(const std::vector<dist::FlatUnit*>& units, double norm, double max_norm);

}  // namespace neftune::optim
