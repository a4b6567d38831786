#!/usr/bin/env python3
"""The library on its CPU backend next to PyTorch, interleaved, several rounds: `bertqa bench` (training steps, or
--inference forward passes) and test/bench/torch_bench.py at the same shapes, PyTorch at each of its thread counts
(torch.set_num_threads 1 and 2 by default; the faster of them in each round is "PyTorch's best"). Each round runs
every side of a case once, the sides' order alternating between rounds, so a change in the machine's load falls on
both. Prints one JSON line per run and per case, then a table. One command, from the repository root:
  /usr/bin/python3 test/bench/side_by_side.py                       # all cases, 5 rounds (~20 min on 2 quiet cores)
  /usr/bin/python3 test/bench/side_by_side.py --rounds 3 --cases train:mini:16x128,infer:mini:16x128
Case = mode:config:BATCHxLEN, mode train or infer. A side that refuses a case (the wasm heap cannot train `base`)
is one line with its reason, tried in the first round only. The ratio is ours / PyTorch's best in the same round
(examples per second; > 1: we are faster); the summary gives its median and range over the rounds, and the load
average around each run says how busy the machine was.
"""
import argparse, json, os, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASES = ["train:mini:16x128", "train:mini:4x384", "infer:mini:16x128", "infer:base:4x384", "train:base:4x384"]


def parse_case(c):
    mode, config, shape = c.split(":")
    if mode not in ("train", "infer"):
        sys.exit(f"side_by_side: case '{c}': mode must be train or infer")
    b, t = shape.split("x")
    return {"name": c, "mode": mode, "config": config, "batch": int(b), "len": int(t)}


def steps_for(case):
    """(timed steps, warm-up steps): fewer for base, whose steps take seconds."""
    big = case["config"] in ("base", "large")
    if case["mode"] == "infer":
        return (3, 1) if big else (10, 2)
    return (2, 1) if big else (5, 2)


def command(side, case, a):
    steps, warmup = steps_for(case)
    shape = ["--config", case["config"], "--batch-size", str(case["batch"]), "--seq-len", str(case["len"]), "--steps", str(steps), "--warmup", str(warmup)]
    infer = ["--inference"] if case["mode"] == "infer" else []
    if side == "ours":
        return [a.node, os.path.join(ROOT, "lib/cli/bertqa.js"), "bench", *shape, *infer]
    threads = side.split("-")[1]
    return [a.python, os.path.join(ROOT, "test/bench/torch_bench.py"), *shape, *infer, "--threads", threads]


def run(side, case, a):
    cmd = command(side, case, a)
    load0 = os.getloadavg()[0]
    t0 = time.time()
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=a.timeout)
        out, err, rc = p.stdout, p.stderr, p.returncode
    except subprocess.TimeoutExpired:
        out, err, rc = "", f"timed out after {a.timeout} s", -1
    rec = {"case": case["name"], "side": side, "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2), "wall_s": round(time.time() - t0, 1)}
    lines = [l for l in out.splitlines() if l.startswith("{")]
    if rc != 0 or not lines:
        rec["error"] = (err.strip().splitlines() or ["exit code %d" % rc])[-1]
        return rec
    r = json.loads(lines[-1])
    for k in ("threads", "examples_per_s", "step_ms", "step_ms_min", "cpu_ms_per_step", "peak_rss_mb"):
        rec[k] = r.get(k)
    return rec


def spread(xs):
    return {"median": round(statistics.median(xs), 3), "min": round(min(xs), 3), "max": round(max(xs), 3)} if xs else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated mode:config:BATCHxLEN")
    ap.add_argument("--torch-threads", default="1,2", help="PyTorch thread counts to try each round (the best counts)")
    ap.add_argument("--python", default="/usr/bin/python3", help="a python with torch")
    ap.add_argument("--node", default="node")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per run")
    a = ap.parse_args()
    cases = [parse_case(c) for c in a.cases.split(",") if c]
    sides = ["ours"] + [f"torch-{t}" for t in a.torch_threads.split(",")]
    runs = {c["name"]: [] for c in cases}
    refused = {}  # (case, side) -> error: not retried
    print(json.dumps({"bench": "side_by_side", "rounds": a.rounds, "cases": [c["name"] for c in cases], "sides": sides, "cpus": os.cpu_count()}), flush=True)
    for rnd in range(1, a.rounds + 1):
        for case in cases:
            order = sides if rnd % 2 == 1 else sides[::-1]  # alternate who goes first
            for side in order:
                if (case["name"], side) in refused:
                    continue
                rec = run(side, case, a)
                rec["round"] = rnd
                print(json.dumps(rec), flush=True)
                if "error" in rec:
                    refused[(case["name"], side)] = rec["error"]
                else:
                    runs[case["name"]].append(rec)
    summaries = []
    for case in cases:
        recs = runs[case["name"]]
        by_round = {}
        for r in recs:
            by_round.setdefault(r["round"], {})[r["side"]] = r
        ours = [r["ours"]["examples_per_s"] for r in by_round.values() if "ours" in r]
        best, ratios, best_threads = [], [], []
        for r in by_round.values():
            torch = [r[s] for s in sides[1:] if s in r]
            if not torch:
                continue
            t = max(torch, key=lambda x: x["examples_per_s"])
            best.append(t["examples_per_s"])
            best_threads.append(t["side"])
            if "ours" in r:
                ratios.append(r["ours"]["examples_per_s"] / t["examples_per_s"])
        rss = lambda side: spread([r[side]["peak_rss_mb"] for r in by_round.values() if side in r])
        s = {"summary": case["name"], "ours_ex_s": spread(ours), "torch_best_ex_s": spread(best), "ratio": spread(ratios),
             "torch_best_was": {t: best_threads.count(t) for t in sorted(set(best_threads))},
             "ours_peak_rss_mb": rss("ours"), "torch_peak_rss_mb": {s: rss(s) for s in sides[1:]},
             "load": spread([r["load_before"] for r in recs]),
             "refused": {side: err for (c, side), err in refused.items() if c == case["name"]}}
        summaries.append(s)
        print(json.dumps(s), flush=True)
    fmt = lambda sp, d=2: "—" if sp is None else f"{sp['median']:.{d}f} ({sp['min']:.{d}f}–{sp['max']:.{d}f})"
    print(f"\n{'case':20} {'ours ex/s':>22} {'PyTorch best ex/s':>22} {'ratio (×PyTorch)':>20} {'RSS MB ours/torch':>18}  load")
    for s in summaries:
        trss = [v["median"] for v in s["torch_peak_rss_mb"].values() if v]
        rss = f"{s['ours_peak_rss_mb']['median']:.0f}" if s["ours_peak_rss_mb"] else "—"
        print(f"{s['summary']:20} {fmt(s['ours_ex_s']):>22} {fmt(s['torch_best_ex_s']):>22} {fmt(s['ratio']):>20} {rss + '/' + (f'{min(trss):.0f}' if trss else '—'):>18}  {fmt(s['load'], 1)}")
        for side, err in s["refused"].items():
            print(f"{'':20} {side}: {err}")


if __name__ == "__main__":
    main()
