#!/usr/bin/env python3
"""Before/after comparison of two Release builds (not a test).

Runs one C harness of each build in alternation (before, after, before, ...),
ROUNDS times each, and prints per figure the range over the rounds of each
build: the figure itself and its ratio to raw TCP in the same run (which
corrects for the machine's mood), and the change of the median ratio.

usage: benches/ab.py BUILD_BEFORE BUILD_AFTER ROUNDS HARNESS [ARGS...]
e.g.   MSRP_BENCH_RUNS=7 benches/ab.py /tmp/base/build-rel build-rel 6 \\
           msrp_bench_session 512 200000 3000
"""
import json
import os
import statistics
import subprocess
import sys

BEFORE, AFTER, ROUNDS, HARNESS = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ARGS = sys.argv[5:]


def run(build):
    out = subprocess.run([os.path.join(build, HARNESS), *ARGS], check=True,
                         stdout=subprocess.PIPE, text=True, timeout=1800).stdout
    figs = {}
    for line in out.splitlines():
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if not str(j.get("impl", "")).startswith("libmsrp"):
            continue
        numbers = [k for k in j if k not in ("bench", "impl", "bytes", "median_of", "count", "goal", "pairs")
                   and not k.startswith(("ratio", "single", "base", "raw"))
                   and isinstance(j[k], (int, float))]
        # Rates, times and memory before anything else a line carries.
        unit = next((k for k in numbers if k.endswith(("per_s", "us", "connection"))), None) or \
            next(iter(numbers), None)
        if unit:
            figs[j["bench"]] = (unit, j[unit], j.get("ratio_to_raw"))
    return figs


results = {BEFORE: [], AFTER: []}
for i in range(ROUNDS):
    for b in (BEFORE, AFTER):
        results[b].append(run(b))
        print(f"round {i + 1}/{ROUNDS} {b} done", file=sys.stderr)


def span(xs):
    return f"{min(xs):,.3g}–{max(xs):,.3g}" if xs else "-"


for bench in results[AFTER][0]:
    unit = results[AFTER][0][bench][0]
    row = {"bench": bench, "unit": unit}
    for name, b in (("before", BEFORE), ("after", AFTER)):
        vals = [r[bench][1] for r in results[b] if bench in r]
        ratios = [r[bench][2] for r in results[b] if bench in r and r[bench][2] is not None]
        row[name] = span(vals)
        row[name + "_ratio_to_raw"] = span(ratios)
        row[name + "_median"] = statistics.median(ratios) if ratios else statistics.median(vals)
    row["after_over_before"] = round(row["after_median"] / row["before_median"], 3)
    print(json.dumps(row))
