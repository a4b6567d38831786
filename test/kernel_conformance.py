"""Jupyter's own kernel conformance suite (jupyter_kernel_test, Debian python3-jupyter-kernel-test) on the bertqa
kernel, with samples for what TypeScript has: the messages JupyterLab, nbclient and the classic Notebook rely on,
checked against the protocol's schemas. Then two checks of our own on the same messages (test_bertqa_*).

    python3 test/kernel_conformance.py [-v]      unittest's exit status; run by test/kernel-conformance.test.ts

JUPYTER_PATH must hold a kernels/bertqa/kernel.json for this checkout (the test writes one to a temporary folder).
"""
import time
import unittest

import jupyter_kernel_test


class BertqaKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = "bertqa"
    language_name = "typescript"
    file_extension = ".ts"

    code_hello_world = 'console.log("hello, world");'
    code_stderr = 'console.error("to stderr");'
    completion_samples = [{"text": "Math.flo", "matches": {"floor"}}, {"text": "JSON.str", "matches": {"stringify"}}]
    complete_code_samples = ["6 * 7", "const a = [1, 2];", "function f() {\n  return 1;\n}"]
    incomplete_code_samples = ["function f() {", "const a = [1,", "if (true) {\n  console.log(1);"]
    code_display_data = [
        {"code": 'import * as tslab from "tslab";\ntslab.display.html("<b>bold</b>");', "mime": "text/html"},
        {"code": 'import * as tslab from "tslab";\ntslab.display.text("plain");', "mime": "text/plain"},
    ]
    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": '"a" + "b"', "result": "'ab'"},
        {"code": "const x = 21;\nx * 2", "result": "42"},
        {"code": "await Promise.resolve([1, 2])", "result": "[ 1, 2 ]"},
    ]
    code_generate_error = 'throw new Error("boom");'
    code_inspect_sample = "Math.max"

    def execute_failing(self, code):
        reply, outputs = self.execute_helper(code)
        time.sleep(0.5)  # tslab drops the cells sent within 200 ms of a failed one (Run All stops there)
        return reply, outputs

    # A failed cell shows one error (no stderr); the reply repeats it. A user mistake is one line; a bug keeps its
    # stack, in the cell's lines (In[n]:line:column) and lib/*.ts lines, not tslab's compiled code; a type error shows
    # TypeScript's diagnostics.
    def test_bertqa_error_content(self):
        cases = [
            ('import { userError } from "./lib/errors";\nthrow userError("data/x.json", "no such file", "download it");',
             "UserError", "data/x.json: no such file (download it)", lambda n: ["data/x.json: no such file (download it)"]),
            ('function f(x: number) {\n  if (x > 0) throw new RangeError("too big: " + x);\n}\nf(1);',
             "RangeError", "too big: 1", lambda n: ["RangeError: too big: 1", "    at f (In[%d]:2:20)" % n, "    at In[%d]:4:1" % n]),
            ('import { oneLine } from "./lib/errors";\noneLine(undefined as any);',
             "TypeError", "Cannot read properties of undefined (reading 'replace')",
             lambda n: ["TypeError: Cannot read properties of undefined (reading 'replace')", "    at oneLine (lib/errors.ts:25:14)", "    at In[%d]:2:8" % n]),
            ("const s: string = 5;", "TSError", "1:7 - Type 'number' is not assignable to type 'string'.",
             lambda n: ["1:7 - Type 'number' is not assignable to type 'string'."]),
        ]
        for code, ename, evalue, traceback in cases:
            with self.subTest(code=code):
                self.flush_channels()
                reply, outputs = self.execute_failing(code)
                self.assertEqual([m["msg_type"] for m in outputs], ["error"])
                error = outputs[0]["content"]
                n = reply["content"]["execution_count"]
                self.assertEqual(error, {"ename": ename, "evalue": evalue, "traceback": traceback(n)})
                self.assertEqual({k: reply["content"][k] for k in error}, error)

    # Out[n] is the cell's In[n]; a cell whose last statement has no value shows no result.
    def test_bertqa_execute_result_count(self):
        self.flush_channels()
        reply, outputs = self.execute_helper("const y = 6;\ny * 7")
        results = [m["content"] for m in outputs if m["msg_type"] == "execute_result"]
        self.assertEqual(results, [{"execution_count": reply["content"]["execution_count"], "data": {"text/plain": "42"}, "metadata": {}}])
        reply, outputs = self.execute_helper("const z = 1;")
        self.assertEqual([m["msg_type"] for m in outputs], [])


if __name__ == "__main__":
    unittest.main()
