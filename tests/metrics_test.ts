import assert from "node:assert/strict";
import { DEFAULT_LATENCY_BUCKETS, MetricsError, MetricsRegistry } from "../lib/metrics/mod.ts";
import { parseExposition, parseValue } from "./_prom.ts";

Deno.test("counter with labels renders exactly, series sorted by label values", () => {
  const m = new MetricsRegistry();
  const c = m.counter("thriftseg_requests_total", "Requests served, by route and status.", ["route", "status"]);
  c.inc({ route: "/v1/segment", status: "200" });
  c.inc({ route: "/v1/segment", status: "503" });
  c.inc({ status: "200", route: "/v1/segment" }, 2);
  c.inc({ route: "/healthz", status: "200" }, 0.5);
  assert.equal(
    m.render(),
    "# HELP thriftseg_requests_total Requests served, by route and status.\n" +
      "# TYPE thriftseg_requests_total counter\n" +
      'thriftseg_requests_total{route="/healthz",status="200"} 0.5\n' +
      'thriftseg_requests_total{route="/v1/segment",status="200"} 3\n' +
      'thriftseg_requests_total{route="/v1/segment",status="503"} 1\n',
  );
  assert.equal(c.get({ route: "/v1/segment", status: "200" }), 3);
  assert.equal(c.get({ route: "/nowhere", status: "200" }), 0);
});

Deno.test("histogram buckets are cumulative; _sum and _count include an observation above the last bucket", () => {
  const m = new MetricsRegistry();
  const h = m.histogram("thriftseg_infer_seconds", "Model run time.", ["model"], [0.1, 0.5, 1]);
  for (const v of [0.05, 0.1, 0.3, 2.5]) h.observe({ model: "unet" }, v);
  h.observe({ model: "ocr" }, 0.7);
  const sum = 0.05 + 0.1 + 0.3 + 2.5;
  assert.equal(
    m.render(),
    "# HELP thriftseg_infer_seconds Model run time.\n" +
      "# TYPE thriftseg_infer_seconds histogram\n" +
      'thriftseg_infer_seconds_bucket{model="ocr",le="0.1"} 0\n' +
      'thriftseg_infer_seconds_bucket{model="ocr",le="0.5"} 0\n' +
      'thriftseg_infer_seconds_bucket{model="ocr",le="1"} 1\n' +
      'thriftseg_infer_seconds_bucket{model="ocr",le="+Inf"} 1\n' +
      'thriftseg_infer_seconds_sum{model="ocr"} 0.7\n' +
      'thriftseg_infer_seconds_count{model="ocr"} 1\n' +
      // 0.1 sits exactly on a bound: le means "less than or equal".
      'thriftseg_infer_seconds_bucket{model="unet",le="0.1"} 2\n' +
      'thriftseg_infer_seconds_bucket{model="unet",le="0.5"} 3\n' +
      'thriftseg_infer_seconds_bucket{model="unet",le="1"} 3\n' +
      'thriftseg_infer_seconds_bucket{model="unet",le="+Inf"} 4\n' +
      `thriftseg_infer_seconds_sum{model="unet"} ${sum}\n` +
      'thriftseg_infer_seconds_count{model="unet"} 4\n',
  );
});

Deno.test("default buckets span 5 ms to 60 s and render with +Inf", () => {
  assert.equal(DEFAULT_LATENCY_BUCKETS[0], 0.005);
  assert.equal(DEFAULT_LATENCY_BUCKETS.at(-1), 60);
  const m = new MetricsRegistry();
  m.histogram("latency_seconds", "Latency.").observe(undefined, 0.02);
  const les = parseExposition(m.render()).get("latency_seconds")!.samples
    .filter((s) => s.name === "latency_seconds_bucket")
    .map((s) => s.labels.le);
  assert.deepEqual(les, [...DEFAULT_LATENCY_BUCKETS.map(String), "+Inf"]);
  assert.equal(les[0], "0.005");
});

Deno.test("label values escape backslash, quote and newline; HELP escapes backslash and newline", () => {
  const m = new MetricsRegistry();
  m.counter("files_total", 'Files seen; path like C:\\tmp, "quoted"\nsecond line.', ["path"])
    .inc({ path: 'C:\\dir "x"\nnext' });
  assert.equal(
    m.render(),
    '# HELP files_total Files seen; path like C:\\\\tmp, "quoted"\\nsecond line.\n' +
      "# TYPE files_total counter\n" +
      'files_total{path="C:\\\\dir \\"x\\"\\nnext"} 1\n',
  );
});

