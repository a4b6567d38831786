#!/usr/bin/env python3
"""PyTorch's GEMM speed at BERT's training shapes, for `bertqa bench --gemm`: one JSON line
{"torch", "threads", "gemm": [{"name", "gflops", "cpu_gflops"}]} (cpu_gflops: per second of all threads' CPU time). Shapes come as JSON on the command line (the bench passes its own):
  /usr/bin/python3 test/bench/torch_gemm.py --threads 2 --shapes '[{"name":"x·W","batch":1,"m":2048,"k":256,"n":768,"ta":false,"tb":false}]'
"""
import argparse, json, time
import torch


def gflops(s, reps):
    a = torch.randn(s["batch"], s["k"], s["m"]) if s["ta"] else torch.randn(s["batch"], s["m"], s["k"])
    b = torch.randn(s["batch"], s["n"], s["k"]) if s["tb"] else torch.randn(s["batch"], s["k"], s["n"])
    f = lambda: torch.matmul(a.transpose(-1, -2) if s["ta"] else a, b.transpose(-1, -2) if s["tb"] else b)
    for _ in range(2):
        f()
    times, cpu0 = [], time.process_time()
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu0  # all threads' CPU time
    flops = 2 * s["batch"] * s["m"] * s["n"] * s["k"]
    return flops / min(times) / 1e9, reps * flops / cpu / 1e9  # best run (the least disturbed), per CPU-second


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch default)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--shapes", required=True, help="JSON list of {name, batch, m, k, n, ta, tb}")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    rows = []
    for s in json.loads(a.shapes):
        wall, cpu = gflops(s, a.reps)
        rows.append({"name": s["name"], "gflops": round(wall, 1), "cpu_gflops": round(cpu, 1)})
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "gemm": rows}))


if __name__ == "__main__":
    main()
