#!/usr/bin/env python3
"""Where a .ci/run went: its steps, each ctest test, the container tests' phases, the total.

usage: split.py TIMES_FILE CTEST_JUNIT START_EPOCH EXIT_CODE

TIMES_FILE holds "WHO<tab>WHAT<tab>SECONDS" lines (launch/step_times.sh, tests/docker/common.sh);
CTEST_JUNIT is ctest's --output-junit file (may be missing when CI stopped before the tests). Prints the
split and, once the total passes WARN_MINUTES, a warning: the limit a landing must fit is 90 minutes.
"""
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

WARN_MINUTES = 60


def fmt(seconds):
    return f"{seconds:7.0f} s"


def serial_tests(build_dir):
    """The names of the tests ctest runs alone (RUN_SERIAL), read from ctest itself."""
    try:
        out = subprocess.run(["ctest", "--test-dir", build_dir, "--show-only=json-v1"], capture_output=True,
                             text=True, timeout=60).stdout
        tests = json.loads(out)["tests"]
    except (OSError, ValueError, KeyError, subprocess.SubprocessError):
        return set()
    return {t["name"] for t in tests
            if any(p["name"] == "RUN_SERIAL" and p["value"] for p in t.get("properties", []))}


def main():
    times_file, junit, start, code = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    total = time.time() - start
    steps, phases = [], {}
    if os.path.exists(times_file):
        for line in open(times_file):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                continue
            who, what, secs = parts[0], parts[1], float(parts[2])
            if who in ("run", "test.sh"):
                steps.append((what + (" (launch/test.sh: a check)" if who == "test.sh" and what.startswith("setup")
                                      else ""), secs))
            else:
                phases.setdefault(who, []).append((what, secs))
    tests = []
    if os.path.exists(junit):
        for case in ET.parse(junit).getroot().iter("testcase"):
            tests.append((case.get("name"), float(case.get("time") or 0), case.get("status") or ""))

    print()
    print("== .ci/run: where the time went (wall clock) ==")
    for what, secs in steps:
        note = "  (beside lint and the build)" if what.startswith("images") else ""
        print(f"  {what:<44}{fmt(secs)}{note}")
        if what == "ctest" and tests:
            alone = serial_tests(os.path.dirname(junit))
            together = [t for t in tests if t[0] not in alone]
            wall = max(0.0, secs - sum(t for n, t, _ in tests if n in alone))
            print(f"    {len(together)} tests two at a time: {wall:.0f} s wall (their own times add up to "
                  f"{sum(t for _, t, _ in together):.0f} s); then {len(tests) - len(together)} alone, one after another")
            print("    each test, longest first:")
            for name, secs2, status in sorted(tests, key=lambda t: -t[1]):
                mark = "" if status in ("run", "") else f"  [{status}]"
                mark += "  (alone)" if name in alone else ""
                print(f"      {name:<42}{fmt(secs2)}{mark}")
    for who, items in phases.items():
        print(f"  phases of {who}:")
        for what, secs in items:
            print(f"      {what:<42}{fmt(secs)}")
    print(f"  {'total' + (' (failed, exit ' + str(code) + ')' if code else ''):<44}{fmt(total)}"
          f"  ({total / 60:.1f} min)")
    if total > WARN_MINUTES * 60:
        print(f"WARNING: .ci/run took {total / 60:.1f} minutes, more than {WARN_MINUTES}: a landing must fit in 90 "
              "on a fresh 2-core machine. Cut the slowest entries above before adding more.")


if __name__ == "__main__":
    main()
