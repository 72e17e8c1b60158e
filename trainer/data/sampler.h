// The data order: one global permutation per epoch, seeded by (seed, epoch), identical on every rank.
// Drawing past the end of an epoch starts the next epoch with a fresh permutation (epoch resampling),
// so a step that straddles an epoch boundary still gets its full batch.
#pragma once

#include <cstdint>
#include <vector>

#include "trainer/data/batch.h"

namespace neftune::data {

class EpochSampler {
 public:
  EpochSampler(int64_t dataset_size, uint64_t seed);

  // The next n picks of the global stream; n must not exceed the dataset size (std::invalid_argument).
  std::vector<SamplePick> next(int64_t n);

  int64_t epoch() const { return epoch_; }
  int64_t position() const { return position_; }  // picks consumed in the current epoch
  double epoch_progress() const { return epoch_ + static_cast<double>(position_) / static_cast<double>(size_); }
  // Restores a position (from a checkpoint).
  void seek(int64_t epoch, int64_t position);

  static std::vector<int64_t> permutation(int64_t n, uint64_t seed, int64_t epoch);

 private:
  int64_t size_;
  uint64_t seed_;
  int64_t epoch_ = 0;
  int64_t position_ = 0;
  std::vector<int64_t> order_;
};

}  // namespace neftune::data
