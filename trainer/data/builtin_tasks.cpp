#include "trainer/data/builtin_tasks.h"

#include <algorithm>
#include <cctype>
#include <functional>

#include "trainer/data/rng.h"

namespace neftune::data {
namespace {

constexpr uint64_t kDataSeed = 20231005;  // fixed: every run sees the same data and held-out split
constexpr uint64_t kHeldOutOneIn = 16;

std::string word(Rng& rng) {
  static const char* letters = "abcdefghijklmnopqrstuvwxyz";
  const int64_t n = rng.range(3, 7);
  std::string w;
  for (int64_t i = 0; i < n; ++i) w.push_back(letters[rng.below(26)]);
  return w;
}

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + std::to_string(v[i]);
  return s;
}

struct Task {
  const char* name;
  std::function<Record(Rng&)> make;
};

const std::vector<Task>& tasks() {
  static const std::vector<Task> kAll = {
      {"add",
       [](Rng& r) {
         const int64_t a = r.range(0, 99), b = r.range(0, 99);
         return Record{"What is " + std::to_string(a) + " + " + std::to_string(b) + "?", "", std::to_string(a + b)};
       }},
      {"subtract",
       [](Rng& r) {
         int64_t a = r.range(0, 99), b = r.range(0, 99);
         if (a < b) std::swap(a, b);
         return Record{"What is " + std::to_string(a) + " - " + std::to_string(b) + "?", "", std::to_string(a - b)};
       }},
      {"multiply",
       [](Rng& r) {
         const int64_t a = r.range(2, 9), b = r.range(2, 9);
         return Record{"What is " + std::to_string(a) + " * " + std::to_string(b) + "?", "", std::to_string(a * b)};
       }},
      {"reverse",
       [](Rng& r) {
         const std::string w = word(r);
         return Record{"Reverse the following word.", w, std::string(w.rbegin(), w.rend())};
       }},
      {"sort",
       [](Rng& r) {
         std::vector<int64_t> v(static_cast<size_t>(r.range(3, 6)));
         for (auto& x : v) x = r.range(0, 9);
         std::vector<int64_t> s = v;
         std::sort(s.begin(), s.end());
         return Record{"Sort these digits in ascending order.", join(v), join(s)};
       }},
      {"count",
       [](Rng& r) {
         const std::string w = word(r);
         return Record{"How many letters are in the following word?", w, std::to_string(w.size())};
       }},
      {"uppercase",
       [](Rng& r) {
         const std::string w = word(r);
         std::string u = w;
         for (auto& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
         return Record{"Write the following word in uppercase.", w, u};
       }},
      {"maximum",
       [](Rng& r) {
         std::vector<int64_t> v(static_cast<size_t>(r.range(3, 5)));
         for (auto& x : v) x = r.range(0, 99);
         return Record{"Which number is the largest?", join(v), std::to_string(*std::max_element(v.begin(), v.end()))};
       }},
  };
  return kAll;
}

uint64_t text_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (const unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return splitmix64(h);
}

}  // namespace

std::vector<Record> make_builtin_tasks(int64_t n, Split split) {
  Rng rng(mix_key({kDataSeed, split == Split::train ? 1u : 2u}));
  std::vector<Record> out;
  out.reserve(static_cast<size_t>(n));
  const auto& all = tasks();
  while (static_cast<int64_t>(out.size()) < n) {
    Record r = all[rng.below(all.size())].make(rng);
    const bool held_out = text_hash(r.instruction + "\n" + r.input) % kHeldOutOneIn == 0;
    if (held_out == (split == Split::held_out)) out.push_back(std::move(r));
  }
  return out;
}

std::string builtin_task_name(const Record& r) {
  const std::string& i = r.instruction;
  if (i.rfind("What is", 0) == 0) {
    if (i.find(" + ") != std::string::npos) return "add";
    if (i.find(" - ") != std::string::npos) return "subtract";
    return "multiply";
  }
  if (i.rfind("Reverse", 0) == 0) return "reverse";
  if (i.rfind("Sort", 0) == 0) return "sort";
  if (i.rfind("How many", 0) == 0) return "count";
  if (i.rfind("Write", 0) == 0) return "uppercase";
  if (i.rfind("Which", 0) == 0) return "maximum";
  return "other";
}

}  // namespace neftune::data
