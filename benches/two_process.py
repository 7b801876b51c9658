#!/usr/bin/env python3
"""Two-process benchmark (not a test): msrpcat -> msrpcat against raw TCP
between two processes, alternating, in the same run.

  1 GB file:   msrpcat connect --send-file F  ->  msrpcat listen --recv-dir D
               raw_tcp send PORT F            ->  raw_tcp listen D/F
  20 x 50 MB:  msrpcat connect --count 20 --size 50000000 -> msrpcat listen --expect 20
               raw_tcp send PORT =1000000000  ->  raw_tcp listen -
  small:       msrpcat connect --count 500000 --size 100 -> msrpcat listen --expect 500000
               (messages a second; no raw TCP counterpart, the goal is >= 300,000)

Each figure is the wall time from starting the sender until both processes
exited (the listener is started first and is waiting). Prints one JSON line
per case with the medians and the ratio raw/msrpcat time (>= 0.9 is the goal).
The file and messages cases also time raw TCP with the end-line search MSRP
requires of every body byte on both sides (`raw_tcp ... scan`), and with
that search and a response to every 128 KiB chunk (`scan+respond`), all
alternating: "floor_ratio" is raw/floor, what an implementation that did
nothing else of MSRP would reach, "ratio_to_floor" floor/msrpcat, and the
"respond_" figures the same for the second floor.

usage: benches/two_process.py BUILD_DIR [runs [file,messages,messages-memory,small]]   (a Release build:
see docs/performance.md; MSRP_BENCH_DIR picks where the files go, e.g. /dev/shm)"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = sys.argv[1]
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 7
CASES = sys.argv[3].split(",") if len(sys.argv) > 3 else ["file", "messages", "messages-memory"]
MSRPCAT = os.path.join(BUILD, "msrpcat")
RAW = os.path.join(BUILD, "msrp_bench_raw_tcp")
PEER = "msrp://127.0.0.1:9/benchpeer;tcp"


def timed(listen_cmd, send_cmd_of):
    # The listener's stderr goes to a file: it may write a line per message
    # (msrpcat without --recv-dir), which would fill a pipe nobody reads
    # until the end and stop it.
    with tempfile.TemporaryFile(mode="w+") as lerr:
        lst = subprocess.Popen(listen_cmd, stdout=subprocess.PIPE, stderr=lerr, text=True)
        first = lst.stdout.readline().strip()
        t0 = time.perf_counter()
        snd = subprocess.run(send_cmd_of(first), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        lst.communicate(timeout=600)
        dt = time.perf_counter() - t0
        if snd.returncode != 0 or lst.returncode != 0:
            lerr.seek(0)
            raise RuntimeError(f"failed: {snd.stderr} {lerr.read()[-2000:]}")
    return dt


# MSRP_BENCH_ARGS: extra arguments for the sending msrpcat (e.g. "--chunk-size 65536").
EXTRA = os.environ.get("MSRP_BENCH_ARGS", "").split()


def msrpcat_file(src, d):
    return timed([MSRPCAT, "listen", "--remote", PEER, "--expect", "1", "--recv-dir", d],
                 lambda path: [MSRPCAT, "connect", "--local", PEER, "--remote", path, "--send-file", src] + EXTRA)


def raw_file(src, d, scan=()):
    return timed([RAW, "listen", os.path.join(d, "raw.bin"), *scan], lambda port: [RAW, "send", port, src, *scan])


def msrpcat_messages():
    return timed([MSRPCAT, "listen", "--remote", PEER, "--expect", "20"],
                 lambda path: [MSRPCAT, "connect", "--local", PEER, "--remote", path,
                               "--count", "20", "--size", "50000000"] + EXTRA)


def raw_messages(scan=()):
    return timed([RAW, "listen", "-", *scan], lambda port: [RAW, "send", port, "=1000000000", *scan])


def floor_messages():
    return raw_messages(["scan"])


def respond_floor_messages():
    return raw_messages(["scan+respond"])


def raw_messages_in_memory():
    return timed([RAW, "listen-msgs", "20", "50000000"], lambda port: [RAW, "send-msgs", port, "20", "50000000"])


SMALL = 500000


def msrpcat_small():
    return timed([MSRPCAT, "listen", "--remote", PEER, "--expect", str(SMALL)],
                 lambda path: [MSRPCAT, "connect", "--local", PEER, "--remote", path,
                               "--count", str(SMALL), "--size", "100"] + EXTRA)


def small_series():
    rates = sorted(SMALL / msrpcat_small() for _ in range(RUNS))
    print(json.dumps({
        "case": f"{SMALL} x 100-byte messages at once", "runs": RUNS, "args": EXTRA,
        "messages_per_s": round(statistics.median(rates)),
        "range": [round(rates[0]), round(rates[-1])], "goal": ">=300000",
    }), flush=True)


def series(name, ours, raw, size, floors=()):
    """floors: (key, timer) pairs of further baselines, timed in the same alternation."""
    a, b, c = [], [], {k: [] for k, _ in floors}
    for _ in range(RUNS):  # alternating
        a.append(ours())
        b.append(raw())
        for k, f in floors:
            c[k].append(f())
    ma, mb = statistics.median(a), statistics.median(b)
    out = {
        "case": name, "runs": RUNS, "bytes": size,
        "msrpcat_s": round(ma, 3), "raw_tcp_s": round(mb, 3),
        "msrpcat_MBps": round(size / ma / 1e6, 1), "raw_tcp_MBps": round(size / mb / 1e6, 1),
        "ratio": round(mb / ma, 3),
        "ratio_range": [round(min(y / x for x, y in zip(a, b)), 3), round(max(y / x for x, y in zip(a, b)), 3)],
    }
    for k, _ in floors:
        mc = statistics.median(c[k])
        out.update({f"{k}_s": round(mc, 3), f"{k}_ratio": round(mb / mc, 3), f"ratio_to_{k}": round(mc / ma, 3)})
    out.update({"msrpcat_all_s": [round(x, 3) for x in a], "raw_tcp_all_s": [round(y, 3) for y in b]})
    for k, _ in floors:
        out[f"{k}_all_s"] = [round(z, 3) for z in c[k]]
    print(json.dumps(out), flush=True)


def main():
    d = tempfile.mkdtemp(dir=os.environ.get("MSRP_BENCH_DIR"))
    try:
        src = os.path.join(d, "big.bin")
        if "file" in CASES:
            block = os.urandom(1 << 20)
            with open(src, "wb") as f:
                for i in range(1000):
                    f.write(block[:-8] + i.to_bytes(8, "little"))
        rx = os.path.join(d, "rx")
        os.mkdir(rx)

        def ours_file():
            r = msrpcat_file(src, rx)
            os.remove(os.path.join(rx, "big.bin"))
            return r

        def raw_f(scan=()):
            r = raw_file(src, rx, scan)
            os.remove(os.path.join(rx, "raw.bin"))
            return r

        if "file" in CASES:
            series("1 GB file, --send-file to --recv-dir", ours_file, raw_f, 1048576000,
                   [("floor", lambda: raw_f(["scan"])), ("respond_floor", lambda: raw_f(["scan+respond"]))])
        if "messages" in CASES:
            series("20 x 50 MB messages at once, in memory", msrpcat_messages, raw_messages, 1000000000,
                   [("floor", floor_messages), ("respond_floor", respond_floor_messages)])
        if "messages-memory" in CASES:
            # The same 20 messages over raw TCP with the memory work an
            # application does for them: a copy of each to send (as the C
            # API takes), a buffer of its own for each received.
            series("20 x 50 MB messages, raw TCP with the same buffers", msrpcat_messages,
                   raw_messages_in_memory, 1000000000)
        if "small" in CASES:
            small_series()
    finally:
        shutil.rmtree(d)


main()
