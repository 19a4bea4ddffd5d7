#!/usr/bin/env python3
"""Export a task's zoo to ONNX, price it, train + export its routing policy,
measure everything on the held-out test split, and write the generated
artefacts:

  models/<task>-{f0,f1,f2,policy}.onnx
  models/manifest.json            (merged: entries of other tasks are kept as they are)
  docs/MODELS.md                  (generated from the manifest)
  tests/training/fixtures/*.json  (PyTorch outputs for the Deno parity test)

    python3 training/export.py --task digits --task micrograph

FLOPs come from thriftseg's own ONNX counter (training/flops.ts → lib/onnx).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data  # noqa: E402
import models  # noqa: E402
import policy as routing  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OPSET = 17
LAMBDAS = [0.01, 0.0125, 0.015, 0.0165, 0.018, 0.02]

FEATURES_HOW = (
    "Run f0 on the whole image (zero-padded at the bottom/right to f0's input multiple, logits cropped back "
    "to H×W). Per pixel, p = softmax over the C class logits; channel 0 = argmax_c p / (C−1) (ties: the lowest "
    "class index), channel 1 = −Σ_c p_c·ln p_c / ln C (0·ln 0 = 0). Then zero-pad both channels at the "
    "bottom/right to multiples of {tile}: input [1, 2, ceil(H/{tile})·{tile}, ceil(W/{tile})·{tile}]."
)
GAIN_UNITS = (
    "first-order change of the dataset-level mIoU if every tile gained like this one (a tile's ΔIoU "
    "contribution × number of tiles); additive over tiles, so only ratios to FLOPs matter for ranking"
)
ROUTE = "no budget: per tile, the argmax of `actions` (ties: the lower action index)"
RANKING = (
    "with a budget B (FLOPs): left = B − FLOPs(f0, whole image) − FLOPs(policy). Per-tile cost of an action "
    "c_a = FLOPs of its model on one {win}×{win} window ({tile} px tile + {halo} px halo; k windows in one batch "
    "cost k·c_a), c_keep = 0. Per tile with predicted gains g1, g2 (channels 1, 2 of `gain`): if g1 > 0 and "
    "g1/c1 > g2/c2, offer the step keep→f1 at ratio g1/c1 and, when g2 > g1, the step f1→f2 at ratio "
    "(g2−g1)/(c2−c1); otherwise offer keep→f2 at ratio g2/c2 when g2 > 0. Sort all steps of all tiles by "
    "ratio, highest first (ties: lower tile index ty·gw+tx first, then keep→… before f1→f2); walk the list and "
    "take a step when its tile is still in the step's starting state and its extra FLOPs fit in `left` "
    "(then subtract them). Tiles left in `keep` keep f0's mask. Reference: training/policy.py plan_under_budget"
)

DESCRIPTIONS = {
    "f0": "global tiny UNet, run on the whole image",
    "f1": "local medium UNet, run on haloed tiles",
    "f2": "local large UNet, run on haloed tiles",
    "policy": "PaSeR routing policy: per tile, keep f0 / run f1 / run f2 (REINFORCE actor), plus predicted gains (critic)",
}


def log(msg: str) -> None:
    print(msg, flush=True)


def load_checkpoint(task: str, name: str, runs: Path):
    """The trained weights and how far training got (final.pt if finished, else last.pt)."""
    n_classes = len(data.TASKS[task]["classes"])
    d = runs / f"{task}-{name}"
    path = d / "final.pt" if (d / "final.pt").exists() else d / "last.pt"
    state = torch.load(path, map_location="cpu")
    model = models.build(task, name, n_classes, state.get("widths"))
    model.load_state_dict(state["model"])
    model.eval()
    info = {"steps": state["step"], "seconds": round(state["elapsed"]), "finished": path.name == "final.pt"}
    for k in ("batch", "crop", "device"):
        if k in state:
            info[k] = state[k]
    return model, info


def export_onnx(model, path: Path, kind: str) -> None:
    model.eval()
    if kind == "policy":
        dummy = torch.zeros(1, 2, 128, 128)
        names, outs = ["features"], ["actions", "gain"]
    else:
        dummy = torch.zeros(1, 1, 64, 64)
        names, outs = ["input"], ["logits"]
    axes = {n: {0: "N", 2: "H", 3: "W"} for n in names + outs}
    tmp = path.with_suffix(".tmp")
    torch.onnx.export(
        model, dummy, str(tmp), opset_version=OPSET, input_names=names, output_names=outs,
        dynamic_axes=axes, do_constant_folding=True,
    )
    import onnx

    m = onnx.load(str(tmp))
    onnx.checker.check_model(m)
    # Strip the exporter's producer version so identical weights give identical bytes everywhere.
    m.producer_version = ""
    m.doc_string = ""
    onnx.save(m, str(tmp))
    tmp.replace(path)


def count_flops(items: list[tuple[Path, list[int]]]) -> list[dict]:
    """[(onnx file, shape)] → counter results, via training/flops.ts (lib/onnx)."""
    deno = os.environ.get("DENO") or shutil.which("deno") or str(ROOT / ".tools/node_modules/.bin/deno")
    args = [f"{p}={'x'.join(map(str, s))}" for p, s in items]
    out = subprocess.run(
        [deno, "run", "--quiet", "--allow-read", str(HERE / "flops.ts"), *args],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    res = json.loads(out)
    return [res[a] for a in args]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def b64(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode()}


@torch.no_grad()
def write_fixture(path: Path, model_id: str, model, x: np.ndarray, out_names: list[str]) -> None:
    """A few inputs and PyTorch's outputs, for tests/training/parity_test.ts."""
    model.eval()
    ys = model(torch.from_numpy(x))
    ys = ys if isinstance(ys, tuple) else (ys,)
    fx = {"model": model_id, "input": b64(x), "outputs": {n: b64(y.numpy()) for n, y in zip(out_names, ys)}}
    path.write_text(dump_json(fx) + "\n")


