"""Drive the bertqa kernel as JupyterLab does (Jupyter's messaging protocol, through jupyter_client) and do what a
student does: Run All, run each code cell again, "Run All Below" from the model and training cells, edit the
parameters cell and run everything below it. For notebook 04 also: the edited run's logged losses against a fresh
kernel's with the same edit, tf.memory() after five runs of the model and training cells, and ■ during training.

    python3 test/kernel_driver.py NOTEBOOK.ipynb [...]      prints one JSON line per notebook; exit 1 on a failure

Run by test/kernel.test.ts with JUPYTER_PATH pointing at a kernel.json for this checkout and BERTQA_TRAIN_STEPS set.
"""
import json, os, re, sys, time
from jupyter_client.manager import KernelManager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 900

# The student's edit of each notebook's parameters cell: (pattern, replacement).
EDITS = {
    "01": (r"const SHOW_ROWS = 8;", "const SHOW_ROWS = 5;"),
    "02": (r"const DEMO_STRIDE = 12;", "const DEMO_STRIDE = 16;"),
    "03": (r'const SEQ_LEN = PROFILE === "full" \? 384 : 128;', 'const SEQ_LEN = PROFILE === "full" ? 384 : 64;'),
    "04": (r": 1e-3;", ": 2e-3;"),  # exercise (1): double LR
    "05": (r"const N_BEST = 20;", "const N_BEST = 10;"),
    "06": (r": 1e-3;", ": 2e-3;"),
    "07": (r": 1e-3;", ": 2e-3;"),
}
# Table columns that hold timings (compared as "a number", not by value).
TIMING_COLUMNS = {"seconds", "examples/s", "ex/s", "elapsed_s", "time", "ms", "seconds_per_step"}


class Kernel:
    def __init__(self):
        self.km = KernelManager(kernel_name="bertqa")
        self.km.start_kernel(cwd=os.path.join(ROOT, "notebooks"))  # as Jupyter: the notebook's folder
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    def execute(self, code, on_output=None, timeout=TIMEOUT):
        """Run one cell; returns (status, outputs) with outputs as Jupyter would keep them (display updates applied)."""
        msg_id = self.kc.execute(code, store_history=True)
        outputs, by_display = [], {}
        deadline = time.time() + timeout
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(1, deadline - time.time()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            t, c = msg["msg_type"], msg["content"]
            if t == "status" and c["execution_state"] == "idle":
                break
            if t in ("display_data", "execute_result"):
                out = {"type": "display", "data": c["data"]}
                did = c.get("transient", {}).get("display_id")
                if did:
                    out["display_id"] = did
                    by_display[did] = out
                outputs.append(out)
            elif t == "update_display_data":
                did = c.get("transient", {}).get("display_id")
                if did in by_display:
                    by_display[did]["data"] = c["data"]
            elif t == "stream":
                outputs.append({"type": c["name"], "text": c["text"]})
            elif t == "error":  # what JupyterLab shows of an error is its traceback
                outputs.append({"type": "error", "ename": c["ename"], "text": "\n".join(c["traceback"])})
            if on_output is not None:
                on_output(t, c)
        reply = self.kc.get_shell_msg(timeout=60)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=60)
        status = reply["content"]["status"]
        if status != "ok":
            time.sleep(0.5)  # tslab cancels what is sent within 200 ms of a failed cell (Run All stops there), as Jupyter does
        return status, outputs

    def probe(self, code):
        """A cell the student never sees: its stdout as JSON."""
        status, outs = self.execute(code)
        text = "".join(o["text"] for o in outs if o["type"] == "stdout")
        if status != "ok":
            raise RuntimeError("probe failed: %s %s" % (code, outs))
        return json.loads(text.strip().splitlines()[-1])

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def code_cells(nb):
    return [(i, "".join(c["source"])) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]


