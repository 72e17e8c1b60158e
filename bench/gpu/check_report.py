#!/usr/bin/env python3
"""Comparisons and the summary of bench/gpu/check.sh (Python standard library only).

  check_report.py parity REF_RUN DEV_RUN      loss and grad_norm per step of two runs, within tolerances
  check_report.py resume FULL_RUN SPLIT_RUN STOP_STEP
                                              losses per step and final weights, bit for bit
  check_report.py summary OUT_FILE MODE TOTAL_S STEP_JSON...
                                              one JSON line from the steps' results; exit 1 if one failed

A run is an output_dir: metrics.jsonl (one line per optimizer step) and final/model.safetensors.
Each command prints one JSON object; parity and resume exit 1 when the check fails.
"""
import filecmp
import json
import math
import os
import sys

# Parity of an fp32 run on the GPU (TF32 off) with the same run on the CPU. Both compute every
# operation in fp32 but in different orders (cuBLAS and SDPA tiles vs the CPU's blocked kernels), so
# results differ by rounding only. For scale: the same 30-step run on the CPU with 1 vs 2 threads
# (other summation orders) differs by at most 1.4e-7 in the loss and 3.1e-7 in grad_norm, relative.
#  - step 1 computes from identical weights, so it differs by one pass of fp32 rounding: 1e-5 leaves
#    two orders of magnitude for other kernels and still fails on TF32 (10-bit products: ~1e-4) or
#    bf16 compute (4.7e-4 measured);
#  - later steps follow weights that drift apart (AdamW divides by sqrt(v), so a rounding difference in
#    a near-zero gradient can flip a small update): 1e-4 for the loss, 1e-3 for grad_norm (a sum of
#    squares dominated by few coordinates). A real divergence (a wrong gradient, a lost micro-batch,
#    noise left on) is >= 1e-2.
PARITY_FIRST_LOSS_RTOL = 1e-5
PARITY_LOSS_RTOL = 1e-4
PARITY_GRAD_NORM_RTOL = 1e-3


def steps(run):
    """{step: metrics line} of a run's optimizer steps (eval lines skipped)."""
    out = {}
    with open(os.path.join(run, "metrics.jsonl")) as f:
        for line in f:
            line = line.strip()
            if line:
                m = json.loads(line)
                if "loss" in m:
                    out[m["step"]] = m
    return out


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-12)


def parity(ref_run, dev_run):
    ref, dev = steps(ref_run), steps(dev_run)
    common = sorted(set(ref) & set(dev))
    worst_loss = max(((rel(dev[s]["loss"], ref[s]["loss"]), s) for s in common), default=(math.inf, 0))
    worst_grad = max(((rel(dev[s]["grad_norm"], ref[s]["grad_norm"]), s) for s in common), default=(math.inf, 0))
    first = rel(dev[1]["loss"], ref[1]["loss"]) if 1 in common else math.inf
    ok = (len(common) == len(ref) == len(dev) and len(common) > 0 and first <= PARITY_FIRST_LOSS_RTOL
          and worst_loss[0] <= PARITY_LOSS_RTOL and worst_grad[0] <= PARITY_GRAD_NORM_RTOL)
    return ok, {
        "steps": len(common),
        "step1_loss_ref": ref.get(1, {}).get("loss"),
        "step1_loss_rel_diff": first,
        "max_loss_rel_diff": worst_loss[0], "max_loss_rel_diff_step": worst_loss[1],
        "max_grad_norm_rel_diff": worst_grad[0], "max_grad_norm_rel_diff_step": worst_grad[1],
        "final_loss_ref": ref[common[-1]]["loss"] if common else None,
        "final_loss_dev": dev[common[-1]]["loss"] if common else None,
        "tolerance": {"step1_loss_rtol": PARITY_FIRST_LOSS_RTOL, "loss_rtol": PARITY_LOSS_RTOL,
                      "grad_norm_rtol": PARITY_GRAD_NORM_RTOL},
    }


def resume(full_run, split_run, stop_step):
    full, split = steps(full_run), steps(split_run)
    stop = int(stop_step)
    same = lambda ss: all(s in split and full[s]["loss"] == split[s]["loss"]
                          and full[s]["grad_norm"] == split[s]["grad_norm"] for s in ss)
    before = [s for s in sorted(full) if s <= stop]
    after = [s for s in sorted(full) if s > stop]
    weights_a = os.path.join(full_run, "final", "model.safetensors")
    weights_b = os.path.join(split_run, "final", "model.safetensors")
    weights = os.path.isfile(weights_a) and os.path.isfile(weights_b) and filecmp.cmp(weights_a, weights_b, shallow=False)
    diff = max((abs(full[s]["loss"] - split[s]["loss"]) for s in full if s in split), default=math.inf)
    ok = sorted(full) == sorted(split) and len(after) > 0 and same(before) and same(after) and weights
    if ok:
        diagnosis = "bit-exact"
    elif not same(before):
        # Steps before the stop ran the same computation in both runs: a difference there is the GPU
        # kernels' own nondeterminism (atomics in a backward), not the checkpoint.
        diagnosis = "runs differ before the stop too: nondeterministic kernels, not resume"
    else:
        diagnosis = "identical until the stop, different after it: the resume loses or changes state"
    return ok, {"steps": len(full), "stop_step": stop, "losses_equal_before_stop": same(before),
                "losses_equal_after_stop": same(after), "final_weights_equal": weights,
                "max_loss_abs_diff": diff, "diagnosis": diagnosis}


def summary(out_file, mode, total_s, step_files):
    results, versions = {}, {}
    for path in step_files:
        with open(path) as f:
            r = json.load(f)
        versions.update(r.pop("versions", {}))
        results[r.pop("name")] = r
    ok = all(r.get("status") in ("pass", "skipped") for r in results.values())
    line = json.dumps({"check": "neftune-gpu", "mode": mode, "ok": ok, "total_s": int(total_s),
                       "failed": [n for n, r in results.items() if r.get("status") not in ("pass", "skipped")],
                       "steps": results, "versions": versions}, sort_keys=False)
    if out_file:
        os.makedirs(os.path.dirname(os.path.abspath(out_file)), exist_ok=True)
        with open(out_file, "w") as f:
            f.write(line + "\n")
    print(line)
    return ok


def main(argv):
    if len(argv) >= 3 and argv[0] == "parity":
        ok, r = parity(argv[1], argv[2])
    elif len(argv) >= 4 and argv[0] == "resume":
        ok, r = resume(argv[1], argv[2], argv[3])
    elif len(argv) >= 4 and argv[0] == "summary":
        return 0 if summary(argv[1], argv[2], argv[3], argv[4:]) else 1
    else:
        sys.stderr.write(__doc__)
        return 2
    print(json.dumps(r))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
