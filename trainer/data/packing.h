// Packed micro-batches: the samples of a micro-batch laid end to end in rows of at most `pack_length`
// tokens, so that no padding remains but each row's tail. A sample is never split across rows, its
// positions restart at 0 (Batch::positions) and the model's attention stays within it (Batch::segments),
// so a packed batch gives each sample the same loss, gradients and NEFTune noise as a padded one.
#pragma once

#include <cstdint>
#include <vector>

#include "trainer/data/batch.h"

namespace neftune::data {

// Rows are filled first-fit in order of decreasing length (ties in pick order); the row length P is
// the fullest row's. Batch::segments, lengths and picks stay in pick order. pack_length must be at
// least the longest sample.
Batch pack(const std::vector<Example>& examples, const std::vector<SamplePick>& picks, int32_t pad_id,
           int64_t pack_length);

// The batch a run trains or evaluates on: packed when pack_length > 0, padded otherwise.
Batch make_batch(const std::vector<Example>& examples, const std::vector<SamplePick>& picks, int32_t pad_id,
                 int64_t pack_length);

}  // namespace neftune::data
