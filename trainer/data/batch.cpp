#include "trainer/data/batch.h"

#include <algorithm>

namespace neftune::data {

Batch collate(const std::vector<Example>& examples, const std::vector<SamplePick>& picks, int32_t pad_id) {
  Batch b;
  b.picks = picks;
  const int64_t B = static_cast<int64_t>(picks.size());
  int64_t L = 1;
  for (const auto& p : picks) L = std::max<int64_t>(L, static_cast<int64_t>(examples.at(p.index).ids.size()));
  for (int64_t i = 0; i < B; ++i)
    b.segments.push_back({i, 0, static_cast<int64_t>(examples.at(picks[i].index).ids.size())});
  b.input_ids = at::full({B, L}, pad_id, at::kLong);
  b.targets = at::full({B, L}, -100, at::kLong);
  fill_samples(b, examples);
  return b;
}

void fill_samples(Batch& b, const std::vector<Example>& examples) {
  const int64_t R = b.input_ids.size(0), P = b.input_ids.size(1);
  b.attention_mask = at::zeros({R, P}, at::kFloat);
  auto ids = b.input_ids.accessor<int64_t, 2>();
  auto tgt = b.targets.accessor<int64_t, 2>();
  auto mask = b.attention_mask.accessor<float, 2>();
  for (size_t i = 0; i < b.picks.size(); ++i) {
    const Example& e = examples.at(b.picks[i].index);
    const Segment& s = b.segments.at(i);
    const int64_t n = static_cast<int64_t>(e.ids.size());
    TORCH_CHECK(e.train.size() == e.ids.size(), "collate: example ", b.picks[i].index, " has ", e.ids.size(),
                " ids but ", e.train.size(), " target flags");
    TORCH_CHECK(s.length == n && s.row < R && s.start + n <= P, "collate: sample ", i, " does not fit its segment");
    for (int64_t t = 0; t < n; ++t) {
      ids[s.row][s.start + t] = e.ids[t];
      mask[s.row][s.start + t] = 1.0f;
      // Position t predicts ids[t + 1]; a sample's last token predicts nothing (the next one is
      // another sample's, or padding).
      if (t + 1 < n && e.train[t + 1]) tgt[s.row][s.start + t] = e.ids[t + 1];
    }
    b.lengths.push_back(n);
    b.n_tokens += n;
    b.n_targets += e.n_targets();
  }
  // Computed here from the host copy, so the LM head never asks the device which positions have a loss.
  std::vector<int64_t> rows, row_targets;
  rows.reserve(static_cast<size_t>(b.n_targets));
  row_targets.reserve(static_cast<size_t>(b.n_targets));
  const int64_t* flat = b.targets.data_ptr<int64_t>();
  for (int64_t r = 0; r < R * P; ++r) {
    if (flat[r] == -100) continue;
    rows.push_back(r);
    row_targets.push_back(flat[r]);
  }
  b.target_rows = at::tensor(rows, at::kLong);
  b.target_ids = at::tensor(row_targets, at::kLong);
}

at::Tensor to_device(const at::Tensor& host, const at::Device& device) {
  if (device.is_cpu()) return host;
  return host.pin_memory().to(device, /*non_blocking=*/true);
}

}  // namespace neftune::data
