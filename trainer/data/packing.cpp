#include "trainer/data/packing.h"

#include <algorithm>
#include <numeric>

namespace neftune::data {

Batch pack(const std::vector<Example>& examples, const std::vector<SamplePick>& picks, int32_t pad_id,
           int64_t pack_length) {
  const size_t n = picks.size();
  std::vector<int64_t> length(n);
  for (size_t i = 0; i < n; ++i) {
    length[i] = static_cast<int64_t>(examples.at(picks[i].index).ids.size());
    TORCH_CHECK(length[i] <= pack_length, "pack: a sample of ", length[i], " tokens does not fit data.pack_length ",
                pack_length);
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return length[a] > length[b]; });

  Batch b;
  b.picks = picks;
  b.segments.resize(n);
  std::vector<int64_t> fill;  // tokens used per row
  for (size_t i : order) {
    size_t r = 0;
    while (r < fill.size() && fill[r] + length[i] > pack_length) ++r;
    if (r == fill.size()) fill.push_back(0);
    b.segments[i] = {static_cast<int64_t>(r), fill[r], length[i]};
    fill[r] += length[i];
  }
  const int64_t R = std::max<int64_t>(1, static_cast<int64_t>(fill.size()));
  const int64_t P = std::max<int64_t>(1, fill.empty() ? 1 : *std::max_element(fill.begin(), fill.end()));
  b.input_ids = at::full({R, P}, pad_id, at::kLong);
  b.targets = at::full({R, P}, -100, at::kLong);
  b.positions = at::zeros({R, P}, at::kLong);
  auto pos = b.positions.accessor<int64_t, 2>();
  for (const Segment& s : b.segments)
    for (int64_t t = 0; t < s.length; ++t) pos[s.row][s.start + t] = t;
  fill_samples(b, examples);
  return b;
}

Batch make_batch(const std::vector<Example>& examples, const std::vector<SamplePick>& picks, int32_t pad_id,
                 int64_t pack_length) {
  return pack_length > 0 ? pack(examples, picks, pad_id, pack_length) : collate(examples, picks, pad_id);
}

}  // namespace neftune::data