def r4(x: float) -> float:
    return round(float(x), 4)


def export_task(task: str, args) -> tuple[dict, list[dict]]:
    t_start = time.time()
    spec = data.TASKS[task]
    zoo_cfg = models.ZOO[task]
    tile, halo = zoo_cfg["tile"], zoo_cfg["halo"]
    H, W = spec["height"], spec["width"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    zoo, info = {}, {}
    for name in ["f0", "f1", "f2"]:
        zoo[name], info[name] = load_checkpoint(task, name, Path(args.runs))
        export_onnx(zoo[name], out / f"{task}-{name}.onnx", "unet")
    win = tile + 2 * halo
    shapes = {
        "f0": [1, 1, H, W],
        "f1": [1, 1, win, win],
        "f2": [1, 1, win, win],
    }
    costs = count_flops(
        [(out / f"{task}-{n}.onnx", s) for n, s in shapes.items()]
        + [(out / f"{task}-{n}.onnx", [1, 1, H, W]) for n in ["f1", "f2"]]
    )
    cost = dict(zip(shapes, costs[:3]))
    whole = {"f1": costs[3], "f2": costs[4]}
    log(f"[{task}] FLOPs: " + ", ".join(f"{k} {v['gflops']:.4f} GFLOPs @ {shapes[k]}" for k, v in cost.items()))

    # Held-out test split: every model as it is served (f0 whole image, f1/f2 on haloed tiles).
    t = time.time()
    test_d = routing.routing_data(task, zoo, "test", data.TEST_SEED, args.test_scenes, tile, halo, log=log)
    test_miou = {n: routing.mask_miou(test_d, i) for i, n in enumerate(["f0", "f1", "f2"])}
    from evaluate import miou, predict_full

    test_images, _ = data.test_set(task, args.test_scenes)
    f2_whole_miou = miou(predict_full(zoo["f2"], test_images).argmax(1), test_d["labels"], len(spec["classes"]))
    del test_images
    log(f"[{task}] f2 on whole test images (no tiles): mIoU {f2_whole_miou:.4f}")
    log(f"[{task}] test mIoU ({args.test_scenes} scenes): "
        + ", ".join(f"{k} {v:.4f}" for k, v in test_miou.items()) + f" ({time.time() - t:.0f}s)")

    # Policy: costs from the ONNX graphs, normalised by f2's per-tile cost.
    per_tile = [0.0, cost["f1"]["flops"], cost["f2"]["flops"]]
    action_cost = np.array([c / per_tile[2] for c in per_tile], np.float32)
    train_d = routing.routing_data(task, zoo, "train", 11, args.policy_scenes, tile, halo, log=log)
    val_d = routing.routing_data(task, zoo, "val", 12, args.val_scenes, tile, halo, log=log)
    pol_shape = [1, 2, -(-H // tile) * tile, -(-W // tile) * tile]
    # Price the policy before it is trained: its cost does not depend on its weights.
    export_onnx(models.RoutingPolicy(tile), out / f"{task}-policy.onnx", "policy")
    pol_cost = count_flops([(out / f"{task}-policy.onnx", pol_shape)])[0]
    tps = routing.tiles_per_scene(task)
    frac_of = routing.flops_fraction(cost["f0"]["flops"], pol_cost["flops"], per_tile, tps)
    (lam, _, _, pol), sweep = routing.select_lambda(task, train_d, val_d, action_cost, frac_of, args.lambdas, log=log)
    export_onnx(pol, out / f"{task}-policy.onnx", "policy")
    actions = routing.route(pol, test_d)
    routed_miou, counts = routing.routed_result(test_d, actions, tile)
    frac = frac_of(counts, args.test_scenes)
    f2_everywhere = tps * per_tile[2]
    frac_whole = (frac * f2_everywhere) / whole["f2"]["flops"]
    log(f"[{task}] policy λ={lam}: routed test mIoU {routed_miou:.4f} vs f2 {test_miou['f2']:.4f} "
        f"at {frac:.1%} of f2-on-every-tile FLOPs ({frac_whole:.1%} of f2 on the whole image); actions {counts.tolist()}")
    budget_curve = []
    for b in args.budgets:
        m, spent = budget_routing(pol, test_d, per_tile, b * f2_everywhere - cost["f0"]["flops"] - pol_cost["flops"], tile)
        budget_curve.append({"budget_fraction": b, "test_miou": r4(m), "spent_fraction": r4(
            (spent + cost["f0"]["flops"] + pol_cost["flops"]) / f2_everywhere)})
    log(f"[{task}] value-per-FLOP ranking under a budget: {budget_curve}")

    # Fixtures for the parity test: real pixels, small shapes, two in a batch.
    fix_dir = Path(args.fixtures)
    fix_dir.mkdir(parents=True, exist_ok=True)
    img, _ = data.scene(task, "test", data.TEST_SEED, 0)
    crops = np.stack([img[40:56, 40:64], img[100:116, 120:144]])[:, None].astype(np.float32)
    for name in ["f0", "f1", "f2"]:
        write_fixture(fix_dir / f"{task}-{name}.json", f"{task}-{name}", zoo[name], crops, ["logits"])
    write_fixture(fix_dir / f"{task}-policy.json", f"{task}-policy", pol,
                  test_d["features"][:1, :, :64, :128].copy(), ["actions", "gain"])

    entries = []
    for name in ["f0", "f1", "f2", "policy"]:
        f = out / f"{task}-{name}.onnx"
        m = pol if name == "policy" else zoo[name]
        c = pol_cost if name == "policy" else cost[name]
        e = {
            "id": f"{task}-{name}",
            "task": task,
            "role": {"f0": "global", "policy": "policy"}.get(name, "local"),
            "description": DESCRIPTIONS[name],
            "file": f.name,
            "sha256": sha256(f),
            "input": {"channels": 2 if name == "policy" else 1,
                      "multiple": tile if name == "policy" else m.multiple, "channel_order": "grey"},
            "output": {"kind": "logits"},
        }
        if name == "f0":
            e["reference_shape"] = shapes["f0"]
        elif name == "policy":
            e["tile"] = {"size": tile, "halo": 0}
            e["reference_shape"] = pol_shape
        else:
            e["tile"] = {"size": tile, "halo": halo}
            e["reference_shape"] = shapes[name]
        e["params"] = models.n_params(m)
        e["gflops_reference"] = round(c["gflops"], 6)
        e["gmacs_reference"] = round(c["gmacs"], 6)
        if name == "policy":
            e["test_miou"] = r4(routed_miou)
            gh, gw = pol_shape[2] // tile, pol_shape[3] // tile
            e["policy"] = {
                "inputs": [{"name": "features", "dtype": "float32", "shape": ["N", 2, "H", "W"],
                            "note": f"H, W = the image's height and width rounded up to multiples of {tile}"}],
                "outputs": [
                    {"name": "actions", "dtype": "float32", "shape": ["N", 3, f"H/{tile}", f"W/{tile}"],
                     "note": "actor logits over `actions` per tile; argmax = the trained route"},
                    {"name": "gain", "dtype": "float32", "shape": ["N", 3, f"H/{tile}", f"W/{tile}"],
                     "note": "critic: predicted gain of each action over keeping f0 per tile; channel 0 ≈ 0"},
                ],
                "features": ["f0 argmax / (C-1)", "f0 per-pixel entropy / ln C"],
                "feature_computation": FEATURES_HOW.format(tile=tile),
                "feature_resolution": "full resolution in; the graph's first op averages 4×4 blocks",
                "tile": tile,
                "local_halo": halo,
                "grid": f"output cell (ty, tx) is the tile of rows {tile}·ty … {tile}·ty+{tile - 1} and columns "
                        f"{tile}·tx … {tile}·tx+{tile - 1} ({gh}×{gw} cells at the reference size)",
                "actions": [{"action": "keep", "model": f"{task}-f0"},
                            {"action": "f1", "model": f"{task}-f1"},
                            {"action": "f2", "model": f"{task}-f2"}],
                "action_gflops_per_tile": [0.0, round(cost["f1"]["gflops"], 6), round(cost["f2"]["gflops"], 6)],
                "action_window": shapes["f1"],
                "action_cost": [r4(v) for v in action_cost],
                "gain_units": GAIN_UNITS,
                "route": ROUTE,
                "ranking": RANKING.format(tile=tile, halo=halo, win=tile + 2 * halo),
                "lambda": lam,
                "lambda_sweep": [{"lambda": l_, "val_miou": r4(m_), "flops_fraction": r4(f_)} for l_, m_, f_ in sweep],
                "test": {
                    "scenes": args.test_scenes, "seed": data.TEST_SEED,
                    "routed_miou": r4(routed_miou), "f2_everywhere_miou": r4(test_miou["f2"]),
                    "f2_whole_image_miou": r4(f2_whole_miou),
                    "f1_everywhere_miou": r4(test_miou["f1"]),
                    "f0_miou": r4(test_miou["f0"]),
                    "flops_fraction_of_f2_tiles": r4(frac), "flops_fraction_of_f2_whole_image": r4(frac_whole),
                    "action_counts": {a: int(k) for a, k in zip(models.ACTIONS, counts)},
                    "budget_curve": budget_curve,
                },
            }
        else:
            e["test_miou"] = r4(test_miou[name])
            if name != "f0":
                e["gflops_whole_image"] = round(whole[name]["gflops"], 6)
            e["widths"] = m.widths
        e["test_set"] = {"scenes": args.test_scenes, "seed": data.TEST_SEED, "split": "test"}
        e["training"] = info.get(name, {"policy_scenes": args.policy_scenes, "lambda": lam})
        entries.append(e)
    log(f"[{task}] exported in {time.time() - t_start:.0f}s")
    task_entry = {"classes": spec["classes"], "channels": 1, "reference": {"width": W, "height": H}, "selector": "policy"}
    return task_entry, entries


@torch.no_grad()
def budget_routing(pol, d: dict, per_tile: list[float], budget: float, tile: int):
    """Per scene: spend `budget` FLOPs with the planner's rule (policy.plan_under_budget); dataset mIoU."""
    pol.eval()
    _, g = pol(torch.from_numpy(d["features"]))
    g = g.numpy()  # [n, 3, gh, gw]
    plans = [routing.plan_under_budget(g[i], per_tile, budget) for i in range(len(g))]
    actions = np.stack([p[0] for p in plans])
    m, _ = routing.routed_result(d, actions, tile)
    return m, float(np.mean([p[1] for p in plans]))


def dump_json(v, indent: int = 0) -> str:
    """JSON in the manifest's hand-readable style: scalar arrays and flat objects on one line."""
    pad = "  " * (indent + 1)
    flat = lambda x: not isinstance(x, (dict, list))  # noqa: E731
    if isinstance(v, list):
        if all(flat(x) for x in v):
            return "[" + ", ".join(json.dumps(x, ensure_ascii=False) for x in v) + "]"
        return "[\n" + ",\n".join(pad + dump_json(x, indent + 1) for x in v) + "\n" + "  " * indent + "]"
    if isinstance(v, dict):
        items = [f"{json.dumps(k)}: {dump_json(x, indent + 1)}" for k, x in v.items()]
        if v and all(flat(x) for x in v.values()) and sum(len(i) for i in items) < 80:
            return "{ " + ", ".join(items) + " }"
        if not v:
            return "{}"
        return "{\n" + ",\n".join(pad + i for i in items) + "\n" + "  " * indent + "}"
    return json.dumps(v, ensure_ascii=False)


def deno_fmt(paths: list[Path]) -> None:
    """Leaves generated files as `deno fmt` would (the repo's formatter is the judge)."""
    deno = os.environ.get("DENO") or shutil.which("deno") or str(ROOT / ".tools/node_modules/.bin/deno")
    subprocess.run([deno, "fmt", "--quiet", *map(str, paths)], cwd=ROOT, check=True)


def write_manifest(path: Path, tasks: dict, entries: list[dict]) -> dict:
    manifest = json.loads(path.read_text()) if path.exists() else {"version": 1, "tasks": {}, "models": []}
    for t, e in tasks.items():
        manifest["tasks"][t] = e
    manifest["models"] = [m for m in manifest["models"] if m["task"] not in tasks] + entries
    order = {t: i for i, t in enumerate(manifest["tasks"])}
    manifest["models"].sort(key=lambda m: order.get(m["task"], 99))  # stable: keeps order within a task
    path.write_text(dump_json(manifest) + "\n")
    return manifest


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", action="append", choices=sorted(data.TASKS), help="repeat for several (default: all)")
    ap.add_argument("--runs", default=str(HERE / "runs"))
    ap.add_argument("--out", default=str(ROOT / "models"))
    ap.add_argument("--manifest", help="default: <out>/manifest.json")
    ap.add_argument("--docs", default=str(ROOT / "docs" / "MODELS.md"))
    ap.add_argument("--fixtures", default=str(ROOT / "tests" / "training" / "fixtures"))
    ap.add_argument("--test-scenes", type=int, default=data.TEST_SCENES)
    ap.add_argument("--policy-scenes", type=int, default=400)
    ap.add_argument("--val-scenes", type=int, default=150)
    ap.add_argument("--lambdas", type=float, nargs="+", default=LAMBDAS)
    ap.add_argument("--budgets", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.4, 0.6])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    tasks, entries = {}, []
    for task in args.task or sorted(data.TASKS):
        tasks[task], e = export_task(task, args)
        entries += e
    manifest_path = Path(args.manifest) if args.manifest else Path(args.out) / "manifest.json"
    manifest = write_manifest(manifest_path, tasks, entries)
    import model_card

    Path(args.docs).write_text(model_card.render(manifest))
    deno_fmt([manifest_path, Path(args.docs), Path(args.fixtures)])
    log(f"wrote {manifest_path} and {args.docs}")


if __name__ == "__main__":
    main()