Deno.test("collect callbacks run at every render, in order, before samples are written", () => {
  const m = new MetricsRegistry();
  const depth = m.gauge("queue_depth", "Jobs waiting.");
  const queue: number[] = [1, 2, 3];
  const order: string[] = [];
  m.collect(() => {
    order.push("first");
    depth.set(undefined, queue.length);
  });
  m.collect(() => order.push("second"));
  assert.match(m.render(), /^queue_depth 3$/m);
  queue.push(4, 5);
  assert.match(m.render(), /^queue_depth 5$/m);
  assert.deepEqual(order, ["first", "second", "first", "second"]);
});

Deno.test("bad metric and label names throw a MetricsError naming the problem", () => {
  const m = new MetricsRegistry();
  for (const bad of ["", "1abc", "a-b", "a b", "ünïcode"]) {
    assert.throws(() => m.counter(bad, "x"), { name: "MetricsError", message: /invalid metric name/ }, bad);
  }
  assert.doesNotThrow(() => m.gauge("ns:sub_metric", "Colons are legal in metric names."));
  for (const bad of ["1a", "a-b", "a:b", ""]) {
    assert.throws(() => m.counter("c_total", "x", [bad]), { name: "MetricsError", message: /invalid label name/ }, bad);
  }
  assert.throws(() => m.counter("c_total", "x", ["__name"]), { message: /reserved/ });
  assert.throws(() => m.counter("c_total", "x", ["a", "a"]), { message: /declared twice/ });
  assert.throws(() => m.histogram("h_seconds", "x", ["le"]), { message: /"le" is reserved/ });
});

Deno.test("missing, extra and non-string labels throw; nothing is recorded", () => {
  const m = new MetricsRegistry();
  const c = m.counter("requests_total", "Requests.", ["route", "status"]);
  assert.throws(() => c.inc({ route: "/a" }), { name: "MetricsError", message: /missing label "status"/ });
  assert.throws(() => c.inc(), { message: /missing label "route"/ });
  assert.throws(
    () => c.inc({ route: "/a", status: "200", extra: "x" }),
    { message: /unexpected label "extra".*route, status/ },
  );
  assert.throws(
    () => c.inc({ route: "/a", status: 200 as unknown as string }),
    { message: /"status" must be a string/ },
  );
  const g = m.gauge("up", "Up.");
  assert.throws(() => g.set({ instance: "x" }, 1), { message: /unexpected label "instance" \(declared: none\)/ });
  const h = m.histogram("h_seconds", "H.", ["model"]);
  assert.throws(() => h.observe(undefined, 1), { message: /missing label "model"/ });
  assert.equal(
    m.render(),
    "# HELP requests_total Requests.\n# TYPE requests_total counter\n" +
      "# HELP up Up.\n# TYPE up gauge\nup 0\n" +
      "# HELP h_seconds H.\n# TYPE h_seconds histogram\n",
  );
});

