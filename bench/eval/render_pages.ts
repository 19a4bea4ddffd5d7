// The `text` task's evaluation images, as a user would send them: screenshots of real HTML documentation (pages every
// Debian system ships under /usr/share/doc) taken with Debian's headless Chromium at phone, laptop and desktop window
// sizes and device scale factors, plus photos. Pages are split by page (never the same page in both sets) into a tuning
// set (the planner's constants were chosen on it), validation sets (for choices the sets before them no longer told
// apart: the halo of windows pooling over the page; their halo where a cut runs through text; a third of pages in
// another style, the Rust toolchain's docs; a fourth to check a choice made on the third; a fifth at window sizes none of
// the others has) and a test set (the numbers in docs/EVAL.md).
// Images are cached under data/text-eval/ (gitignored); a rerun renders only what is missing.
//
//   deno run -A bench/eval/render_pages.ts        (needs `apt-get install -y chromium`; the tuning and validation
//                                                  photos: `apt-get install -y opencv-doc`)

const ROOT = new URL("../../", import.meta.url);

/** A window size and device scale factor a page is shown at. */
export interface View {
  name: string;
  width: number;
  height: number;
  dpr: number;
}

/** Phones at 2× and 3×, laptops at 1× and 1.25×, desktops at 1× and 1.25×. */
export const VIEWS: View[] = [
  { name: "phone@2", width: 390, height: 844, dpr: 2 },
  { name: "laptop@1", width: 1366, height: 768, dpr: 1 },
  { name: "desktop@1", width: 1920, height: 1080, dpr: 1 },
  { name: "phone@3", width: 390, height: 844, dpr: 3 },
  { name: "laptop@1.25", width: 1366, height: 768, dpr: 1.25 },
  { name: "desktop@1.25", width: 1920, height: 1080, dpr: 1.25 },
];

const DOC = "/usr/share/doc/";
/** Pages of the tuning set. */
const TUNE_PAGES = [
  "base-passwd/users-and-groups.html",
  "nodejs/api/path.html",
  "valgrind/html/quick-start.html",
  "bzip2/manual.html",
  "libffi8/html/Closure-Example.html",
];
/** Pages of the validation set. */
const VAL_PAGES = [
  "libgfortran5/NEWS.html",
  "libffi-dev/html/Types.html",
  "libxslt1-dev/html/APIchunk0.html",
  "nodejs/api/buffer.html",
  "valgrind/html/manual-core-adv.html",
  "nodejs/api/cluster.html",
];
/**
 * Pages of the second validation set, added when the first two no longer told choices apart: on these the default's
 * least IoU vs full resolution fell to 0.958 (a cover whose cut ran through a paragraph's lines), where the tuning and
 * validation pages read 0.991 and 0.983 (lib/plan/ink_cover.ts `crossedHalo`).
 */
const VAL2_PAGES = [
  "libxslt1-dev/html/FAQ.html",
  "libjs-underscore/index.html",
  "nettle-dev/nettle.html",
  "gcc-12-base/NEWS.html",
  "ocl-icd-libopencl1/html/libOpenCL.html",
  "xtrans-dev/xtrans.html",
  "shared-mime-info/shared-mime-info-spec.html/x34.html",
  "nodejs/api/crypto.html",
  "nodejs/api/http.html",
  "nodejs/api/errors.html",
  "nodejs/api/url.html",
  "valgrind/html/cg-manual.html",
  "valgrind/html/FAQ.html",
  "nodejs/api/events.html",
];
/** Pages of the test set. */
const TEST_PAGES = [
  "python3/python-policy.html",
  "nodejs/api/fs.html",
  "valgrind/html/mc-manual.html",
  "ninja-build/manual.html",
  "libarmadillo11/docs.html",
  "libexpat1-dev/expat.html/reference.html",
  "zlib1g-dev/examples/zlib_how.html",
  "bc/bc.html",
  "time/time.html",
  "fontconfig/fontconfig-user.html",
];
/** Photos with text in them that a Rust toolchain ships (its embedded book: a board and its silkscreen). */
const PHOTOS = ["f3.jpg", "verify.jpeg"];
const RUST_DOC = "share/doc/rust/html/";
const PHOTO_DIR = `${RUST_DOC}embedded-book/assets/`;
/**
 * Pages of the third validation set, in other styles: the Rust toolchain's own books (mdBook) and API pages (rustdoc),
 * paths under its share/doc/rust/html/, and OpenCV's Doxygen pages (`apt-get install -y opencv-doc`, see
 * {@link OPENCV_PAGES}). On the Rust pages the default's least IoU vs full resolution reads 0.935 (mean 0.990, 2 of 24
 * below 0.97; `deno run -A bench/eval/budget_sweep.ts --set val3 --shares 1`) where the sets above read ≥ 0.97: windows
 * pooling over pages with wide blank margins drift. `POOL_EDGE` (lib/onnx/page.ts) was chosen on them (before it:
 * 0.921, mean 0.985, 5 of 24 below 0.97).
 */
