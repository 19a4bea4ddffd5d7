// The README's commands, run as a reader would: every `curl` line of its sh
// code blocks goes through bash against a live server (keys on, a created key
// as $KEY, the admin token as $ADMIN_TOKEN), from a directory where
// docs/examples/ resolves to the repo's, and must answer 2xx unless the line
// ends with a comment `# expect NNN`. The ts examples run with Deno and the
// python ones with python3 (when it has requests; else they are compiled).
// Every docs/ path the README names must exist, and no command may be
// macOS-only (`open URL`).

import assert from "node:assert/strict";
import { testServer } from "../_util.ts";

const ROOT = new URL("../../", import.meta.url);
const readme = await Deno.readTextFile(new URL("README.md", ROOT));

const tools = await Promise.all(
  ["bash", "curl", "jq"].map(async (tool) => {
    const found = await new Deno.Command("bash", { args: ["-c", `command -v ${tool}`], stdout: "null" })
      .output().then((o) => o.success, () => false);
    return found ? null : tool;
  }),
).then((missing) => missing.filter(Boolean));
const skip = tools.length > 0 && !Deno.env.get("CI");
if (skip) console.warn(`tests/e2e/readme_test.ts: SKIPPED, missing ${tools.join(", ")} (CI=1 makes them required)`);

/** The code blocks of one language in a markdown text. */
export function codeBlocks(markdown: string, lang: string): string[] {
  return [...markdown.matchAll(new RegExp("^```" + lang + "\\n([\\s\\S]*?)^```", "gm"))].map((m) => m[1]);
}

/** The shell commands of the README's sh/bash code blocks, continuation lines joined. */
export function shellCommands(markdown: string): string[] {
  const commands: string[] = [];
  for (const block of markdown.matchAll(/^```(?:sh|bash|shell)\n([\s\S]*?)^```/gm)) {
    let current = "";
    for (const line of block[1].split("\n")) {
      current += line;
      if (line.endsWith("\\")) {
        current = current.slice(0, -1) + " ";
        continue;
      }
      if (current.trim()) commands.push(current.trim());
      current = "";
    }
  }
  return commands;
}

Deno.test("README: commands split into curl lines, continuations joined", () => {
  const md = "x\n```sh\n# c\ncurl -s a \\\n  b | jq .\nls\n```\n```json\ncurl no\n```\n";
  assert.deepEqual(shellCommands(md), ["# c", "curl -s a    b | jq .", "ls"]);
});

Deno.test("README: every docs/ file it names exists; no macOS-only commands", async () => {
  const paths = new Set([...readme.matchAll(/\bdocs\/[\w./-]+\.(?:png|jpg|md|svg|sh|json)\b/g)].map((m) => m[0]));
  assert.ok(paths.has("docs/examples/text-0.png"));
  for (const path of paths) {
    assert.ok(await Deno.stat(new URL(path, ROOT)).then(() => true, () => false), `README names missing ${path}`);
  }
  const macOnly = shellCommands(readme).filter((c) => /^open\s/.test(c));
  assert.deepEqual(macOnly, [], "use xdg-open or 'open it in a browser', not macOS open");
});

