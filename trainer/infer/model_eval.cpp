#include "trainer/infer/model_eval.h"

#include <ATen/core/grad_mode.h>

#include "trainer/data/batch.h"
#include "trainer/data/builtin_tasks.h"
#include "trainer/data/packing.h"
#include "trainer/model/chunked_head.h"

namespace neftune::run {
namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

}  // namespace

void eval_loss(const model::LlamaModel& model, const std::vector<data::Example>& examples, int32_t pad_id,
               const EvalLossOptions& options, EvalReport& report) {
  TORCH_CHECK(options.batch_size >= 1 && options.loss_chunk_tokens >= 0, "eval_loss: batch_size >= 1 and ",
              "loss_chunk_tokens >= 0 are required");
  const model::HeadWeights weights = [&model] { return model.head_weights(); };
  at::Tensor loss = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(model.device()));
  int64_t count = 0;
  const auto batch = static_cast<size_t>(options.batch_size);
  for (size_t lo = 0; lo < examples.size(); lo += batch) {
    std::vector<data::SamplePick> picks;
    int64_t tokens = 0;
    for (size_t i = lo; i < std::min(examples.size(), lo + batch); ++i) {
      picks.push_back({static_cast<int64_t>(i), 0});
      tokens += static_cast<int64_t>(examples[i].ids.size());
    }
    // Packed: the whole batch in one row (the trainer's default pack_length).
    const data::Batch b = data::make_batch(examples, picks, pad_id, options.packing ? tokens : 0);
    const at::Tensor h =
        b.packed() ? model.hidden(b.input_ids, model::PackedRows{b.positions, &b.segments}) : model.hidden(b.input_ids);
    at::NoGradGuard no_grad;
    const at::Tensor sum = model::chunked_head_loss(
        model.config(), weights, h.reshape({-1, h.size(-1)}), data::to_device(b.target_rows, model.device()),
        data::to_device(b.target_ids, model.device()), options.loss_chunk_tokens, std::nullopt);
    loss.add_(sum.to(at::kDouble));
    count += b.n_targets;
  }
  report.examples = static_cast<int64_t>(examples.size());
  report.target_tokens = count;
  report.loss = count > 0 ? loss.item<double>() / static_cast<double>(count) : 0.0;
}

void eval_generation(const model::LlamaModel& model, const tok::Tokenizer& tok,
                     const std::vector<data::Record>& records, const GenerateOptions& options, bool with_exact_match,
                     bool builtin_tasks, EvalReport& report) {
  int64_t correct = 0, tokens = 0, chars = 0;
  for (const auto& r : records) {
    std::vector<int32_t> out = generate(model, data::prompt_ids(tok, r.instruction, r.input), options, tok.eos_id());
    if (!out.empty() && out.back() == tok.eos_id()) out.pop_back();
    const std::string text = tok.decode(out);
    tokens += static_cast<int64_t>(out.size());
    chars += static_cast<int64_t>(text.size());
    const bool ok = trim(text) == trim(r.output);
    correct += ok ? 1 : 0;
    if (builtin_tasks) {
      auto& t = report.per_task[data::builtin_task_name(r)];
      t.first += ok ? 1 : 0;
      t.second += 1;
    }
  }
  const double n = static_cast<double>(std::max<size_t>(1, records.size()));
  report.generated = static_cast<int64_t>(records.size());
  report.mean_response_tokens = static_cast<double>(tokens) / n;
  report.mean_response_chars = static_cast<double>(chars) / n;
  if (with_exact_match) report.exact_match = static_cast<double>(correct) / n;
}

}  // namespace neftune::run