const RUST_PAGES = [
  "book/ch04-01-what-is-ownership.html",
  "reference/expressions.html",
  "nomicon/ownership.html",
  "rust-by-example/hello.html",
  "cargo/guide/index.html",
  "std/vec/struct.Vec.html",
  "std/index.html",
  "core/option/enum.Option.html",
  "embedded-book/intro/index.html",
  "edition-guide/introduction.html",
  "error_codes/E0382.html",
  "releases.html",
];
/**
 * OpenCV's Doxygen pages of the third validation set (under /usr/share/doc/): tutorials, class and module references.
 * Their page's margins are a faint texture (channels 238–255), which the ink test (`inkRange` 8) reads as ink.
 */
const OPENCV_PAGES = [
  "d2/d2c/tutorial_sobel_derivatives.html",
  "d5/d98/tutorial_mat_operations.html",
  "d2/d0b/tutorial_periodic_noise_removing_filter.html",
  "d0/d1e/classcv_1_1plot_1_1Plot2d.html",
  "df/d6c/classcv_1_1Point3__.html",
  "d2/de8/group__core__array.html",
].map((p) => `opencv-doc/opencv4/html/${p}`);

/**
 * Pages of a fourth validation set, each at all six views: pages in no other set, half of them in the third set's
 * styles (mdBook, rustdoc: paths under the Rust toolchain's share/doc/rust/html/), rendered after `POOL_EDGE`
 * (lib/onnx/page.ts) was chosen on the third, to check it on pages no choice saw: the default's IoU vs full
 * resolution reads mean 0.9949, least 0.972 (`deno run -A bench/eval/budget_sweep.ts --set val4 --shares 1`; with
 * `POOL_EDGE` 0: 0.9930, least 0.943, four below 0.97).
 */
const VAL4_PAGES = [
  "nodejs/api/stream.html",
  "nodejs/api/process.html",
  "valgrind/html/hg-manual.html",
  "valgrind/html/dh-manual.html",
  "libxslt1-dev/html/APIchunk10.html",
];
const VAL4_RUST_PAGES = [
  "book/ch08-02-strings.html",
  "reference/items.html",
  "cargo/reference/manifest.html",
  "rust-by-example/primitives.html",
  "embedded-book/start/qemu.html",
  "std/string/struct.String.html",
];

/**
 * Window sizes and scale factors none of {@link VIEWS} has, the fifth validation set's: the two screenshot sizes
 * issue #15 was measured on (563×398, 1629×927), a small laptop, a tablet-ish window, a scaled 1280×720, a tall
 * Android phone and a 1280×800 laptop.
 */
export const OTHER_VIEWS: View[] = [
  { name: "563x398@1", width: 563, height: 398, dpr: 1 },
  { name: "800x600@1", width: 800, height: 600, dpr: 1 },
  { name: "1024x700@1", width: 1024, height: 700, dpr: 1 },
  { name: "1280x720@1.5", width: 1280, height: 720, dpr: 1.5 },
  { name: "1629x927@1", width: 1629, height: 927, dpr: 1 },
  { name: "412x915@2.625", width: 412, height: 915, dpr: 2.625 },
  { name: "1280x800@1", width: 1280, height: 800, dpr: 1 },
];
/**
 * Pages of a fifth validation set, each at all of {@link OTHER_VIEWS}: pages in no other set at sizes no other set
 * has, rendered after every choice, as a check of the default on the shapes a user sends.
 */
const VAL5_PAGES = [
  "nodejs/api/dns.html",
  "nodejs/api/console.html",
  "nodejs/api/dgram.html",
  "libxslt1-dev/html/xsltproc.html",
  "libxslt1-dev/html/internals.html",
  "libxslt1-dev/html/tutorial/libxslttutorial.html",
  "libffi8/html/The-Basics.html",
  "shared-mime-info/shared-mime-info-spec.html/index.html",
];

/** Where a file of the Rust toolchain's docs is on this machine: under the first installed toolchain (stable first). */
function toolchainFile(path: string): string | undefined {
  const root = `${Deno.env.get("RUSTUP_HOME") ?? `${Deno.env.get("HOME") ?? "/root"}/.rustup`}/toolchains/`;
  let toolchains: string[] = [];
  try {
    toolchains = [...Deno.readDirSync(root)].map((e) => e.name).sort((a, b) =>
      Number(b.startsWith("stable")) - Number(a.startsWith("stable")) || a.localeCompare(b)
    );
  } catch {
    // No rustup here: no photos, no Rust pages (the report says how many images it ran on).
  }
  return toolchains.map((t) => `${root}${t}/${path}`).find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
}

/**
 * Photos with text for the tuning and validation sets (the test set's are the toolchain's above): scene text, a
 * circuit board, a page photographed askew, blurred text, from Debian's opencv-doc package (`apt-get install -y
 * opencv-doc`), paths under /usr/share/doc/opencv-doc/examples/. Where it is missing, the sets have no photos.
 */
