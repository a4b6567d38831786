// .ci/backports-source.sh: the bookworm-backports apt line is derived from the machine's own sources (same URI and
// signing key as the bookworm suite), deb822 first, then one-line files; no usable source = exit 1 and one line.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const SCRIPT = path.join(__dirname, "..", ".ci", "backports-source.sh");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-apt-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;

/** An apt directory holding `files` (path relative to it → text); returns the script's result for `codename`. */
function derive(files: Record<string, string>, codename = "bookworm"): { code: number | null; stdout: string; stderr: string } {
  const dir = path.join(tmp, `apt${n++}`);
  fs.mkdirSync(path.join(dir, "sources.list.d"), { recursive: true });
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  const r = spawnSync("bash", [SCRIPT, dir, codename], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const KEY = "/usr/share/keyrings/debian-archive-keyring.gpg";
const SECURITY = `Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main\nSigned-By: ${KEY}\n`;

const CASES: { name: string; files: Record<string, string>; line: string }[] = [
  {
    name: "deb822 (Debian's default debian.sources): the stanza with the bookworm suite, its URI and key",
    files: { "sources.list.d/debian.sources": `${SECURITY}\nTypes: deb deb-src\n# a snapshot comment\nURIs: http://apt.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: ${KEY}\n` },
    line: `deb [signed-by=${KEY}] http://apt.example/debian bookworm-backports main`,
  },
  {
    name: "deb822: suites folded onto a continuation line, disabled stanzas skipped, first of several URIs",
    files: {
      "sources.list.d/a.sources": "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n",
      "sources.list.d/b.sources": "Types: deb\nURIs: https://one.example/debian https://two.example/debian\nSuites: bookworm-updates\n bookworm\nComponents: main\nSigned-By: /etc/apt/keyrings/local.gpg",
    },
    line: "deb [signed-by=/etc/apt/keyrings/local.gpg] https://one.example/debian bookworm-backports main",
  },
  {
    name: "deb822 with an inline key (not reusable in one line): falls back to sources.list",
    files: {
      "sources.list.d/debian.sources": "Types: deb\nURIs: http://inline.example/debian\nSuites: bookworm\nComponents: main\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n xyz\n",
      "sources.list": "deb http://plain.example/debian bookworm main contrib\n",
    },
    line: "deb http://plain.example/debian bookworm-backports main",
  },
  {
    name: "one-line sources.list with options: signed-by kept, other options and comments ignored",
    files: { "sources.list": `# deb http://old.example/debian bookworm main\ndeb-src http://src.example/debian bookworm main\ndeb [ arch=amd64 signed-by=${KEY} ] http://apt.example/debian bookworm main # trailing\n` },
    line: `deb [signed-by=${KEY}] http://apt.example/debian bookworm-backports main`,
  },
  {
    name: "one-line *.list in sources.list.d when there is no sources.list",
    files: { "sources.list.d/mirror.list": "deb http://apt.example/debian bookworm-updates main\ndeb [signed-by=/k.gpg] http://apt.example/debian bookworm main\n" },
    line: "deb [signed-by=/k.gpg] http://apt.example/debian bookworm-backports main",
  },
];

for (const c of CASES) {
  test(c.name, () => {
    const r = derive(c.files);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, c.line + "\n");
  });
}

test("no source for the codename: exit 1 and one line on stderr, nothing on stdout", () => {
  const cases: Record<string, string>[] = [{}, { "sources.list.d/debian.sources": SECURITY }, { "sources.list": "deb cdrom:[Debian 12]/ bookworm main\n" }];
  for (const files of cases) {
    const r = derive(files);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /no apt source for 'bookworm'/);
  }
});

test("the codename is a parameter: a trixie machine gets trixie-backports", () => {
  const r = derive({ "sources.list": "deb http://apt.example/debian trixie main\n" }, "trixie");
  assert.equal(r.stdout, "deb http://apt.example/debian trixie-backports main\n");
});
