// The demo page (GET /) in a real browser: Debian's Chromium driven by
// puppeteer-core against the real server with keys on. One image of each task
// goes through the page; the overlay's pixels, the plan legend, the cost and
// the credit are checked against the JSON the page received, then the error
// paths (415, 422) must clear the old result. Screenshots go to a temp dir, or
// to $SCREENSHOTS (`deno task screenshots` writes docs/screenshots/).
//
// Without Chromium the test is skipped with a message, except under CI
// (`CI` set), where it must run: .ci/run installs Chromium.

/// <reference lib="dom" />
import assert from "node:assert/strict";
import puppeteer, { type Browser, type ElementHandle, type HTTPResponse, type Page } from "puppeteer-core";
import { Image } from "imagescript";
import { testServer, textImage } from "../_util.ts";
import type { RunningServer } from "../../main.ts";

const CHROMIUM = Deno.env.get("CHROMIUM") ?? "/usr/bin/chromium";
const haveChromium = await Deno.stat(CHROMIUM).then((s) => s.isFile, () => false);
const inCI = Boolean(Deno.env.get("CI"));
const skip = !haveChromium && !inCI;
if (skip) {
  console.warn(
    `tests/browser: SKIPPED, no Chromium at ${CHROMIUM} (apt-get install -y chromium; CI=1 makes it required)`,
  );
}

const examples = new URL("../../docs/examples/", import.meta.url);
const shotsDir = Deno.env.get("SCREENSHOTS") ?? await Deno.makeTempDir({ prefix: "thriftseg-shots-" });

interface Tile {
  x: number;
  y: number;
  w: number;
  h: number;
  model: string | null;
}
interface Glimpse {
  step: number;
  tile: { x: number; y: number; w: number; h: number } | null;
  model: string;
}
interface SegmentJson {
  id: string;
  width: number;
  height: number;
  classes: string[];
  mask: { data: string };
  plan: { mode: string; tiles: Tile[]; glimpses: Glimpse[]; coverage?: { full_res_share: number } };
  cost: { gflops: number; breakdown: { model: string; runs: number; gflops: number }[] };
  budget: { gflops: number | null };
}

/** Records the raw body of every /v1/segment answer the page fetches, before the page reads it. */
async function installFetchRecorder(page: Page) {
  await page.evaluateOnNewDocument(() => {
    const w = globalThis as unknown as { __lastBody?: string; fetch: typeof fetch };
    const original = w.fetch.bind(globalThis);
    w.fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
      const res = await original(input, init);
      if (String(input).includes("/v1/segment/")) w.__lastBody = await res.clone().text();
      return res;
    };
  });
}

/** The page's `data-state` after a submit settles: "done" or "error". */
async function submit(page: Page): Promise<{ res: HTTPResponse; json: () => unknown; state: string }> {
  await page.evaluate(() => {
    delete (globalThis as unknown as { __lastBody?: string }).__lastBody;
    // Every state the page goes through, with the button's state at that moment.
    const w = globalThis as unknown as { __states: [string, boolean, string][] };
    w.__states = [];
    new MutationObserver(() => {
      w.__states.push([
        document.body.dataset.state!,
        (document.getElementById("go") as HTMLButtonElement).disabled,
        getComputedStyle(document.querySelector("#go .spinner")!).display,
      ]);
    }).observe(document.body, { attributes: true, attributeFilter: ["data-state"] });
  });
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url().includes("/v1/segment/") && r.request().method() === "POST"),
    page.click("#go"),
  ]);
  // The body as fetch() handed it to the page (recorded by the wrapper from
  // installFetchRecorder); CDP's getResponseBody loses POST answers to cache eviction.
  const text = await page.waitForFunction(
    () => (globalThis as unknown as { __lastBody?: string }).__lastBody,
  ).then((h) => h.jsonValue()) as string;
  await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.state!));
  const states = await page.evaluate(() =>
    (globalThis as unknown as { __states: [string, boolean, string][] }).__states
  );
  // While running: the button is disabled and its spinner shows.
  assert.deepEqual(states[0].slice(0, 2), ["running", true], JSON.stringify(states));
  assert.notEqual(states[0][2], "none", "spinner visible while running");
  assert.equal(await page.$eval("#go .spinner", (e) => getComputedStyle(e).display), "none", "spinner gone after");
  const state = await page.evaluate(() => document.body.dataset.state!);
  assert.equal(await page.$eval("#go", (b) => (b as HTMLButtonElement).disabled), false);
  return { res, json: () => JSON.parse(text), state };
}

