// `deno task soak [--quick] [--only a,b,c,d,e]`: hostile inputs, overload,
// kill -9 with billing reconciliation, worker crashes and store faults, and
// several processes on one store — against real server processes — written
// to docs/RELIABILITY.md. --quick is the CI subset (a few minutes).

import { faultPhase, hostilePhase, killPhase, multiPhase, overloadPhase } from "./soak/phases.ts";
import { render, type SoakResults, targets } from "./soak/report.ts";

const quick = Deno.args.includes("--quick");
const onlyArg = Deno.args.indexOf("--only");
const only = onlyArg >= 0 ? new Set(Deno.args[onlyArg + 1].split(",")) : null;
const out = Deno.args.includes("--out") ? Deno.args[Deno.args.indexOf("--out") + 1] : "docs/RELIABILITY.md";
const run = (phase: string) => !only || only.has(phase);

const t0 = performance.now();
const results: SoakResults = {
  mode: quick ? "quick" : "full",
  started: new Date().toISOString(),
  seconds: 0,
  machine: `${navigator.hardwareConcurrency} cores, ${
    Math.round(Deno.systemMemoryInfo().total / 2 ** 30)
  } GiB, ${Deno.build.os}, Deno ${Deno.version.deno}`,
};
const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
  const t = performance.now();
  console.error(`soak: ${name}…`);
  const r = await fn();
  console.error(`soak: ${name} done in ${((performance.now() - t) / 1000).toFixed(0)} s`);
  return r;
};

if (run("a")) {
  results.hostile = await step("(a) hostile inputs", () => hostilePhase(quick ? 500 : 10_000, quick ? 0 : 2));
}
if (run("b")) results.overload = await step("(b) overload", () => overloadPhase(quick ? 10 : 60, quick ? 5 : 15));
if (run("c")) results.kill = await step("(c) kill -9", () => killPhase(quick ? 1 : 6, 20));
if (run("d")) results.faults = await step("(d) faults", () => faultPhase());
if (run("e")) results.multi = await step("(e) processes", () => multiPhase(quick ? 2 : 4, 200));
results.seconds = (performance.now() - t0) / 1000;

await Deno.writeTextFile(out, render(results));
// Written as deno fmt formats it, so the repository's fmt check stays clean.
await new Deno.Command(Deno.execPath(), {
  args: ["fmt", "--quiet", out, out.replace(/\.md$/, ".json")],
  stdout: "null",
  stderr: "null",
}).output();
await Deno.writeTextFile(out.replace(/\.md$/, ".json"), JSON.stringify(results, null, 2) + "\n");
const t = targets(results);
console.log(`soak: ${t.filter((x) => x.ok).length}/${t.length} targets met; written to ${out}`);
for (const x of t) console.log(`${x.ok ? "  met    " : "  NOT MET"} ${x.what}: ${x.measured}`);
// The CI gate: what must never happen whatever the executor does.
const hard = [
  results.hostile && results.hostile.exits === 0,
  results.faults && results.faults.readOnly.violations.length === 0 && !results.faults.readOnly.leaksDbText,
  results.multi && results.multi.exact && results.multi.exits === 0,
  results.kill && results.kill.every((k) => k.exact),
].filter((x) => x !== undefined);
Deno.exit(hard.every(Boolean) ? 0 : 1);
