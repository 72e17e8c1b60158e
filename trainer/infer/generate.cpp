#include "trainer/infer/generate.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "config/errors.h"
#include "trainer/run/memory_budget.h"

namespace neftune::run {
namespace {

void apply_repetition_penalty(at::Tensor& logits, const std::set<int32_t>& seen, double penalty) {
  if (penalty == 1.0) return;
  auto a = logits.accessor<float, 1>();
  for (const int32_t id : seen) {
    const float v = a[id];
    a[id] = v > 0 ? static_cast<float>(v / penalty) : static_cast<float>(v * penalty);
  }
}

int32_t pick(const at::Tensor& logits, const GenerateOptions& o, at::Generator& gen) {
  if (o.temperature <= 0) return static_cast<int32_t>(logits.argmax().item<int64_t>());
  // In double, from logits shifted to a maximum of 0: a temperature as small as 1e-300 gives -inf or 0,
  // never inf - inf (NaN).
  const at::Tensor shifted = logits.to(at::kDouble) - logits.max().to(at::kDouble);
  at::Tensor probs = at::softmax(shifted / o.temperature, -1);
  if (o.top_p < 1.0) {
    const auto [sorted, order] = probs.sort(-1, /*descending=*/true);
    const at::Tensor cum = sorted.cumsum(-1);
    // Keep the smallest prefix whose mass reaches top_p; the first token always stays (set explicitly: a
    // top_p below the smallest probability would otherwise drop every token).
    at::Tensor drop = (cum - sorted) >= o.top_p;
    drop.index_fill_(-1, at::zeros({1}, at::kLong), false);
    at::Tensor kept = sorted.masked_fill(drop, 0.0);
    probs = at::zeros_like(probs).scatter_(-1, order, kept);
  }
  return static_cast<int32_t>(at::multinomial(probs, 1, false, gen).item<int64_t>());
}

std::string text(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

}  // namespace

void check_generate_options(const GenerateOptions& o) {
  if (o.max_new_tokens < 1 || o.max_new_tokens > kMaxNewTokens) {
    throw UserError("--max-new-tokens: must be in [1, " + std::to_string(kMaxNewTokens) + "] (got " +
                    std::to_string(o.max_new_tokens) + ")");
  }
  if (!(std::isfinite(o.temperature) && o.temperature >= 0))
    throw UserError("--temperature: must be a finite number >= 0 (got " + text(o.temperature) + "); 0 = greedy");
  if (!(o.top_p > 0 && o.top_p <= 1))
    throw UserError("--top-p: must be in (0, 1] (got " + text(o.top_p) + "); 1 = no nucleus cut");
  if (!(std::isfinite(o.repetition_penalty) && o.repetition_penalty > 0)) {
    throw UserError("--repetition-penalty: must be a finite number > 0 (got " + text(o.repetition_penalty) +
                    "); 1 = off, the paper uses 1.2");
  }
}

std::vector<int32_t> generate(const model::LlamaModel& model, const std::vector<int32_t>& prompt,
                              const GenerateOptions& options, int32_t eos_id) {
  return generate(model, prompt, options, std::vector<int32_t>{eos_id});
}

std::vector<int32_t> generate(const model::LlamaModel& model, const std::vector<int32_t>& prompt,
                              const GenerateOptions& options, const std::vector<int32_t>& stop_ids) {
  check_generate_options(options);
  if (prompt.empty())
    throw UserError("generate: the prompt has no tokens (with --raw nothing is added to it: give some text)");
  const int64_t limit = model.config().max_position_embeddings;
  if (static_cast<int64_t>(prompt.size()) >= limit) {
    throw UserError("generate: the prompt is " + std::to_string(prompt.size()) +
                    " tokens, which leaves no room under the model's max_position_embeddings " + std::to_string(limit) +
                    ": shorten the prompt");
  }
  // Both terms are bounded (the prompt by memory, max_new_tokens by kMaxNewTokens): no overflow.
  const int64_t capacity = std::min<int64_t>(limit, static_cast<int64_t>(prompt.size()) + options.max_new_tokens);
  check_generation_memory(model.config(), capacity, model.dtype(), model.device(), "--max-new-tokens");
  model::KvCache cache = model.new_cache(1, capacity);
  at::Generator gen = at::detail::createCPUGenerator(options.seed);
  std::set<int32_t> seen(prompt.begin(), prompt.end());
  std::vector<int64_t> ids64(prompt.begin(), prompt.end());
  // Logits of the prompt's last position only: all of them would be L x V fp32 (0.5 GB per 1000
  // prompt tokens at Llama 3's 128256 words) for one row that is read.
  const at::Tensor prompt_h = model.hidden(at::tensor(ids64, at::kLong).view({1, -1}), &cache);  // (1, L, d)
  at::Tensor logits = model.logits(prompt_h.narrow(1, prompt_h.size(1) - 1, 1));                 // (1, 1, V)
  std::vector<int32_t> out;
  while (static_cast<int64_t>(out.size()) < options.max_new_tokens && cache.len < capacity) {
    at::Tensor last = logits[0][-1].to(at::kCPU).contiguous();
    apply_repetition_penalty(last, seen, options.repetition_penalty);
    const int32_t next = pick(last, options, gen);
    out.push_back(next);
    seen.insert(next);
    if (std::find(stop_ids.begin(), stop_ids.end(), next) != stop_ids.end() || cache.len >= capacity) break;
    logits = model.forward(at::full({1, 1}, next, at::kLong), &cache);
  }
  return out;
}

}  // namespace neftune::run
