#include "trainer/data/examples.h"

#include <algorithm>

#include "config/errors.h"
#include "trainer/data/prompt_template.h"

namespace neftune::data {

std::vector<int32_t> prompt_ids(const tok::Tokenizer& tok, const std::string& instruction, const std::string& input) {
  return tok.encode(format_prompt(instruction, input), /*add_bos=*/true);
}

std::vector<Example> make_examples(const std::vector<Record>& records, const tok::Tokenizer& tok, int64_t max_seq_len,
                                   config::TooLong too_long, const std::string& source, TokenizeStats* stats,
                                   const std::function<bool()>& stop) {
  TokenizeStats local;
  TokenizeStats& st = stats ? *stats : local;
  const int64_t tail = static_cast<int64_t>(tok.encode(kResponseTail, false).size());
  std::vector<Example> out;
  out.reserve(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    if (stop && i % 256 == 0 && stop())
      throw StopRequested(source + ": stop requested while tokenizing (record " + std::to_string(i) + " of " +
                          std::to_string(records.size()) + "): exiting before training, nothing to save");
    const Record& r = records[i];
    const std::string prompt = format_prompt(r.instruction, r.input);
    std::vector<int32_t> p = tok.encode(prompt, true);
    std::vector<int32_t> full = tok.encode(prompt + r.output, true);
    std::vector<int32_t> resp;
    if (full.size() >= p.size() && std::equal(p.begin(), p.end(), full.begin())) {
      resp.assign(full.begin() + static_cast<std::ptrdiff_t>(p.size()), full.end());
    } else {
      // The tokenizer merged across the prompt/response boundary: tokenize the response on its own.
      resp = tok.encode(r.output, false);
      ++st.boundary_retokenized;
    }
    resp.push_back(tok.eos_id());

    int64_t total = static_cast<int64_t>(p.size() + resp.size());
    if (total > max_seq_len) {
      if (too_long == config::TooLong::error)
        throw DataError(source + ": record " + std::to_string(i) + ": " + std::to_string(total) +
                        " tokens exceed data.max_seq_len " + std::to_string(max_seq_len) +
                        " (raise it, or set data.too_long: truncate | skip)");
      if (too_long == config::TooLong::skip) {
        ++st.skipped_too_long;
        continue;
      }
      // Cut the prompt from its start (after BOS), keeping at least the template tail.
      const int64_t keep_min = std::min<int64_t>(tail, static_cast<int64_t>(p.size()) - 1);
      const int64_t cuttable = static_cast<int64_t>(p.size()) - 1 - keep_min;
      const int64_t cut = std::min(cuttable, total - max_seq_len);
      p.erase(p.begin() + 1, p.begin() + 1 + cut);
      total -= cut;
      if (total > max_seq_len) {
        const int64_t room = max_seq_len - static_cast<int64_t>(p.size());
        if (room < 1) {
          ++st.skipped_too_long;
          continue;
        }
        resp.resize(static_cast<size_t>(room));
        ++st.truncated_response;
      } else {
        ++st.truncated_prompt;
      }
    }
    Example e;
    e.n_prompt = static_cast<int32_t>(p.size());
    e.ids = std::move(p);
    e.ids.insert(e.ids.end(), resp.begin(), resp.end());
    out.push_back(std::move(e));
  }
  if (out.empty())
    throw DataError(source + ": no examples left after tokenization (" + std::to_string(st.skipped_too_long) +
                    " skipped as longer than data.max_seq_len " + std::to_string(max_seq_len) + ")");
  return out;
}

}  // namespace neftune::data
