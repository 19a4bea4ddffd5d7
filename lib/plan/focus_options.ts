// The glance → focus planner's knobs (lib/plan/focus.ts), their defaults, and what each was measured to buy.

import type { InkCoverOptions } from "./ink_cover.ts";

/** Knobs of glance → focus (the ink cover's own: lib/plan/ink_cover.ts). */
export interface FocusOptions extends InkCoverOptions {
  /** Glance probability from which a pixel counts as unsure (below: confidently background). */
  low: number;
  /** Glance probability from which a pixel counts as confidently text (between low and high: unsure). */
  high: number;
  /** Which plan runs without a budget: the full-resolution cover of the ink ("ink"), or glance first ("glance"). */
  unbudgeted: "ink" | "glance";
  /**
   * Under a budget the complete plan does not fit in, the ink cover pooling over the page with the largest of these
   * halos (px, below `pageHalo`) that fits runs instead of a glance (at 0, its windows still see past the sides where
   * text crosses into another: lib/plan/ink_cover.ts `CROSSED_HALO`). Mean IoU vs full resolution at 75 / 60 / 50 / 40
   * / 25 % of its price, [64, 32, 16] → [64, 32, 16, 0]: tuning pages (`render_pages.ts` set `tune`) 0.946 / 0.897 /
   * 0.897 / 0.866 / 0.797 → 0.955 / 0.902 / 0.904 / 0.873 / 0.797; validation 0.971 / 0.924 / 0.925 / 0.895 / 0.829 →
   * 0.971 / 0.934 / 0.925 / 0.895 / 0.829; least IoU unchanged on both (a scratch script over `focusPlanner(model, {
   * budgetHalos })`). Without the crossed sides' halo, a cover at 0 read 0.651 on a 1708×960 validation page where the
   * glance read 0.846. Earlier, [64, 32, 16] instead of none: validation 0.8937 → 0.9045 at 50 %. [64, 48, 32, 24,
   * 16, 8, 0] planned every tuning and validation page as this does at 50 % (windows round up to the model's 32 px
   * multiple); measured again since the squeezed cover (`deno run -A bench/eval/budget_sweep.ts --set
   * tune,val,val2|test --shares 0.5 --plans true --budget-halos 64,48,32,24,16,8,0`): 0.9398 → 0.9399 and 0.9271 →
   * 0.9266 (two test pages at 48 px instead of 32, 0.981 → 0.974 and 0.969 → 0.967). Spending what the budget leaves on
   * the chosen cover's windows, each in turn widened to the next halo (most ink first; a temporary patch): every
   * screenshot set (`--set tune,val,val2,val3,val4,test --shares 0.5,0.75`) 0.9278 / 0.9889 → 0.9287 / 0.9894 but seven
   * pages lower at 50 % (one 0.933 → 0.900) and least 0.911 → 0.883 at 75 %; widened to halos on the 32 px grid only:
   * 0.9287 / 0.9898, least 0.912 at 75 %, still seven pages lower at 50 % (that one 0.933 → 0.910): not kept.
   *
   * Since the squeezed cover (`minSqueeze`) is what runs where no narrower cover fits, measured at 50 % and not kept
   * (`deno run -A bench/eval/budget_sweep.ts --set tune,val,val2|val3,val4,val5|test --shares 0.5 --plans true
   * [--budget-halos 64,32,16]`): without 0 (those pages squeeze instead) 0.9388 / 0.9203 / 0.9268 → 0.9375 / 0.9203 /
   * 0.9244; a least halo of 16 px on every window's top and bottom at every budget halo (a scratch patch: a cover at 0
   * cut into windows one 32 px cell tall loses whole runs of a line whose top and bottom the window ends at) 0.9381 /
   * 0.9202 / 0.9244: the same pages squeeze, no page whose cover still fits changed, and three squeezed at 0 moved by
   * −0.011 to +0.003. Of the 20 pages whose plan changed without 0, the squeeze read better on 6 (a 1280×720 page at
   * 1.5×: 0.779 → 0.913, its cover at 0 13 windows) and worse on 14 (a 1024×700 page: 0.935 → 0.875, 4 windows);
   * neither the cover's window count nor its full-resolution share told them apart.
   */
  budgetHalos: number[];
  /**
   * The per-window costs (px, `windowPixels`) a narrower cover under a budget is cut with, largest first at each of
   * `budgetHalos`: smaller windows skip more blank between blocks of text, so a wider halo fits the same budget. Mean
   * IoU vs full resolution at 50 / 75 % of its price, [65536] → [65536, 16384, 4096] (`deno run -A
   * bench/eval/budget_sweep.ts --set tune,val|val2 --budget-window-pixels 65536`, then without the option): tuning +
   * validation pages 0.9143 / 0.9765 → 0.9191 / 0.9785; second validation pages 0.9199 / 0.9779 → 0.9223 / 0.9806;
   * least IoU unchanged on both. Adding 1024 changed nothing on the tuning and validation pages. Those gains came
   * partly from covers of more windows than a worker keeps page graphs ready for, which a cover may no longer have
   * (lib/plan/focus_budget.ts `narrowerCover`: at 50 %, 0.9382 → 0.9363 over the tuning, validation, second
   * validation and test pages).
   */
  budgetWindowPixels: number[];
  /**
   * Under a budget, the glance keeps full height and shrinks only the width until its horizontal scale reaches this
   * ratio to its vertical one, then shrinks both at that ratio (lib/plan/glance.ts `glancePath`). Chosen on the tuning
   * pages, mean IoU vs full resolution at 25 / 50 / 75 % of its price: 0.6 → 0.797 / 0.880 / 0.926 (`deno task eval
   * --text-only --text-set tune`); 0.5 → 0.809 / 0.856 / 0.926 and 0.72 → 0.781 / 0.883 / 0.921 (the same images and
   * budgets through `focusPlanner(model, { aspect })`, a scratch script). A uniformly shrunk glance of the whole image
   * read 0.632 / 0.764 / 0.888, and the ½ glance plus focus windows 0.464 / 0.757 / 0.866 (the eval command in turn
   * 11: one glance as large as the budget allows sees the whole page; windows see only their own context and pay for
   * their halos).
   */
  aspect: number;
  /**
   * Under a budget no narrower cover fits, the default cover of the image squeezed across (full height) runs instead
   * of a glance while its width keeps at least this share of the image's (lib/plan/squeeze.ts `squeezedCover`);
   * 1: never. It pools over the page as the default does, where a glance on the ink cover's windows pools over each,
   * and keeps the lines' height, which the text detector's map needs more than the characters' width. Mean IoU vs full
   * resolution at 50 / 75 % of its price (`deno run -A bench/eval/budget_sweep.ts --set tune,val|val2 --min-squeeze
   * 1`, then without the option): tuning + validation pages 0.9191 / 0.9785 → 0.9309 / 0.9829 (least 0.826 / 0.891 →
   * 0.826 / 0.923; 25 % unchanged, 0.8137); second validation pages 0.9223 / 0.9806 → 0.9323 / 0.9844. At 50 %, 0.5
   * read 0.9290 on tuning + validation and 0.9319 on the second validation pages, 0.6 0.9299 and 0.9322 (both before
   * the first width tried became 0.97 of the estimate), 0.7 0.9239 (fixed 4 % width steps then). Tried before the
   * narrower covers where it keeps 75 or 85 % of the width: 0.9218 at 50 % (a temporary patch): a narrower halo at
   * full resolution reads better where it fits.
   */
  minSqueeze: number;
  /**
   * Halos (px, below `pageHalo`, tried in this order) of the squeezed cover where the default's (at the page halo)
   * would be narrower than `minSqueeze`: a narrower halo buys a wider squeeze before the plan falls to a glance (the
   * dense phone pages at half their price). Mean / least IoU vs full resolution at 50 % (`deno run -A
   * bench/eval/budget_sweep.ts --set tune,val|val2 --shares 0.25,0.5,0.75 --squeeze-halos ''`, then without the
   * option): tuning + validation pages 0.9309 / 0.826 → 0.9343 / 0.857; second validation pages 0.9323 / 0.826 →
   * 0.9338 / 0.837 (five pages that glanced gain 0.013–0.031, one loses 0.001). At 25 %: 0.8137 → 0.8292 and 0.8212 →
   * 0.8251; 75 % unchanged. [64, 32, 16, 0] at 50 %: 0.9339 / 0.857 and 0.9338 / 0.837. (Measured when these halos
   * ran only where the page halo's squeeze was narrower than `minSqueeze`; now also where they squeeze wider:
   * `squeezeGain`.)
   */
  squeezeHalos: number[];
  /**
   * How many times as wide as the widest before it (the page halo's first, then `squeezeHalos` in turn) a narrower
   * halo's first fitting squeeze must be for its cover to run instead (lib/plan/squeeze.ts `squeezedCover`); Infinity:
   * a narrower halo only where the wider ones fit no squeeze at all. A squeezed page loses more to its width than to
   * its halo: at half its price a dense page squeezed to 0.74 of its width at the page halo reads 0.918 vs full
   * resolution, at 0 px to 0.97 (two windows) 0.962. Mean IoU vs full resolution at 50 % of its price on the 209 tuning
   * and validation screenshots (`deno run -A bench/eval/budget_sweep.ts --set tune,val,val2,val3,val4,val5 --shares 0.5
   * --plans true --squeeze-gain G`): Infinity 0.9218; 1.05: 0.9275, 43 pages better by over 0.002, 3 worse (by up to
   * 0.008). Scratch patches of squeeze.ts, not kept: each halo's squeeze widened before they are compared, at 1 (the
   * widest squeeze) 0.9278 with 14 pages worse (mostly where the narrower halo gained a few % of width), at 1.05 0.9277
   * (44 better, 1 worse), [64, 32, 16, 0] at 1 0.9281, but 40 ms more planning on the mean test and fourth validation
   * screenshot at 50 % (52 → 92 ms natively, scratch `.scratch/budplantime.ts`) where this takes about 30 (`deno run -A
   * bench/eval/plan_time.ts --set test,val4 --share 0.5 [--squeeze-gain Infinity]`, two runs each: mean 46.9 / 42.4 →
   * 77.7 / 72.4 ms, largest 131 / 112 → 211 / 176); the covers' unsqueezed prices compared instead of the squeezes'
   * widths (no more planning) 0.9264 (42 better, 8 worse): a halo's px do not squeeze, so the price ratio misjudges the
   * width. At 25 / 75 % (tuning, validation and second validation pages, the widest squeeze): 0.8280 / 0.9880 → 0.8287
   * / 0.9885. Chosen on those; then on the test screenshots at 50 %: 0.9235 → 0.9302, 6 better, none worse.
   */
  squeezeGain: number;
  /**
   * Threshold of a glance that ran vertically shrunk (its map, scaled back, blurs across each text line's height):
   * 0.5 instead of 0.7 read 0.755 / 0.847 at 25 / 50 % on the tuning pages before glances ran on ink windows, 0.6 /
   * 0.8 read 0.790 / 0.880 and 0.799 / 0.876 after (0.7: 0.797 / 0.880; same scratch script as `aspect`).
   */
  shrunkThreshold: number;
  /**
   * Under a budget, on an image whose ink cover saves nothing (a photo: ink everywhere), the ¼ glance first scouts
   * where text is, focus windows run at full resolution on what it marks (most unsure first; `scoutHalos`,
   * `scoutFocusShare`), and what the budget leaves buys the largest glance of the whole image beside them, which
   * replaces the scout's mask; false: one glance as large as the budget allows, then focus windows with what is left.
   * Below, as first built (the larger glance only where the scout is sure of no text, no `scoutHalos`). Mean IoU vs
   * full resolution at 75 / 50 / 25 % of its price on the tuning and validation photos (`deno run -A
   * bench/eval/budget_sweep.ts --kind photo --set tune,val --shares 0.75,0.5,0.25 --scout-halos '' --scout
   * false|true`): false 0.708 / 0.672 / 0.576 at a mean cost of 72.7 / 48.0 / 23.6 % of full; true 0.749 / 0.700 /
   * 0.642 at 45.8 / 31.5 / 19.3 % (scene text 0.78–0.90 → 0.81–0.96 at 50 %; a circuit board's silkscreen 0.011 → 0,
   * found by neither; the two test photos, boards too, 0.084 / 0.113 → 0.051 / 0.059 in docs/EVAL.md). With the
   * larger glance also where the scout is sure of text: 0.753 / 0.693 / 0.644 at 72.8 / 48.2 / 23.5 % (its false
   * text outside the focus windows: a scene 0.930 → 0.820 at 50 %).
   */
  scout: boolean;
  /**
   * Halos (px, widest first) the scout's focus windows (`scout`) take where it is sure of some text: the widest whose
   * windows over every cell it marked fit their share of the budget; none fitting, the model's halo, the most unsure
   * cells first. Scene text is large: a window at the model's 32 px halo sees too little around a sign. Mean IoU vs
   * full resolution at 75 / 50 / 25 % of its price on the tuning and validation photos, the focus windows taking all
   * that is left (`deno run -A bench/eval/budget_sweep.ts --kind photo --set tune,val --shares 0.75,0.5,0.25
   * --scout-focus-share 1 --scout-halos …`): none 0.749 / 0.700 / 0.642 at a mean cost of 45.8 / 31.5 / 19.3 % of
   * full; 128, 96, 64: 0.772 / 0.723 / 0.662 at 53.6 / 38.3 / 21.4 %; from 256: 0.780 / 0.725 / 0.662 at 64.2 / 43.7 /
   * 21.4 % (the five scenes 0.81–0.96 → 0.92–0.98 at 50 %); from 512: 0.782 / 0.725 / 0.662 at 68.9 / 43.7 / 21.4 %.
   */
  scoutHalos: number[];
  /**
   * Share of what the budget leaves after the scout that its focus windows may take where it is sure of some text;
   * the largest glance of the whole image that fits takes the rest (its mask under theirs). The ¼ scout sees a sign
   * but not a page's small text: a screenshot on a textured background (every cell ink, so it takes this path)
   * needs the larger glance. Mean IoU vs full resolution at 75 / 50 / 25 % on the tuning and validation photos
   * (`deno run -A bench/eval/budget_sweep.ts --kind photo --set tune,val --shares 0.75,0.5,0.25 --scout-focus-share
   * S`), and on a tuning screenshot with ±20 of noise on every channel at 50 / 25 % (the same with `--set tune --kind
   * screenshot --only valgrind-quick-start-desktop@1 --noise 20 --shares 0.5,0.25`): 1 (no larger glance) 0.780 /
   * 0.725 / 0.662, screenshot 0.340 / 0.339; 0.5: 0.775 / 0.724 / 0.625, 0.772 / 0.532; 0.3: 0.773 / 0.711 / 0.597,
   * 0.811 / 0.696; without the scout (one glance as large as the budget allows): 0.708 / 0.672 / 0.576, 0.850 / 0.701.
   */
  scoutFocusShare: number;
  /**
   * Share of what the budget leaves after the scout that its focus windows over every cell it marked may take where no
   * halo of `scoutHalos` fits `scoutFocusShare`: at the widest of those halos or the model's that fits this. A sign
   * covered whole at full resolution reads better than its most unsure blocks beside a larger glance. Mean IoU vs full
   * resolution at 25 / 50 / 75 % on the tuning and validation photos (`deno run -A bench/eval/budget_sweep.ts --kind
   * photo --set tune,val --shares 0.25,0.5,0.75 --scout-complete-share S`): 0.3 (as `scoutFocusShare`: no such step)
   * 0.542 / 0.673 / 0.781; at the model's halo only, 0.45, 0.6 and 0.8 alike 0.547 / 0.724 / 0.781 (at 50 %, three
   * scenes 0.515 / 0.891 / 0.888 → 0.961 / 0.935 / 0.956); at the widest halo that fits, 0.6: 0.547 / 0.726 / 0.783
   * (those scenes 0.965 / 0.942 / 0.966, and at 75 % two of them 0.935 / 0.956 → 0.946 / 0.969). Unchanged at 0.6:
   * the textured tuning screenshot (`scoutFocusShare`'s command), 0.850 / 0.701, and the test photos, 0.051 / 0.059 at
   * 50 % (a circuit board's silkscreen, which the scout does not mark).
   *
   * Where the scout is blind (it marks nothing it is sure of: the boards, text_defocus and a scene among them), measured
   * and not kept (`… --kind photo --set tune,val,test --shares 0.25,0.5,0.75`, 13 photos, against 0.4665 / 0.6225 /
   * 0.7023 mean IoU): the larger glance first, on what is left less a reserve of 0.3 / 0.5 of it, then focus windows
   * with the reserve on the cells it ranks highest (its highest probability per cell; a scratch patch of focus.ts):
   * 0.4165 / 0.6112 / 0.6655 and 0.3725 / 0.6048 / 0.6277 (text_defocus 0.698 → 0.590 at 50 %, the boards no better:
   * at a board the larger glance's probabilities hold little of the text in their top cells, and full-resolution
   * windows pooling alone drift from the whole image's mask there). A lower threshold for the vertically shrunk glance
   * on photos (0.5 / 0.3 / 0.15) moved the mean by under 0.01 (test boards 0.051 → 0.059–0.071 at 50 %); the glance
   * shrunk both ways alike (`--aspect 1` / `0.8`): 0.4138 / 0.5868 / 0.6692 and 0.4576 / 0.6245 / 0.6868, four to
   * seven photos lower at each share. So shrunk only where the scout is blind (a scratch patch of focus.ts: the larger
   * glance's path at that aspect; `… --set tune,val,val2,val3,val4,val5,test --shares 0.75,0.5,0.25`, 13 photos,
   * against 0.7023 / 0.6228 / 0.4665): 1 → 0.6693 / 0.6063 / 0.3987, 0.8 → 0.6869 / 0.6332 / 0.4374 (at 50 % the
   * test boards 0.051 / 0.059 → 0.097 / 0.119, at 25 % text_defocus 0.549 → 0.176: no aspect is better at every share).
   * Nor does writing the glance's pixels above half its highest probability where the plan's mask would be empty:
   * where full resolution finds text and the plan none, text_motion at 50 and 25 % and the tuning board at 25 %, that
   * highest probability is below 0.0001; the board at 50 % (0.079) reads 0.003.
   */
  scoutCompleteShare: number;
}

