"""Run an exported zoo model (models/*.onnx) in PyTorch, for work that starts from the served files.

The committed zoo was trained on a GPU machine whose checkpoints are not kept;
the ONNX files are the source of truth. Stages that need the zoo's outputs
after the fact (refitting the routing critic on the served tile geometry,
`refit_critic.py`) load the graphs here. Only the operators our exporter emits
for UNets and the routing policy are supported (Conv, ConvTranspose, Relu,
MaxPool, AveragePool, Pad, Concat, Constant); anything else is an error, not a
silent guess. BatchNorm is already folded into the convolutions by the export.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _sym_pad(pads: list[int]) -> int:
    half = len(pads) // 2
    if pads[:half] != pads[half:] or len(set(pads)) > 1:
        raise ValueError(f"asymmetric pads {pads} are not supported")
    return pads[0]


class OnnxGraph(nn.Module):
    """A torch module that evaluates one ONNX graph node by node (weights are frozen parameters)."""

    def __init__(self, path: Path):
        super().__init__()
        m = onnx.load(str(path))
        self.names: dict[str, str] = {}
        self.params = nn.ParameterDict()
        consts: dict[str, np.ndarray] = {}
        for i, init in enumerate(m.graph.initializer):
            key = f"p{i}"
            self.names[init.name] = key
            self.params[key] = nn.Parameter(torch.from_numpy(numpy_helper.to_array(init).copy()), requires_grad=False)
        self.nodes = []
        for node in m.graph.node:
            a = _attrs(node)
            if node.op_type == "Constant":
                consts[node.output[0]] = numpy_helper.to_array(a["value"])
                continue
            if node.op_type not in {"Conv", "ConvTranspose", "Relu", "MaxPool", "AveragePool", "Pad", "Concat"}:
                raise ValueError(f"{path.name}: unsupported operator {node.op_type}")
            if node.op_type == "Pad":
                if a.get("mode", b"constant") != b"constant" or np.any(consts.get(node.input[1], 1) != 0):
                    raise ValueError(f"{path.name}: only the exporter's zero Pad is supported")
            self.nodes.append((node.op_type, list(node.input), node.output[0], a))
        self.inputs = [i.name for i in m.graph.input if i.name not in self.names]
        self.outputs = [o.name for o in m.graph.output]
        # UNets need H, W multiples of 2^(number of poolings)
        self.multiple = 2 ** sum(1 for n in self.nodes if n[0] == "MaxPool")

    def forward(self, x: torch.Tensor):
        env = {self.inputs[0]: x}

        def get(name):
            return self.params[self.names[name]] if name in self.names else env[name]

        for op, ins, out, a in self.nodes:
            if op == "Conv":
                env[out] = F.conv2d(get(ins[0]), get(ins[1]), get(ins[2]) if len(ins) > 2 else None,
                                    stride=a["strides"], padding=_sym_pad(a["pads"]), dilation=a["dilations"],
                                    groups=a["group"])
            elif op == "ConvTranspose":
                env[out] = F.conv_transpose2d(get(ins[0]), get(ins[1]), get(ins[2]) if len(ins) > 2 else None,
                                              stride=a["strides"], padding=_sym_pad(a.get("pads", [0] * 4)))
            elif op == "Relu":
                env[out] = F.relu(get(ins[0]))
            elif op == "MaxPool":
                env[out] = F.max_pool2d(get(ins[0]), a["kernel_shape"], a["strides"], _sym_pad(a.get("pads", [0] * 4)))
            elif op == "AveragePool":
                env[out] = F.avg_pool2d(get(ins[0]), a["kernel_shape"], a["strides"], _sym_pad(a.get("pads", [0] * 4)))
            elif op == "Pad":  # zero pads of zero width (the exporter's no-op before AveragePool)
                env[out] = get(ins[0])
            elif op == "Concat":
                env[out] = torch.cat([get(n) for n in ins], dim=a["axis"])
        res = [env[o] for o in self.outputs]
        return res[0] if len(res) == 1 else tuple(res)


def load(path: Path) -> OnnxGraph:
    g = OnnxGraph(path)
    g.eval()
    return g


def policy_state(path: Path) -> dict[str, torch.Tensor]:
    """The routing policy's weights by module name (the exporter keeps them: actor.*, critic.*)."""
    m = onnx.load(str(path))
    return {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in m.graph.initializer}
