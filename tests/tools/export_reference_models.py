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

It also exports a tiny U-Net with dynamic N/H/W (opset 17), whose skip
connection is padded by F.pad from computed size differences and whose head
resizes to a size computed from the input shape: the Shape/Gather/Sub/Div/
ConstantOfShape/Pad subgraphs PyTorch emits for that. Its expected output
shapes and MACs at a few input shapes are measured in PyTorch (forward hooks
on every convolution) and written next to it as unet_dynamic.expected.json.

Usage (Debian python3-torch 1.13, python3-torchvision 0.14, python3-onnx):
    /usr/bin/python3 tests/tools/export_reference_models.py [out_dir]
"""

import io
import sys
from pathlib import Path

import json

import onnx
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

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


class TinyUNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inc = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.down = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU())
        self.up = nn.ConvTranspose2d(32, 16, 2, stride=2)
        self.fuse = nn.Sequential(nn.Conv2d(32, 16, 3, padding=1, groups=2), nn.ReLU())
        self.head = nn.Conv2d(16, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.inc(x)
        b = self.up(self.down(a))
        dy = a.size(2) - b.size(2)
        dx = a.size(3) - b.size(3)
        b = F.pad(b, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        y = self.head(self.fuse(torch.cat([a, b], dim=1)))
        y = F.interpolate(y, size=(x.shape[2] * 2, x.shape[3] // 2), mode="bilinear", align_corners=False)
        return torch.softmax(y, dim=1)


UNET_SHAPES = [(1, 3, 64, 64), (2, 3, 45, 61), (1, 3, 33, 100)]


def conv_macs(model: nn.Module, shape: tuple) -> tuple:
    """MACs of every (transposed) convolution in one forward pass, by hooks."""
    total = [0]

    def hook(mod, inputs, out):
        if isinstance(mod, nn.ConvTranspose2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            total[0] += inputs[0].numel() * (mod.out_channels // mod.groups) * k
        elif isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            total[0] += out.numel() * (mod.in_channels // mod.groups) * k

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        out = model(torch.randn(*shape))
    for h in handles:
        h.remove()
    return total[0], list(out.shape)


def export_unet(out_dir: Path) -> None:
    torch.manual_seed(0)
    model = TinyUNet().eval()
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            model,
            torch.randn(*UNET_SHAPES[1]),
            buf,
            opset_version=17,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "N", 2: "H", 3: "W"}, "y": {0: "N", 2: "H2", 3: "W2"}},
        )
    onnx_model = onnx.load_from_string(buf.getvalue())
    n = strip(onnx_model)
    onnx_model.doc_string = "tiny U-Net with dynamic N/H/W (written by tests/tools/export_reference_models.py)"
    path = out_dir / "unet_dynamic.nodata.onnx"
    path.write_bytes(onnx_model.SerializeToString())
    expected = []
    for shape in UNET_SHAPES:
        macs, out_shape = conv_macs(model, shape)
        expected.append({"input": list(shape), "output": out_shape, "convMacs": macs})
    meta = {"source": "tests/tools/export_reference_models.py", "torch": torch.__version__, "shapes": expected}
    (out_dir / "unet_dynamic.expected.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"{path}: {path.stat().st_size} bytes, {len(onnx_model.graph.node)} nodes, {n} tensors stripped")


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
    export_unet(out_dir)


if __name__ == "__main__":
    main()