async function setField(page: Page, selector: string, value: string) {
  await page.$eval(selector, (el, v) => {
    (el as HTMLInputElement).value = v as string;
  }, value);
}

async function choose(
  page: Page,
  file: string,
  task: string,
  mode: string,
  extra: Partial<Record<string, string>> = {},
) {
  await page.select("#task", task);
  await page.select("#mode", mode);
  await setField(page, "#budget", extra.budget ?? "");
  await setField(page, "#confidence", extra.confidence ?? "");
  const input = await page.$("#file") as ElementHandle<HTMLInputElement>;
  await input.uploadFile(file);
  await page.waitForFunction(() => !document.getElementById("file-name")!.textContent!.startsWith("PNG"));
}

function maskValues(png: Uint8Array, width: number, height: number): Promise<Uint8Array> {
  return Image.decode(png).then((img) => {
    assert.equal(img.width, width);
    assert.equal(img.height, height);
    const values = new Uint8Array(width * height);
    for (let i = 0; i < values.length; i++) values[i] = img.bitmap[i * 4];
    return values;
  });
}

/** Checks the drawn result against the JSON the page received. */
async function checkResult(page: Page, { res, json }: { res: HTTPResponse; json: () => unknown }) {
  assert.equal(res.status(), 200);
  const body = json() as SegmentJson;
  const headers = res.headers();
  const values = await maskValues(
    Uint8Array.from(atob(body.mask.data), (c) => c.charCodeAt(0)),
    body.width,
    body.height,
  );

  // The class legend: a colour per class, the pixel counts of the returned mask.
  const legend = await page.$$eval("#class-legend li", (lis) =>
    lis.map((li) => ({
      cls: Number((li as HTMLElement).dataset.class),
      name: (li as HTMLElement).dataset.name!,
      rgb: (li as HTMLElement).dataset.rgb!,
      pixels: Number((li as HTMLElement).dataset.pixels),
    })));
  assert.deepEqual(legend.map((l) => l.name), body.classes);
  const counts = body.classes.map((_, c) => values.reduce((n, v) => n + (v === c ? 1 : 0), 0));
  assert.deepEqual(legend.map((l) => l.pixels), counts);
  const drawn = legend.filter((l) => l.rgb);
  assert.equal(new Set(drawn.map((l) => l.rgb)).size, drawn.length, "class colours are distinct");
  if (body.classes[0] === "background") assert.equal(legend[0].rgb, "", "background is not painted");

  // The overlay canvas: the class colour exactly where the mask says, nothing on background.
  const samples: number[] = [];
  for (let c = 0; c < body.classes.length; c++) {
    const where = [];
    for (let i = 0; i < values.length; i++) if (values[i] === c) where.push(i);
    const step = Math.max(1, Math.floor(where.length / 60));
    for (let k = 0; k < where.length; k += step) samples.push(where[k]);
  }
  const got = await page.$eval("#overlay", (canvas, idx) => {
    const c = canvas as HTMLCanvasElement;
    const data = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
    return { w: c.width, h: c.height, px: (idx as number[]).map((i) => Array.from(data.slice(i * 4, i * 4 + 4))) };
  }, samples);
  assert.deepEqual([got.w, got.h], [body.width, body.height]);
  samples.forEach((i, k) => {
    const want = legend[values[i]].rgb;
    const px = got.px[k];
    if (want) assert.deepEqual(px, [...want.split(",").map(Number), 255], `pixel ${i} of class ${values[i]}`);
    else assert.equal(px[3], 0, `background pixel ${i} is transparent`);
  });
  assert.ok(await page.$eval("#overlay", (c) => !(c as HTMLElement).hidden));

  // Overlay and plan sit exactly on the image.
  const boxes = await page.evaluate(() =>
    ["image", "overlay", "plan"].map((id) => {
      const r = document.getElementById(id)!.getBoundingClientRect();
      return [Math.round(r.x), Math.round(r.y), Math.round(r.width), Math.round(r.height)];
    })
  );
  assert.deepEqual(boxes[1], boxes[0]);
  assert.deepEqual(boxes[2], boxes[0]);

  // The plan: one outlined tile per plan tile, the legend counts tiles per model (skipped = model null).
  const perModel = new Map<string, number>();
  for (const t of body.plan.tiles) perModel.set(t.model ?? "skipped", (perModel.get(t.model ?? "skipped") ?? 0) + 1);
  const planLegend = await page.$$eval(
    "#plan-legend li",
    (lis) => lis.map((li) => [(li as HTMLElement).dataset.model!, Number((li as HTMLElement).dataset.tiles)] as const),
  );
  assert.deepEqual(new Map(planLegend), perModel);
  const svgTiles = await page.$$eval("#plan > g[data-model]", (gs) => gs.map((g) => g.getAttribute("data-model")));
  assert.deepEqual(svgTiles, body.plan.tiles.map((t) => t.model ?? "skipped"));
  const focus = body.plan.glimpses.filter((g) => g.tile);
  const numbers = await page.$$eval("#plan g.glimpse text", (ts) => ts.map((t) => Number(t.textContent)));
  assert.deepEqual(numbers, focus.map((g) => g.step));
  assert.equal(await page.$$eval("#glimpse-legend li", (l) => l.length), body.plan.glimpses.length);
  const coverage = await page.$eval("#plan-notes", (p) => (p as HTMLElement).dataset.coverage);
  assert.equal(coverage, body.plan.coverage ? JSON.stringify(body.plan.coverage) : "");

  // The cost: spent, budget, breakdown as in the JSON; the reference is what
  // the strongest model on the whole image really costs (fixed mode, asked here).
  const cost = await page.evaluate(() => ({
    spent: Number(document.getElementById("cost-spent")!.dataset.gflops),
    spentText: document.getElementById("cost-spent")!.textContent!,
    budget: document.getElementById("cost-budget")!.dataset.gflops!,
    reference: Number(document.getElementById("cost-reference")!.dataset.gflops),
    saved: Number(document.getElementById("cost-saved")!.dataset.share),
    credit: document.getElementById("credit")!.dataset.value!,
    creditText: document.getElementById("credit")!.textContent!,
    rows: [...document.querySelectorAll("#breakdown tbody tr")].map((tr) => [
      (tr as HTMLElement).dataset.model!,
      Number((tr as HTMLElement).dataset.gflops),
    ]),
    total: Number(document.getElementById("timing-total")!.dataset.total),
    timings: [...document.querySelectorAll("#timing-legend li")].map((li) => (li as HTMLElement).dataset.name),
  }));
  assert.equal(cost.spent, body.cost.gflops);
  assert.equal(cost.spent, Number(headers["x-cost-gflops"]));
  assert.ok(cost.spentText.startsWith(body.cost.gflops.toFixed(3).replace(/\.?0+$/, "")), cost.spentText);
  assert.equal(cost.budget, body.budget.gflops === null ? "" : String(body.budget.gflops));
  assert.deepEqual(cost.rows, body.cost.breakdown.map((b) => [b.model, b.gflops]));
  assert.equal(cost.credit, headers["x-credit-remaining-gflops"]);
  assert.ok(cost.creditText.includes("GFLOPs"), cost.creditText);
  const serverTotal = Number(/total;dur=([\d.]+)/.exec(headers["server-timing"])![1]);
  assert.equal(cost.total, serverTotal);
  assert.ok(cost.timings.includes("infer") && cost.timings.includes("decode"), String(cost.timings));

  // The empty-mask warning shows exactly when no foreground pixel came back.
  const empty = body.classes[0] === "background" && counts.slice(1).every((n) => n === 0);
  const warning = await page.$eval("#warning", (w) => ({ hidden: (w as HTMLElement).hidden, text: w.textContent! }));
  assert.equal(!warning.hidden && warning.text.includes("empty"), empty, warning.text);
  return { body, cost, empty };
}

