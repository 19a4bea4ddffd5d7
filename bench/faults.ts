// Where a request's page faults go: on the virtual machines this runs on, touching memory the process has not touched
// yet (or gave back) costs about 10–20 µs per 4 KiB page (lib/libc.ts), so a fresh 12 MB buffer is 30–50 ms of a
// request. Through the Segmenter the server uses (bench/eval/_common.ts `serverSegmenter`: its pool layout, its decode
// worker), `fixed` and `adaptive` in turn on text test screenshots, it prints per image and mode the median wall-clock
// and decode time and the mean minor faults per request of each kind of thread (the main thread, the workers' JS
// threads, libvips' threads in sharp's decodes, any other), from /proc/self/task/*/stat, after two warm-up rounds:
//
//   deno run -A bench/faults.ts [--backend native|wasm] [--rounds 8] [name,…]

import { type ClockBackend, serverSegmenter } from "./eval/_common.ts";
import { renderMissing } from "./eval/render_pages.ts";
import { median, option as arg } from "./_bench.ts";

const backend = arg("--backend", "native") as ClockBackend;
const rounds = Number(arg("--rounds", "8"));
const named = Deno.args.filter((a, i) => !a.startsWith("--") && !Deno.args[i - 1]?.startsWith("--"));
const names = named.length
  ? named[0].split(",")
  : ["python3-python-policy-phone@3", "valgrind-mc-manual-desktop@1.25", "nodejs-fs-laptop@1.25"];

/** Minor faults so far per kind of thread of this process. */
function faults(): Map<string, number> {
  const out = new Map<string, number>();
  for (const task of Deno.readDirSync("/proc/self/task")) {
    let stat: string;
    try {
      stat = Deno.readTextFileSync(`/proc/self/task/${task.name}/stat`);
    } catch {
      continue; // the thread ended meanwhile
    }
    const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const kind = task.name === String(Deno.pid)
      ? "main"
      : name.startsWith("worker-")
      ? "workers"
      : name.startsWith("libvips")
      ? "libvips"
      : "other";
    // Field 10 of stat (minflt), the 8th after the command's closing parenthesis.
    out.set(kind, (out.get(kind) ?? 0) + Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[7]));
  }
  return out;
}

const served = await serverSegmenter(backend);
if (!served) throw new Error(`the ${backend} backend does not load here`);
const images = await renderMissing(undefined, names);
for (const img of images) {
  const bytes = await Deno.readFile(img.path);
  const fresh = () => ({ wall: [] as number[], decode: [] as number[], faults: new Map<string, number>() });
  const modes = { fixed: fresh(), adaptive: fresh() };
  for (let k = 0; k < 2 * (rounds + 2); k++) {
    const mode = k % 2 ? "adaptive" : "fixed";
    const before = faults(), t0 = performance.now();
    const r = await served.segmenter.segment({ task: "text", mode, bytes });
    const wall = performance.now() - t0, after = faults();
    if (k < 4) continue;
    const m = modes[mode];
    m.wall.push(wall);
    m.decode.push(r.timings.decode);
    for (const [kind, n] of after) m.faults.set(kind, (m.faults.get(kind) ?? 0) + n - (before.get(kind) ?? 0));
  }
  const line = (mode: "fixed" | "adaptive") => {
    const m = modes[mode];
    const f = [...m.faults].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1])
      .map(([kind, n]) => `${kind} ${Math.round(n / rounds)}`).join(", ");
    return `${mode} ${median(m.wall).toFixed(0)} ms (decode ${median(m.decode).toFixed(0)}), faults ${f || "none"}`;
  };
  console.log(`${img.name}: ${line("fixed")} | ${line("adaptive")}`);
}
await served.close();
Deno.exit(0);