Deno.test({
  name: "README: every curl line answers 2xx, and the TypeScript and Python examples run, against a live server",
  ignore: skip,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    assert.deepEqual(tools, [], `missing tools under CI: ${tools.join(", ")}`);
    const curls = shellCommands(readme).filter((c) => c.startsWith("curl "));
    assert.ok(curls.length >= 15, `only ${curls.length} curl lines found`);
    const admin = "readme-admin-token-0123456789";
    const server = await testServer({ AUTH: "on", ADMIN_TOKEN: admin });
    const cwd = await Deno.makeTempDir({ prefix: "thriftseg-readme-" });
    try {
      await Deno.symlink(new URL("docs", ROOT).pathname, `${cwd}/docs`);
      const createKey = async (name: string) => {
        const res = await fetch(`${server.url}/v1/admin/keys`, {
          method: "POST",
          headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
          body: JSON.stringify({ name, credit_gflops: 1000 }),
        });
        assert.equal(res.status, 201);
        return await res.json() as { id: string; secret: string };
      };
      const key = await createKey("readme");
      // The README's placeholder key id (topped up, then revoked) is a second key, not $KEY.
      const other = await createKey("acme");
      // Two requests so that /v1/usage/events?limit=1 has a next_cursor.
      for (let i = 0; i < 2; i++) {
        const res = await fetch(`${server.url}/v1/segment/digits`, {
          method: "POST",
          body: await Deno.readFile(new URL("docs/examples/digits-3.png", ROOT)),
          headers: { "content-type": "image/png", authorization: `Bearer ${key.secret}` },
        });
        assert.equal(res.status, 200);
        await res.body?.cancel();
      }
      const page = await (await fetch(`${server.url}/v1/usage/events?limit=1`, {
        headers: { authorization: `Bearer ${key.secret}` },
      })).json();
      assert.ok(page.next_cursor, JSON.stringify(page));

      const host = new URL(server.url).host;
      const failures: string[] = [];
      for (const line of curls) {
        const command = line.replaceAll("localhost:8000", host).replaceAll(/\bkey_0123abcd\b/g, other.id);
        const expected = Number(/#\s*expect\s+(\d{3})\s*$/.exec(line)?.[1] ?? 0);
        // curl reports each answer's status on stderr; the line's own output and pipes stay as written.
        const script = `set -o pipefail
curl() { command curl --write-out '%{stderr}HTTP_STATUS=%{http_code}\\n' "$@"; }
${command}`;
        const out = await new Deno.Command("bash", {
          args: ["-c", script],
          cwd,
          env: { KEY: key.secret, ADMIN_TOKEN: admin, NEXT_CURSOR: page.next_cursor },
          stdout: "piped",
          stderr: "piped",
        }).output();
        const stderr = new TextDecoder().decode(out.stderr);
        const statuses = [...stderr.matchAll(/HTTP_STATUS=(\d{3})/g)].map((m) => Number(m[1]));
        const ok = out.success && statuses.length > 0 &&
          statuses.every((s) => expected ? s === expected : s >= 200 && s < 300);
        if (!ok) {
          failures.push(
            `${line}\n  exit ${out.code}, statuses ${statuses.join(",") || "none"}, stderr: ${stderr.slice(0, 300)}` +
              `\n  stdout: ${new TextDecoder().decode(out.stdout).slice(0, 300)}`,
          );
        }
      }
      assert.deepEqual(failures, [], `README curl lines that failed:\n${failures.join("\n")}`);
      // The README's mask example wrote a real PNG.
      const mask = await Deno.readFile(`${cwd}/mask.png`);
      assert.deepEqual([...mask.subarray(1, 4)], [0x50, 0x4e, 0x47]);

      // The client examples, as written, against the same server.
      await Deno.symlink(new URL("clients", ROOT).pathname, `${cwd}/clients`);
      const env = { KEY: key.secret };
      const run = async (cmd: string, args: string[]) => {
        const out = await new Deno.Command(cmd, { args, cwd, env, stdout: "piped", stderr: "piped" }).output();
        const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
        assert.ok(out.success, `${cmd} ${args.join(" ")} failed:\n${text}`);
        return text;
      };
      const ts = codeBlocks(readme, "ts");
      assert.ok(ts.length >= 1, "a TypeScript example");
      for (const [i, code] of ts.entries()) {
        await Deno.writeTextFile(`${cwd}/example_${i}.ts`, code.replaceAll("localhost:8000", host));
        const config = new URL("deno.json", ROOT).pathname;
        await run(Deno.execPath(), ["run", "-A", "--config", config, `example_${i}.ts`]);
      }
      const py = codeBlocks(readme, "python");
      assert.ok(py.length >= 1, "a Python example");
      const requests = await new Deno.Command("python3", { args: ["-c", "import requests"], stderr: "null" })
        .output().then((o) => o.success, () => false);
      for (const [i, code] of py.entries()) {
        await Deno.writeTextFile(`${cwd}/example_${i}.py`, code.replaceAll("localhost:8000", host));
        if (requests) await run("python3", [`example_${i}.py`]);
        else await run("python3", ["-m", "py_compile", `example_${i}.py`]);
      }
    } finally {
      await server.close();
      await Deno.remove(cwd, { recursive: true });
    }
  },
});
