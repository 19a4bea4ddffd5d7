// `deno task test`: type-checks every entry point with its doc examples (`deno check --doc` of main.ts, lib/,
// routes/, workers/), lints and checks formatting, then runs `deno test` over tests/, passes its output through, and
// ends with a plain line `N passed, N failed` for CI logs. A failed check fails the run before any test starts.

const CHECKS = [
  ["check", "--doc", "main.ts", "lib/", "routes/", "workers/"],
  ["lint"],
  ["fmt", "--check"],
];

for (const args of CHECKS) {
  const check = await new Deno.Command(Deno.execPath(), { args }).spawn().status;
  if (!check.success) {
    console.log(`deno ${args.join(" ")} failed`);
    console.log("0 passed, 1 failed");
    Deno.exit(check.code || 1);
  }
}

const args = Deno.args.length ? Deno.args : ["tests/"];
const child = new Deno.Command(Deno.execPath(), {
  args: ["test", "--allow-all", ...args],
  stdout: "piped",
  stderr: "inherit",
}).spawn();

let tail = "";
const decoder = new TextDecoder();
for await (const chunk of child.stdout) {
  await Deno.stdout.write(chunk);
  tail = (tail + decoder.decode(chunk, { stream: true })).slice(-4096);
}
const status = await child.status;
// deno test ends with e.g. "ok | 12 passed (3 steps) | 0 failed (4s)".
// deno-lint-ignore no-control-regex
const clean = tail.replace(/\x1b\[[0-9;]*m/g, "");
const m = [...clean.matchAll(/(\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/g)].pop();
const passed = m ? Number(m[1]) : 0;
const failed = m ? Number(m[2]) : (status.success ? 0 : 1);
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(status.code);
