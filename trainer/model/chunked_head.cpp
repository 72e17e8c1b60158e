#include "trainer/model/chunked_head.h"

#include <torch/csrc/autograd/autograd.h>

#include <algorithm>

#include "trainer/model/llama.h"

namespace neftune::model {

at::Tensor chunked_head_loss(const LlamaConfig& config, const HeadWeights& weights, const at::Tensor& x,
                             const at::Tensor& rows, const at::Tensor& ids, int64_t chunk,
                             std::optional<double> backward_scale) {
  const int64_t n = rows.size(0);
  // One pass over all positions (also when there are none): exactly the unchunked computation.
  const int64_t step = chunk > 0 && chunk < n ? chunk : std::max<int64_t>(n, 1);
  at::Tensor total;
  for (int64_t begin = 0; begin < std::max<int64_t>(n, 1); begin += step) {
    const int64_t len = std::min(step, n - begin);
    const auto [norm_weight, head_weight] = weights();
    const at::Tensor h = x.index_select(0, rows.narrow(0, begin, len));                       // (len, d)
    const at::Tensor logits = lm_logits(config, norm_weight, head_weight, h).to(at::kFloat);  // (len, V)
    const at::Tensor loss = at::cross_entropy_loss(logits, ids.narrow(0, begin, len), {}, at::Reduction::Sum);
    // This chunk's graph, its logits and their gradient included, is freed here, before the next
    // chunk's logits exist.
    if (backward_scale) torch::autograd::backward({loss * *backward_scale});
    total = total.defined() ? total + loss.detach() : loss.detach();
  }
  return total;
}

}  // namespace neftune::model