def mask_tables(html):
    """Timing columns of our HTML tables become '#'."""
    def table(m):
        t = m.group(0)
        heads = [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<th[^>]*>(.*?)</th>", t, re.S)]
        masked = {i for i, h in enumerate(heads) if h in TIMING_COLUMNS}
        if not masked:
            return t
        def row(r):
            cells = re.findall(r"<td[^>]*>.*?</td>", r.group(0), re.S)
            offset = len(heads) - len(cells)  # an index column is a <th>
            for k, cell in enumerate(cells):
                if k + offset in masked:
                    cells[k] = "<td>#</td>"
            return "<tr>" + "".join(cells) + "</tr>"
        return re.sub(r"<tr>(?:(?!</tr>).)*?<td.*?</tr>", row, t, flags=re.S)
    return re.sub(r"<table.*?</table>", table, html, flags=re.S)


def normalize(outputs):
    """What must be equal between two runs of a cell: shown tables, charts and text; not progress displays (they
    carry times), stderr, chart ids or the plotly.js library that only a kernel's first chart carries."""
    norm = []
    for o in outputs:
        if o["type"] == "display":
            if "display_id" in o:
                continue  # progress: times and speeds
            html = o["data"].get("text/html", o["data"].get("text/plain", ""))
            html = re.sub(r'<script type="text/javascript">/\*\*\s*\* plotly\.js.*?</script>', "", html, flags=re.S)
            html = re.sub(r"bertqa-plot-[a-z0-9]+-[a-z0-9]+", "bertqa-plot-ID", html)
            norm.append(mask_tables(html))
        elif o["type"] == "stdout":
            norm.append(o["text"])
    return norm


def run_cells(k, cells, failures, what, after=None):
    results = {}
    for i, src in cells:
        status, outs = k.execute(src)
        results[i] = outs
        if after is not None and status == "ok":
            after(i)
        if status != "ok":
            failures.append({"step": what, "cell": i, "outputs": [o.get("text", "") for o in outs if o["type"] in ("stderr", "error")][-3:]})
            break
    return results


def compare(reference, results, failures, what):
    for i, outs in results.items():
        if normalize(outs) != normalize(reference[i]):
            a, b = normalize(reference[i]), normalize(outs)
            diff = next(((x[:300], y[:300]) for x, y in zip(a, b) if x != y), (len(a), len(b)))
            failures.append({"step": what, "cell": i, "differs": diff})


def metrics_losses(out_dir):
    with open(os.path.join(ROOT, out_dir, "metrics.jsonl")) as f:
        return [[r["step"], r["loss"]] for r in map(json.loads, f) if "loss" in r]


def memory_probe(k):
    # garbage collected first, so RSS and heap say what is kept, not what is waiting for the collector
    return k.probe('require("v8").setFlagsFromString("--expose_gc");\nrequire("vm").runInNewContext("gc")();\n'
                   'console.log(JSON.stringify({ ...require("@tensorflow/tfjs").memory(), rss: process.memoryUsage().rss, heapUsed: process.memoryUsage().heapUsed }));')


def user_errors(k):
    """A user mistake in a cell, and a model used after the clean-up cell released it: one line each, no stack."""
    cases = [
        ('import { loadSquad } from "./lib/squad";\nloadSquad("data/no-such-file.json");', r"no-such-file\.json"),
        ('import { predictQA } from "./lib/predict";\nawait predictQA(model, tok, dev.slice(0, 2), { maxLength: MAX_LENGTH, docStride: DOC_STRIDE });',
         r"^forward: this model was released .*run section 3's training cell again"),
    ]
    got = []
    for code, want in cases:
        status, outs = k.execute(code)
        text = "".join(o["text"] for o in outs if o["type"] in ("stderr", "error")).strip()
        enames = [o["ename"] for o in outs if o["type"] == "error"]
        got.append({"code": code.splitlines()[-1], "message": text, "enames": enames,
                    "ok": status == "error" and enames == ["UserError"] and len(text.splitlines()) == 1 and re.search(want, text) is not None})
    return got


def interrupt_during_training(k, param_src, train_src, out_dir):
    """■ while the training cell runs: the cell must end within seconds with one line, the checkpoint written, and
    no loop left going (metrics.jsonl stops growing, no active work)."""
    long_params = re.sub(r"const MAX_STEPS: number \| undefined = [^\n]*", "const MAX_STEPS: number | undefined = 400;", param_src)
    status, outs = k.execute(long_params)
    assert status == "ok", outs
    state = {"sent": None}
    def on_output(t, c):
        html = c.get("data", {}).get("text/html", "") if isinstance(c.get("data"), dict) else ""
        if state["sent"] is None and t in ("display_data", "update_display_data") and re.search(r"<b>train</b>.*?\b[1-9]\d*/400 ", html, re.S):
            state["sent"] = time.time()
            k.km.interrupt_kernel()
    status, outs = k.execute(train_src, on_output=on_output)
    ended = time.time()
    errors = [o["text"] for o in outs if o["type"] in ("stderr", "error")]
    text = "".join(errors).strip()
    enames = [o["ename"] for o in outs if o["type"] == "error"]
    m = re.search(r"stopped \(■\) at step (\d+) of 400: checkpoint in (\S+);", text)
    ckpt_step = None
    if m:
        with open(os.path.join(ROOT, m.group(2), "trainer_state.json")) as f:
            ckpt_step = json.load(f)["step"]
    size = os.path.getsize(os.path.join(ROOT, out_dir, "metrics.jsonl"))
    time.sleep(3)
    size_later = os.path.getsize(os.path.join(ROOT, out_dir, "metrics.jsonl"))
    active = k.probe('import { activeWork } from "./lib/stop";\nconsole.log(JSON.stringify(activeWork().length));')
    status_after, _ = k.execute(param_src)  # back to the notebook's parameters
    return {
        "sent": state["sent"] is not None, "status": status, "seconds_to_stop": round(ended - state["sent"], 2) if state["sent"] else None,
        "message": text, "one_line": len(text.splitlines()) == 1, "enames": enames, "stopped_step": int(m.group(1)) if m else None,
        "checkpoint_step": ckpt_step, "metrics_grew": size_later != size, "active_after": active, "params_ok": status_after == "ok",
    }


def drive(path):
    name = os.path.basename(path)[:2]
    nb = json.load(open(path, encoding="utf-8"))
    cells = code_cells(nb)
    params_i, params_src = cells[0]
    pattern, replacement = EDITS[name]
    edited = re.sub(pattern, replacement, params_src, count=1)
    assert edited != params_src, "the edit for %s does not apply to its parameters cell" % name
    # "Run All Below" from each cell that builds or trains a model; from the first cell after the imports it would be
    # the "each cell again" pass once more
    model_cells = [i for n, (i, s) in enumerate(cells) if "replaceModel(" in s and "import " not in s and n > 2]
    failures, report = [], {"notebook": os.path.basename(path), "cells": len(cells)}
    # 04: tf.memory() right after each run of the model and training cells (five runs over the passes below)
    train_i = cells[4][0] if name == "04" else None
    mem = []
    after = (lambda i: mem.append(memory_probe(k)) if i == train_i else None) if name == "04" else None
    t0 = time.time()
    k = Kernel()
    try:
        ref = run_cells(k, cells, failures, "run all", after)
        if failures:
            return dict(report, failures=failures)
        if name == "04":
            report["user_errors"] = user_errors(k)
            bad = [u for u in report["user_errors"] if not u["ok"]]
            if bad:
                failures.append({"step": "user errors in cells", "got": bad})
        again = run_cells(k, cells, failures, "each cell again", after)
        compare(ref, again, failures, "each cell again")
        report["reruns"] = len(again)
        for start in model_cells:
            below = [(i, s) for i, s in cells if i >= start]
            res = run_cells(k, below, failures, "run all below %d" % start, after)
            compare(ref, res, failures, "run all below %d" % start)
            report["reruns"] += len(res)
        edited_cells = [(params_i, edited)] + cells[1:]
        res = run_cells(k, edited_cells, failures, "edited parameters, run all below", after)
        report["reruns"] += len(res)
        if name == "04" and not failures:
            out_dir = "runs/notebook-04-offline"
            report["edited_losses"] = metrics_losses(out_dir)
            res = run_cells(k, [cells[3], cells[4]], failures, "model and training cells again", after)  # the model-recipe and training cells
            report["reruns"] += len(res)
            report["memory_after_1"], report["memory_after_5"] = mem[0], mem[4]
            if len(mem) != 5 or any(m["numTensors"] != mem[0]["numTensors"] or m["numBytes"] != mem[0]["numBytes"] for m in mem):
                failures.append({"step": "memory", "after_each_run": mem})
            report["interrupt"] = interrupt_during_training(k, params_src, cells[4][1], out_dir)
            it = report["interrupt"]
            if not (it["sent"] and it["status"] == "error" and it["one_line"] and it["enames"] == ["UserError"] and it["stopped_step"] is not None
                    and it["checkpoint_step"] == it["stopped_step"] and not it["metrics_grew"] and it["active_after"] == 0 and it["params_ok"]):
                failures.append({"step": "interrupt", "got": it})
    finally:
        k.close()
    if name == "04" and not failures:
        fresh = Kernel()  # a fresh kernel with the same edit: the edited run must have trained the same model
        try:
            run_cells(fresh, [(params_i, edited)] + cells[1:], failures, "fresh kernel, edited")
            report["fresh_losses"] = metrics_losses("runs/notebook-04-offline")
        finally:
            fresh.close()
        if report.get("fresh_losses") != report["edited_losses"]:
            failures.append({"step": "edited run vs fresh kernel", "edited": report["edited_losses"], "fresh": report.get("fresh_losses")})
    report["seconds"] = round(time.time() - t0, 1)
    return dict(report, failures=failures)


def main():
    ok = True
    for path in sys.argv[1:]:
        r = drive(path)
        ok = ok and not r["failures"]
        print(json.dumps(r, ensure_ascii=False), flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