Deno.test("registering a name again returns the same metric, or throws when type, labels or buckets differ", () => {
  const m = new MetricsRegistry();
  const a = m.counter("jobs_total", "Jobs.", ["kind"]);
  const b = m.counter("jobs_total", "Jobs.", ["kind"]);
  assert.equal(a, b);
  b.inc({ kind: "x" });
  assert.equal(a.get({ kind: "x" }), 1);
  assert.throws(() => m.gauge("jobs_total", "Jobs."), {
    name: "MetricsError",
    message: /already registered as a counter/,
  });
  assert.throws(() => m.counter("jobs_total", "Jobs."), { message: /already registered with labels \[kind\]/ });
  assert.throws(() => m.counter("jobs_total", "Jobs.", ["other"]), { message: /labels/ });

  const h = m.histogram("t_seconds", "T.", [], [1, 2]);
  assert.equal(m.histogram("t_seconds", "T.", [], [1, 2, Infinity]), h);
  assert.throws(() => m.histogram("t_seconds", "T.", [], [1, 3]), { message: /buckets/ });
  // A histogram writes t_seconds_sum, so nothing else may claim that name, in either order.
  assert.throws(() => m.gauge("t_seconds_sum", "Clash."), { message: /already written by "t_seconds"/ });
  m.counter("q_count", "Q.");
  assert.throws(() => m.histogram("q", "Q."), { message: /"q_count" is already written by "q_count"/ });
  assert.equal((m.render().match(/^# TYPE /gm) ?? []).length, 3);
});

Deno.test("counter refuses to go down or take NaN; histogram refuses NaN; gauges go both ways", () => {
  const m = new MetricsRegistry();
  const c = m.counter("c_total", "C.");
  c.inc(undefined, 2);
  assert.throws(() => c.inc(undefined, -1), { name: "MetricsError", message: /only goes up/ });
  assert.throws(() => c.inc(undefined, NaN), { message: /only goes up/ });
  assert.equal(c.get(), 2);
  assert.throws(() => m.histogram("h_seconds", "H.").observe(undefined, NaN), { message: /NaN/ });

  const g = m.gauge("g", "G.", ["pool"]);
  g.inc({ pool: "a" });
  g.inc({ pool: "a" }, 4);
  g.dec({ pool: "a" }, 1.5);
  g.dec({ pool: "b" });
  assert.equal(g.get({ pool: "a" }), 3.5);
  assert.equal(g.get({ pool: "b" }), -1);
  g.set({ pool: "a" }, 10);
  assert.equal(g.get({ pool: "a" }), 10);
});

Deno.test("numbers: integers plain, floats at full precision, +Inf/-Inf/NaN spelled the Prometheus way", () => {
  const m = new MetricsRegistry();
  const g = m.gauge("v", "Values.", ["k"]);
  const cases: [string, number, string][] = [
    ["a_int", 42, "42"],
    ["b_float", 0.1 + 0.2, "0.30000000000000004"],
    ["c_neg", -3.5, "-3.5"],
    ["d_big", 1e21, "1e+21"],
    ["e_inf", Infinity, "+Inf"],
    ["f_ninf", -Infinity, "-Inf"],
    ["g_nan", NaN, "NaN"],
    ["h_negzero", -0, "0"],
  ];
  for (const [k, v] of cases) g.set({ k }, v);
  const samples = m.render().split("\n").filter((l) => l.startsWith("v{"));
  assert.deepEqual(samples, cases.map(([k, , text]) => `v{k="${k}"} ${text}`));
});

Deno.test("unlabeled metrics render zero from the start; labeled ones with no series render HELP/TYPE only", () => {
  const m = new MetricsRegistry();
  assert.equal(m.render(), "");
  assert.equal(m.contentType, "text/plain; version=0.0.4; charset=utf-8");
  m.counter("a_total", "A.");
  m.histogram("b_seconds", "B.", [], [1]);
  m.gauge("c", "C.", ["x"]);
  assert.equal(
    m.render(),
    "# HELP a_total A.\n# TYPE a_total counter\na_total 0\n" +
      "# HELP b_seconds B.\n# TYPE b_seconds histogram\n" +
      'b_seconds_bucket{le="1"} 0\nb_seconds_bucket{le="+Inf"} 0\nb_seconds_sum 0\nb_seconds_count 0\n' +
      "# HELP c C.\n# TYPE c gauge\n",
  );
});

Deno.test("bucket bounds must be finite and strictly increasing", () => {
  const m = new MetricsRegistry();
  assert.throws(() => m.histogram("a", "A.", [], [1, 0.5]), { name: "MetricsError", message: /strictly increasing/ });
  assert.throws(() => m.histogram("b", "B.", [], [1, 1]), { message: /strictly increasing/ });
  assert.throws(() => m.histogram("c", "C.", [], [NaN]), { message: /finite/ });
  assert.throws(() => m.histogram("d", "D.", [], [-Infinity, 1]), { message: /finite/ });
  assert.doesNotThrow(() => m.histogram("e", "E.", [], []).observe(undefined, 3));
  assert.match(m.render(), /^e_bucket\{le="\+Inf"\} 1$/m);
});

Deno.test("parse-back: every sample reads back (name, labels, value) under its own HELP and TYPE", () => {
  const m = new MetricsRegistry();
  const requests = m.counter("thriftseg_requests_total", "Requests.\nBy route.", ["route", "status"]);
  const odd = 'we\\ird "v"\nalue,}={';
  requests.inc({ route: odd, status: "200" }, 7);
  requests.inc({ route: "/v1/segment", status: "429" });
  const up = m.counter("thriftseg_boot_total", "Boots.");
  up.inc();
  const gauge = m.gauge("thriftseg_value", "Odd values.", ["k"]);
  gauge.set({ k: "inf" }, Infinity);
  gauge.set({ k: "nan" }, NaN);
  gauge.set({ k: "small" }, 1.5e-7);
  const latency = m.histogram("thriftseg_request_seconds", "Latency.", ["route"]);
  const observed = [0.001, 0.2, 0.2, 3, 120];
  for (const v of observed) latency.observe({ route: "/v1/segment" }, v);
  latency.observe({ route: odd }, 0.04);
  m.collect(() => gauge.set({ k: "live" }, 9));

  const families = parseExposition(m.render());
  assert.deepEqual([...families.keys()], [
    "thriftseg_requests_total",
    "thriftseg_boot_total",
    "thriftseg_value",
    "thriftseg_request_seconds",
  ]);
  assert.equal(families.get("thriftseg_requests_total")!.help, "Requests.\nBy route.");
  assert.deepEqual(families.get("thriftseg_requests_total")!.samples, [
    { name: "thriftseg_requests_total", labels: { route: "/v1/segment", status: "429" }, value: 1 },
    { name: "thriftseg_requests_total", labels: { route: odd, status: "200" }, value: 7 },
  ]);
  assert.deepEqual(families.get("thriftseg_boot_total")!.samples, [
    { name: "thriftseg_boot_total", labels: {}, value: 1 },
  ]);
  const values = new Map(families.get("thriftseg_value")!.samples.map((s) => [s.labels.k, s.value]));
  assert.equal(values.get("inf"), Infinity);
  assert.ok(Number.isNaN(values.get("nan")));
  assert.equal(values.get("small"), 1.5e-7);
  assert.equal(values.get("live"), 9);

  const hist = families.get("thriftseg_request_seconds")!;
  assert.equal(hist.type, "histogram");
  for (const route of ["/v1/segment", odd]) {
    const mine = hist.samples.filter((s) => s.labels.route === route);
    const buckets = mine.filter((s) => s.name.endsWith("_bucket"));
    assert.equal(buckets.length, DEFAULT_LATENCY_BUCKETS.length + 1);
    const les = buckets.map((s) => parseValue(s.labels.le));
    for (let i = 1; i < buckets.length; i++) {
      assert.ok(les[i] > les[i - 1], "le strictly increasing");
      assert.ok(buckets[i].value >= buckets[i - 1].value, "bucket counts cumulative");
    }
    assert.equal(les.at(-1), Infinity);
    const count = mine.find((s) => s.name.endsWith("_count"))!.value;
    assert.equal(buckets.at(-1)!.value, count, "+Inf bucket equals _count");
  }
  const main = hist.samples.filter((s) => s.labels.route === "/v1/segment");
  const bucket = (le: string) => main.find((s) => s.labels.le === le)!.value;
  assert.equal(bucket("0.005"), 1);
  assert.equal(bucket("0.25"), 3);
  assert.equal(bucket("60"), 4);
  assert.equal(bucket("+Inf"), 5);
  assert.equal(main.find((s) => s.name.endsWith("_sum"))!.value, observed.reduce((a, b) => a + b, 0));
  assert.equal(main.find((s) => s.name.endsWith("_count"))!.value, 5);
});

Deno.test("parse-back catches a sample without HELP/TYPE (the checker itself can fail)", () => {
  assert.throws(() => parseExposition("orphan 1\n"), /outside its family's block/);
  assert.throws(() => parseExposition("# TYPE x counter\nx 1\n"), /without a HELP/);
  assert.throws(() => parseExposition('# HELP x X.\n# TYPE x counter\nx{a="b\\q"} 1\n'), /bad escape/);
  assert.throws(() => parseExposition("# HELP x X.\n# TYPE x counter\nx 1"), /newline/);
});

// MetricsError is exported so callers can tell a wiring mistake from anything else.
Deno.test("MetricsError is an Error subclass", () => {
  const e = new MetricsError("boom");
  assert.ok(e instanceof Error);
  assert.equal(e.name, "MetricsError");
});
