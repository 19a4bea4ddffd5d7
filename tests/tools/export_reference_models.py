#!/usr/bin/env python3
"""Writes the reference-model fixtures of the ONNX FLOP counter tests.

Exports torchvision resnet18 and mobilenet_v2 (random weights; the weights do
not change MACs) at 1x3x224x224 with torch.onnx.export, then strips the
payload of every large initializer so each file is tens of KB instead of
tens of MB. Name, dims and data_type stay, which is all a cost counter needs.
Small tensors keep their data: after constant folding they can be the int64
shape vectors that Reshape and friends read.

Published figures the tests compare against (torchvision model cards; thop and
ptflops agree): resnet18 1.814 GMACs, mobilenet_v2 0.300 GMACs.

Usage (Debian python3-torch 1.13, python3-torchvision 0.14, python3-onnx):
    /usr/bin/python3 tests/tools/export_reference_models.py [out_dir]
"""

import io
import sys
from pathlib import Path

import onnx
import torch
import torchvision

OPSET = 13
SHAPE = (1, 3, 224, 224)
# Tensors with more elements than this lose their data; shape vectors are tiny.
KEEP_DATA_MAX_ELEMENTS = 64

MODELS = {
    "resnet18": torchvision.models.resnet18,
    "mobilenet_v2": torchvision.models.mobilenet_v2,
}


def export(build) -> onnx.ModelProto:
    torch.manual_seed(0)
    model = build(weights=None).eval()
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            model,
            torch.randn(*SHAPE),
            buf,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["logits"],
            do_constant_folding=True,
        )
    return onnx.load_from_string(buf.getvalue())


def strip(model: onnx.ModelProto) -> int:
    stripped = 0
    tensors = list(model.graph.initializer)
    tensors += [a.t for n in model.graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
    for t in tensors:
        count = 1
        for d in t.dims:
            count *= d
        if count <= KEEP_DATA_MAX_ELEMENTS:
            continue
        for field in ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data"):
            t.ClearField(field)
        stripped += 1
    return stripped


def main() -> None:
    default = Path(__file__).resolve().parents[1] / "fixtures" / "onnx"
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, build in MODELS.items():
        model = export(build)
        n = strip(model)
        model.doc_string = (
            f"torchvision {torchvision.__version__} {name}, random weights, input {SHAPE}, opset {OPSET}; "
            f"data of {n} tensors with more than {KEEP_DATA_MAX_ELEMENTS} elements stripped "
            "(written by tests/tools/export_reference_models.py)"
        )
        path = out_dir / f"{name}.nodata.onnx"
        path.write_bytes(model.SerializeToString())
        print(f"{path}: {path.stat().st_size} bytes, {len(model.graph.node)} nodes, {n} tensors stripped")


if __name__ == "__main__":
    main()
