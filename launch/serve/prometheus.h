// The daemon's GET /metrics page: job counts by state and the running job's progress, in the
// Prometheus text exposition format (version 0.0.4).
#pragma once

#include <string>
#include <vector>

#include "launch/serve/job_status.h"

namespace neftune::serve {

std::string prometheus_text(const std::vector<JobStatus>& jobs);

}  // namespace neftune::serve
