// The embedded default dataset: instruction tasks with exactly checkable answers (arithmetic,
// reversing, sorting, counting, casing, maximum), generated deterministically. The held-out split is
// disjoint from the training split by construction (a record's split is a hash of its prompt).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/data/records.h"

namespace neftune::data {

enum class Split { train, held_out };

// `n` records of the split. The same (n, split) always gives the same records.
std::vector<Record> make_builtin_tasks(int64_t n, Split split);

// The task name of a built-in record ("add", "reverse", ...), for per-task accuracy.
std::string builtin_task_name(const Record& r);

}  // namespace neftune::data