/** What `fixed` mode with the default (strongest) model costs on this image. */
async function fixedCost(server: RunningServer, key: string, task: string, file: URL): Promise<number> {
  const res = await fetch(`${server.url}/v1/segment/${task}`, {
    method: "POST",
    body: await Deno.readFile(file),
    headers: { "content-type": "image/png", "x-mode": "fixed", accept: "image/png", authorization: `Bearer ${key}` },
  });
  await res.body?.cancel();
  assert.equal(res.status, 200);
  return Number(res.headers.get("x-cost-gflops"));
}

/** Writes a JPEG screenshot (small enough to commit) to the screenshots dir. */
async function screenshot(page: Page, name: string, fullPage = true) {
  await page.screenshot({ path: `${shotsDir}/${name}.jpg`, type: "jpeg", quality: 80, fullPage });
}

async function noHorizontalScroll(page: Page, width: number) {
  const scroll = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(scroll <= width, `page is ${scroll} px wide at a ${width} px viewport`);
}

Deno.test({
  name: "demo page in Chromium: every task's mask, plan, cost and credit as in the JSON; errors clear the result",
  ignore: skip,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    assert.ok(haveChromium, `Chromium is required under CI: no executable at ${CHROMIUM}`);
    const admin = "admin-token-for-the-browser-test";
    const server = await testServer({ AUTH: "on", ADMIN_TOKEN: admin, WORKERS: "2" });
    let browser: Browser | null = null;
    try {
      const created = await fetch(`${server.url}/v1/admin/keys`, {
        method: "POST",
        headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "browser", credit_gflops: 500 }),
      });
      assert.equal(created.status, 201);
      const { secret } = await created.json() as { secret: string };
      browser = await puppeteer.launch({
        executablePath: CHROMIUM,
        args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        headless: true,
      });
      const page = await browser.newPage();
      // Generous: CI machines are shared, and a text request may queue behind others.
      page.setDefaultTimeout(90_000);
      const pageErrors: string[] = [];
      page.on("pageerror", (e) => pageErrors.push(String(e)));
      page.on("console", (m) => {
        // The 415/422 answers are logged by Chromium as failed loads; those are expected.
        if (m.type() === "error" && !/status of 4\d\d/.test(m.text())) pageErrors.push(m.text());
      });
      await page.setViewport({ width: 1280, height: 900 });
      await installFetchRecorder(page);
      await page.goto(server.url + "/");
      await page.waitForFunction(() => document.body.dataset.state === "idle");

      // The task list comes from /v1/models; glimpse only where the task has a glance model.
      const models = await (await fetch(`${server.url}/v1/models`)).json();
      const tasks = await page.$$eval("#task option", (os) => os.map((o) => (o as HTMLOptionElement).value));
      assert.deepEqual(tasks, models.tasks.map((t: { name: string }) => t.name));
      for (const task of ["digits", "micrograph", "text"]) {
        await page.select("#task", task);
        const modes = await page.$$eval("#mode option", (os) => os.map((o) => (o as HTMLOptionElement).value));
        const hasGlance = models.tasks.find((t: { name: string }) => t.name === task).models
          .some((m: { role: string }) => m.role === "global");
        assert.equal(modes.includes("glimpse"), hasGlance, `${task}: ${modes}`);
        if (task === "text") assert.ok(!modes.includes("glimpse"));
      }
      // Confidence only for glimpse, the model picker only for fixed.
      await page.select("#task", "digits");
      await page.select("#mode", "glimpse");
      assert.equal(await page.$eval("#confidence-field", (e) => (e as HTMLElement).hidden), false);
      await page.select("#mode", "adaptive");
      assert.equal(await page.$eval("#confidence-field", (e) => (e as HTMLElement).hidden), true);
      assert.equal(await page.$eval("#model-field", (e) => (e as HTMLElement).hidden), true);

      // Without the key: 401, shown as a problem.
      await choose(page, new URL("digits-0.png", examples).pathname, "digits", "adaptive");
      let out = await submit(page);
      assert.equal(out.res.status(), 401);
      assert.equal(out.state, "error");
      // The key is kept in localStorage across reloads.
      await setField(page, "#key", secret);

      const runs = [
        { file: "digits-0.png", task: "digits", mode: "adaptive", extra: { budget: "0.8" } },
        { file: "micrograph-1.png", task: "micrograph", mode: "glimpse", extra: { confidence: "0.95" } },
        { file: "text-0.png", task: "text", mode: "adaptive", extra: {} },
      ];
      for (const run of runs) {
        await choose(page, new URL(run.file, examples).pathname, run.task, run.mode, run.extra);
        out = await submit(page);
        assert.equal(out.state, "done", `${run.task}: ${await page.$eval("#error", (e) => e.textContent)}`);
        const { body, cost } = await checkResult(page, out);
        assert.equal(body.plan.mode, run.mode);
        if (run.mode === "glimpse") assert.ok(body.plan.glimpses.some((g) => g.tile), "glimpse focused some tile");
        if (run.extra.budget) assert.ok(body.cost.gflops <= Number(run.extra.budget));
        const reference = await fixedCost(server, secret, run.task, new URL(run.file, examples));
        assert.ok(Math.abs(cost.reference - reference) / reference < 0.005, `${cost.reference} vs fixed ${reference}`);
        assert.ok(Math.abs(cost.saved - (1 - body.cost.gflops / cost.reference)) < 1e-9);
        await noHorizontalScroll(page, 1280);
        await screenshot(page, `desktop-${run.task}-${run.mode}`);
      }

      // A page that is mostly empty: the text task skips flat tiles, and the page hatches them.
      const sparse = await Deno.makeTempFile({ suffix: ".png" });
      const { image: sparseImage } = await textImage(960, 640, [{ text: "THRIFTSEG", x: 30, y: 40, size: 40 }]);
      await Deno.writeFile(sparse, await sparseImage.encode());
      await choose(page, sparse, "text", "adaptive");
      out = await submit(page);
      assert.equal(out.state, "done");
      const sparseResult = await checkResult(page, out);
      const skipped = sparseResult.body.plan.tiles.filter((t) => t.model === null).length;
      assert.ok(skipped > 0, "flat tiles are skipped");
      assert.equal(
        await page.$$eval('#plan g[data-model="skipped"] rect[fill="url(#hatch)"]', (r) => r.length),
        skipped,
      );
      assert.equal(
        await page.$eval('#plan-legend li[data-model="skipped"]', (li) => (li as HTMLElement).dataset.tiles),
        String(skipped),
      );

      // A very wide image is scaled to fit: no sideways scrolling.
      const wide = await Deno.makeTempFile({ suffix: ".png" });
      await Deno.writeFile(wide, await new Image(1700, 300).fill(0xddddddff).encode());
      await choose(page, wide, "text", "adaptive");
      await page.waitForFunction(() => !(document.getElementById("image") as HTMLImageElement).hidden);
      await noHorizontalScroll(page, 1280);

      // Dropped and pasted images are taken like picked ones.
      const png = Array.from(await Deno.readFile(new URL("digits-2.png", examples)));
      for (const how of ["drop", "paste"]) {
        await page.evaluate(
          (bytes, how) => {
            const data = new DataTransfer();
            data.items.add(new File([new Uint8Array(bytes as number[])], `${how}.png`, { type: "image/png" }));
            const event = how === "drop"
              ? new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true })
              : new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true });
            document.getElementById("drop")!.dispatchEvent(event);
          },
          png,
          how,
        );
        await page.waitForFunction(
          (how) => document.getElementById("file-name")!.textContent!.startsWith(`${how}.png`),
          {},
          how,
        );
        await page.waitForFunction(() => (document.getElementById("image") as HTMLImageElement).naturalWidth === 256);
      }
      await page.select("#task", "digits");
      out = await submit(page);
      assert.equal(out.state, "done");
      await checkResult(page, out);

      // Phone width (a second tab: same origin, so the key comes from localStorage): no
      // horizontal scroll, the 800 px screenshot scaled to fit the screen.
      const phone = await browser.newPage();
      phone.setDefaultTimeout(90_000);
      await phone.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
      await installFetchRecorder(phone);
      await phone.goto(server.url + "/");
      await phone.waitForFunction(() => document.body.dataset.state === "idle");
      assert.equal(await phone.$eval("#key", (k) => (k as HTMLInputElement).value), secret);
      await noHorizontalScroll(phone, 390);
      await choose(phone, new URL("text-0.png", examples).pathname, "text", "adaptive");
      out = await submit(phone);
      assert.equal(out.state, "done");
      await checkResult(phone, out);
      await noHorizontalScroll(phone, 390);
      const stage = await phone.$eval("#stage", (s) => s.getBoundingClientRect().width);
      assert.ok(stage <= 390 - 2 * 8, `stage is ${stage} px wide`);
      await screenshot(phone, "phone-text-adaptive");
      await phone.close();

      // An empty image: the mask comes back empty and the page says so (a blank page has no text, and no ink to run).
      const blank = await Deno.makeTempFile({ suffix: ".png" });
      await Deno.writeFile(blank, await new Image(256, 256).fill(0xffffffff).encode());
      await choose(page, blank, "text", "adaptive");
      out = await submit(page);
      assert.equal(out.state, "done");
      const { empty } = await checkResult(page, out);
      assert.ok(empty, "a blank page has no text");

      // Errors clear the previous result and show the problem's title and detail.
      const txt = await Deno.makeTempFile({ suffix: ".txt" });
      await Deno.writeTextFile(txt, "not an image\n");
      for (const bad of [{ file: txt, budget: "", status: 415 }, { file: blank, budget: "0.001", status: 422 }]) {
        // First a good result, so there is something to clear.
        await choose(page, new URL("digits-1.png", examples).pathname, "digits", "adaptive");
        assert.equal((await submit(page)).state, "done");
        await choose(page, bad.file, "digits", "adaptive", { budget: bad.budget });
        out = await submit(page);
        assert.equal(out.res.status(), bad.status);
        assert.equal(out.state, "error");
        const problem = out.json() as { title: string; detail: string };
        const shown = await page.evaluate(() => ({
          hidden: document.getElementById("error")!.hidden,
          status: document.getElementById("error")!.dataset.status,
          title: document.getElementById("error-title")!.textContent!,
          detail: document.getElementById("error-detail")!.textContent!,
          overlay: (document.getElementById("overlay") as HTMLCanvasElement).width,
          overlayHidden: document.getElementById("overlay")!.hidden,
          tiles: document.querySelectorAll("#plan g").length,
          details: document.getElementById("details")!.hidden,
        }));
        assert.equal(shown.hidden, false);
        assert.equal(shown.status, String(bad.status));
        assert.equal(shown.title, `${bad.status} · ${problem.title}`);
        assert.ok(shown.detail.includes(problem.detail), shown.detail);
        assert.deepEqual([shown.overlay, shown.overlayHidden, shown.tiles, shown.details], [0, true, 0, true]);
      }
      await screenshot(page, "desktop-error-422", false);

      await page.reload();
      await page.waitForFunction(() => document.body.dataset.state === "idle");
      assert.equal(await page.$eval("#key", (k) => (k as HTMLInputElement).value), secret);
      assert.deepEqual(pageErrors, []);
    } finally {
      await browser?.close();
      await server.close();
    }
  },
});
