#include "trainer/tokenizer/added_tokens.h"

#include <algorithm>
#include <cstring>

#include "trainer/tokenizer/utf8.h"

namespace neftune::tok {
namespace {

// Unicode White_Space (what Rust's str::trim removes, as HF tokenizers' lstrip/rstrip use it).
bool is_white_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// The start of the whitespace that ends text[0, end).
size_t white_space_before(std::string_view text, size_t end) {
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    size_t i = start;
    if (!is_white_space(utf8::decode(text, i))) break;
    end = start;
  }
  return end;
}

// The end of the whitespace that starts at text[begin].
size_t white_space_after(std::string_view text, size_t begin) {
  while (begin < text.size()) {
    size_t i = begin;
    if (!is_white_space(utf8::decode(text, i))) break;
    begin = i;
  }
  return begin;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)) {
  tokens_.erase(std::remove_if(tokens_.begin(), tokens_.end(), [](const AddedToken& t) { return t.content.empty(); }),
                tokens_.end());
  for (uint32_t i = 0; i < tokens_.size(); ++i)
    by_first_byte_[static_cast<unsigned char>(tokens_[i].content[0])].push_back(i);
  for (auto& bucket : by_first_byte_) {
    std::stable_sort(bucket.begin(), bucket.end(),
                     [&](uint32_t a, uint32_t b) { return tokens_[a].content.size() > tokens_[b].content.size(); });
  }
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Segment>& out) const {
  size_t done = 0;  // text before this is in `out`
  size_t pos = 0;
  while (pos < text.size()) {
    const auto& bucket = by_first_byte_[static_cast<unsigned char>(text[pos])];
    const AddedToken* hit = nullptr;
    for (const uint32_t k : bucket) {
      const std::string& c = tokens_[k].content;
      if (c.size() <= text.size() - pos && std::memcmp(text.data() + pos, c.data(), c.size()) == 0) {
        hit = &tokens_[k];
        break;
      }
    }
    if (!hit) {
      ++pos;
      continue;
    }
    size_t begin = pos, end = pos + hit->content.size();
    if (hit->lstrip) begin = std::max(white_space_before(text, begin), done);
    if (hit->rstrip) end = white_space_after(text, end);
    if (begin > done) out.push_back(Segment{text.substr(done, begin - done), -1});
    out.push_back(Segment{text.substr(begin, end - begin), hit->id});
    done = pos = end;
  }
  if (done < text.size()) out.push_back(Segment{text.substr(done), -1});
}

}  // namespace neftune::tok