/**
 * Defaults for {@link FocusOptions}, chosen on the tuning images of bench/eval/render_pages.ts (the page halo also on
 * the validation images): a large per-window cost (few, large windows), because a window that pools alone (the
 * budgeted paths) sees only its own image-wide context, so many small windows drift from the whole-image mask.
 */
export const DEFAULT_FOCUS_OPTIONS: FocusOptions = {
  low: 0.05,
  high: 0.7,
  inkRange: 8,
  // Three 256² windows' worth: fewer windows, so fewer sides inside the page, whose frame the pools leave out
  // (lib/onnx/page.ts `POOL_EDGE`). Default vs full resolution (`deno run -A bench/eval/budget_sweep.ts --set
  // val3|test|val4 --shares 1`), 256² → 3 · 256² without the blank strips: least IoU 0.956 / 0.984 / 0.972 → 0.963 /
  // 0.985 / 0.984, mean cost 64.8 / 65.8 / 67.7 → 65.9 / 66.4 / 68.6 %; with them, see lib/onnx/page.ts. Measured
  // and not kept, with the strips (`… --set val3,val4,test --shares 1 --plans true --window-pixels P`, then `--set
  // tune,val,val2,val5`): 6 · 256² cut 163 → 142 windows on those 122 screenshots, mean IoU 0.9975 → 0.9982, least
  // 0.975 unchanged, mean cost 65.8 → 66.7 %; 12 · 256² 126 windows, 0.9988, least 0.988, 68.0 % (the other four sets:
  // least 0.986 → 0.991, cost 64.6 → 67.4 %): 2–3 points of the 70 % line for a least IoU already past 0.97. What
  // fewer windows save in time could not be told apart from the machine's noise (the same plan read up to 40 % apart
  // between runs of one process, a scratch script's paired runs).
  windowPixels: 3 * 256 * 256,
  unbudgeted: "ink",
  budgetHalos: [64, 32, 16, 0],
  budgetWindowPixels: [256 * 256, 128 * 128, 64 * 64],
  pooling: "page",
  pageHalo: 96,
  crossedHalo: 160,
  tailCell: 8,
  tailLineRun: 8,
  tailGap: 48,
  tailGrow: 4,
  aspect: 0.6,
  minSqueeze: 0.6,
  squeezeHalos: [32, 0],
  squeezeGain: 1.05,
  shrunkThreshold: 0.7,
  scout: true,
  scoutHalos: [256, 192, 128, 96, 64],
  scoutFocusShare: 0.3,
  scoutCompleteShare: 0.6,
};