const OPENCV_PHOTOS: Record<"tune" | "val", string[]> = {
  tune: [
    "text/scenetext01.jpg",
    "text/scenetext03.jpg",
    "text/scenetext05.jpg",
    "data/board.jpg",
    "data/imageTextN.png",
    "data/text_defocus.jpg",
  ],
  val: [
    "text/scenetext02.jpg",
    "text/scenetext04.jpg",
    "text/scenetext06.jpg",
    "data/imageTextR.png",
    "data/text_motion.jpg",
  ],
};
const OPENCV_DIR = `${DOC}opencv-doc/examples/`;

/** The sets of evaluation images: tuning, validation (five), test. */
export type TextSet = "tune" | "val" | "val2" | "val3" | "val4" | "val5" | "test";

/** One evaluation image. */
export interface EvalImage {
  name: string;
  set: TextSet;
  kind: "screenshot" | "photo";
  path: string;
  /** The page or photo it shows. */
  source: string;
}

export const DIR = new URL("data/text-eval/", ROOT);

/**
 * Every image of every set: each page at two views (i-th page: views i and i+3 of {@link VIEWS}), the fourth
 * validation set's at all six, the fifth's at all of {@link OTHER_VIEWS}.
 */
export function evalImages(): EvalImage[] {
  const out: EvalImage[] = [];
  const pages = (list: string[], set: EvalImage["set"], root = DOC, prefix = "") =>
    list.forEach((page, i) => {
      const views = set === "val5" ? OTHER_VIEWS : set === "val4" ? VIEWS : [VIEWS[i % 6], VIEWS[(i + 3) % 6]];
      for (const v of views) {
        const file = page.split("/").at(-1)!.replace(/\.html$/, "");
        const name = `${prefix}${page.includes("/") ? `${page.split("/")[0]}-` : ""}${file}-${v.name}`;
        out.push({ name, set, kind: "screenshot", path: new URL(`${name}.png`, DIR).pathname, source: root + page });
      }
    });
  const photos = (set: "tune" | "val") =>
    OPENCV_PHOTOS[set].forEach((p) => {
      const path = OPENCV_DIR + p, name = `photo-${p.split("/").at(-1)}`;
      out.push({ name, set, kind: "photo", path, source: path });
    });
  pages(TUNE_PAGES, "tune");
  photos("tune");
  out.push({
    name: "example-text-0",
    set: "tune",
    kind: "screenshot",
    path: new URL("docs/examples/text-0.png", ROOT).pathname,
    source: "docs/examples/text-0.png",
  });
  pages(VAL_PAGES, "val");
  photos("val");
  pages(VAL2_PAGES, "val2");
  const rustRoot = toolchainFile(`${RUST_DOC}index.html`)?.replace(/index\.html$/, "");
  if (rustRoot) pages(RUST_PAGES, "val3", rustRoot, "rust-");
  pages(OPENCV_PAGES, "val3");
  pages(VAL4_PAGES, "val4");
  if (rustRoot) pages(VAL4_RUST_PAGES, "val4", rustRoot, "rust-");
  pages(VAL5_PAGES, "val5");
  pages(TEST_PAGES, "test");
  for (const p of PHOTOS.map((name) => toolchainFile(PHOTO_DIR + name)).filter((p) => p !== undefined)) {
    out.push({ name: `photo-${p.split("/").at(-1)}`, set: "test", kind: "photo", path: p, source: p });
  }
  return out;
}

/** The view an image name was rendered at. */
function viewOf(name: string): View {
  return [...VIEWS, ...OTHER_VIEWS].find((v) => name.endsWith(`-${v.name}`))!;
}

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

/** Renders the screenshots that are missing (of `names` only, where given); returns the images whose file exists. */
export async function renderMissing(
  chromium = Deno.env.get("CHROMIUM") ?? "/usr/bin/chromium",
  names?: string[],
): Promise<EvalImage[]> {
  await Deno.mkdir(DIR, { recursive: true });
  const ready: EvalImage[] = [];
  for (const img of evalImages().filter((i) => !names || names.includes(i.name))) {
    if (!(await exists(img.path)) && img.kind === "screenshot" && (await exists(img.source))) {
      const v = viewOf(img.name);
      const out = await new Deno.Command(chromium, {
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--hide-scrollbars",
          `--window-size=${v.width},${v.height}`,
          `--force-device-scale-factor=${v.dpr}`,
          `--screenshot=${img.path}`,
          `file://${img.source}`,
        ],
        stdout: "null",
        stderr: "null",
      }).output().catch((e) => {
        throw new Error(`cannot run ${chromium} (apt-get install -y chromium): ${e.message}`);
      });
      if (!out.success) console.error(`[render] ${img.name}: chromium exited with ${out.code}`);
      else console.log(`[render] ${img.name}`);
    }
    if (await exists(img.path)) ready.push(img);
    else console.error(`[render] ${img.name}: missing (${img.source})`);
  }
  return ready;
}

if (import.meta.main) {
  const ready = await renderMissing();
  console.log(`${ready.length} images in ${DIR.pathname}`);
}
