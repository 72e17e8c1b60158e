// The names the daemon gives jobs and sweeps: ids are generated ("000007-my-job"), and anything a
// user sends is sanitised to [A-Za-z0-9._-], so no name can point outside the spool.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace neftune::serve {

// [A-Za-z0-9._-] only, no leading '.' or '-', at most 48 characters; "job" when nothing is left.
std::string sanitize_name(const std::string& name);
// "000007-<name>": the sequence number first, so ids sort in submission order.
std::string job_id(int64_t seq, const std::string& name);
// "sweep-000007-<base>": numbered by the sequence number of the sweep's first job.
std::string sweep_id(int64_t first_seq, const std::string& base);
// A sweep job's name: the base and each override's last key part with its value
// ("lr" and {"neftune.alpha=5"} -> "lr-alpha5"), sanitised later with the id.
std::string combination_name(const std::string& base, const std::vector<std::string>& overrides);

}  // namespace neftune::serve
