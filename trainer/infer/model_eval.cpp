#include "trainer/infer/model_eval.h"

#include "trainer/data/batch.h"
#include "trainer/data/builtin_tasks.h"

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
               int64_t batch_size, EvalReport& report) {
  at::Tensor loss = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(model.device()));
  int64_t count = 0;
  for (size_t lo = 0; lo < examples.size(); lo += static_cast<size_t>(batch_size)) {
    std::vector<data::SamplePick> picks;
    for (size_t i = lo; i < std::min(examples.size(), lo + static_cast<size_t>(batch_size)); ++i)
      picks.push_back({static_cast<int64_t>(i), 0});
    const data::Batch b = data::collate(examples, picks, pad_id);
    const at::Tensor logits = model.forward(b.input_ids);  // (B, L, V) fp32
    const at::Tensor targets = data::to_device(b.targets, logits.device());
    loss.add_(at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}), {},
                                     at::Reduction::Sum, -100)
                  .to(at::kDouble));
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
