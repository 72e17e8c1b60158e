#include "trainer/data/sampler.h"

#include <stdexcept>
#include <string>

#include "trainer/data/rng.h"

namespace neftune::data {

EpochSampler::EpochSampler(int64_t dataset_size, uint64_t seed) : size_(dataset_size), seed_(seed) {
  if (size_ <= 0) throw std::invalid_argument("EpochSampler: empty dataset");
  order_ = permutation(size_, seed_, 0);
}

std::vector<int64_t> EpochSampler::permutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  Rng rng(mix_key({seed, static_cast<uint64_t>(epoch), 0x5A3D1E}));
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[rng.below(static_cast<uint64_t>(i + 1))]);  // Fisher-Yates
  return p;
}

std::vector<SamplePick> EpochSampler::next(int64_t n) {
  // The trainer refuses a global batch over the dataset (run::check_global_batch); a bigger draw would
  // repeat samples within a step, and a huge one would only fill memory.
  if (n < 0 || n > size_) {
    throw std::invalid_argument("EpochSampler: a draw of " + std::to_string(n) + " exceeds the " +
                                std::to_string(size_) + " samples of the dataset");
  }
  std::vector<SamplePick> out;
  out.reserve(static_cast<size_t>(n));
  while (static_cast<int64_t>(out.size()) < n) {
    if (position_ == size_) {
      ++epoch_;
      position_ = 0;
      order_ = permutation(size_, seed_, epoch_);
    }
    out.push_back({order_[position_++], epoch_});
  }
  return out;
}

void EpochSampler::seek(int64_t epoch, int64_t position) {
  if (epoch < 0 || position < 0 || position > size_) throw std::invalid_argument("EpochSampler::seek out of range");
  epoch_ = epoch;
  position_ = position;
  order_ = permutation(size_, seed_, epoch_);
}

}  // namespace neftune::data
