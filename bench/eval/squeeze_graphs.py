"""Edits of the PP-OCRv4 detector for bench/eval/squeeze.ts (the text eval's diagnosis of windowed drift).

taps.onnx:  the same graph with every squeeze-excitation pooled vector (GlobalAveragePool output) as an extra output.
fed.onnx:   the same graph with every GlobalAveragePool removed and its output made a graph input, so a window can run
            with the pooled vectors of another run (the whole image, or a downscaled glance).
bpad.onnx:  fed.onnx whose padded convolutions pad their input with a per-channel value b_<input> instead of zeros on
            the sides `sides` flags ([4]: top, left, bottom, right; 1 = the page goes on there, 0 = the image's border,
            zeros as the whole-image run has): a window edge that faces blank page sees what lies far inside it.
blank.onnx: fed.onnx with every convolution's kernel summed over space (1x1, no padding): on a 1x1 input of one colour
            it outputs the value each padded convolution's input takes far inside a page of that colour (the b_ above;
            the same construction as the served blank graph of lib/onnx/levels.ts).
(The served page graphs are spliced in TypeScript: lib/onnx/levels.ts, lib/onnx/page.ts.)

Usage: /usr/bin/python3 bench/eval/squeeze_graphs.py MODEL.onnx OUT_DIR   (Debian's python3-onnx)
"""
import copy
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def const(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


def blank_padded(fed, padded):
    """fed.onnx with each padded Conv reading Pad(x - b) + b * (page mask) and no padding of its own."""
    g = copy.deepcopy(fed)
    g.graph.input.append(helper.make_tensor_value_info("sides", TensorProto.FLOAT, [4]))
    g.graph.initializer.extend(const(f"bp_i{k}", [k]) for k in range(5))
    nodes = [helper.make_node("Slice", ["sides", f"bp_i{k}", f"bp_i{k + 1}"], [f"bp_side{k}"]) for k in range(4)]
    one = numpy_helper.from_array(np.array([1.0], np.float32))
    values = []
    for n in fed.graph.node:
        if n.name not in padded:
            nodes.append(n)
            continue
        top, left, bottom, right = attrs(n)["pads"]
        x, t = n.input[0], f"bp{len(nodes)}"
        b = f"b_{x}"
        if b not in values:
            values.append(b)
            g.graph.input.append(helper.make_tensor_value_info(b, TensorProto.FLOAT, [1, None, 1, 1]))
        g.graph.initializer.extend([
            const(f"{t}_pads", [0, 0, top, left, 0, 0, bottom, right]),
            *(const(f"{t}_p{k}", [p]) for k, p in enumerate([top, left, bottom, right])),
            const(f"{t}_rows_shape", [1, 1, -1, 1]),
            const(f"{t}_cols_shape", [1, 1, 1, -1]),
        ])
        # 1 where the padded map lies on the page (inside, or a band on a flagged side), 0 beyond the image's border.
        axis = lambda k, ones, before, after, shape: [
            helper.make_node("Slice", [f"{t}_shape", f"bp_i{k}", f"bp_i{k + 1}"], [f"{t}_n{k}"]),
            helper.make_node("ConstantOfShape", [f"{t}_n{k}"], [ones], value=one),
            helper.make_node("Expand", [f"bp_side{before}", f"{t}_p{before}"], [f"{ones}_b"]),
            helper.make_node("Expand", [f"bp_side{after}", f"{t}_p{after}"], [f"{ones}_a"]),
            helper.make_node("Concat", [f"{ones}_b", ones, f"{ones}_a"], [f"{ones}_c"], axis=0),
            helper.make_node("Reshape", [f"{ones}_c", shape], [f"{ones}_4"]),
        ]
        nodes += [
            helper.make_node("Shape", [x], [f"{t}_shape"]),
            *axis(2, f"{t}_rows", 0, 2, f"{t}_rows_shape"),
            *axis(3, f"{t}_cols", 1, 3, f"{t}_cols_shape"),
            helper.make_node("Mul", [f"{t}_rows_4", f"{t}_cols_4"], [f"{t}_page"]),
            helper.make_node("Sub", [x, b], [f"{t}_xb"]),
            helper.make_node("Pad", [f"{t}_xb", f"{t}_pads"], [f"{t}_xp"], mode="constant"),
            helper.make_node("Mul", [f"{t}_page", b], [f"{t}_fill"]),
            helper.make_node("Add", [f"{t}_xp", f"{t}_fill"], [f"{t}_in"]),
        ]
        conv = copy.deepcopy(n)
        conv.input[0] = f"{t}_in"
        for a in conv.attribute:
            if a.name == "pads":
                a.ints[:] = [0, 0, 0, 0]
        nodes.append(conv)
    del g.graph.node[:]
    g.graph.node.extend(nodes)
    onnx.checker.check_model(g)
    return g, [v[2:] for v in values]


def summed(fed, maps):
    """fed.onnx with every Conv kernel summed over space, cut down to what `maps` need, `maps` its outputs."""
    g = copy.deepcopy(fed)
    # Kernels are initializers or Constant nodes.
    weights = {t.name: t for t in g.graph.initializer}
    weights.update({n.output[0]: attrs(n)["value"] for n in g.graph.node if n.op_type == "Constant"})
    for n in g.graph.node:
        if n.op_type != "Conv":
            continue
        kernel = numpy_helper.to_array(weights[n.input[1]]).sum(axis=(2, 3), keepdims=True)
        g.graph.initializer.append(numpy_helper.from_array(kernel.astype(np.float32), f"{n.input[1]}_summed"))
        n.input[1] = f"{n.input[1]}_summed"
        keep = [a for a in n.attribute if a.name not in ("pads", "kernel_shape", "strides", "dilations")]
        del n.attribute[:]
        n.attribute.extend(keep)
    producer = {o: n for n in g.graph.node for o in n.output}
    need, stack = set(), list(maps)
    while stack:
        p = producer.get(stack.pop())
        if p is not None and p.name not in need:
            need.add(p.name)
            stack.extend(i for i in p.input if i)
    kept = [n for n in g.graph.node if n.name in need]
    used = {i for n in kept for i in n.input}
    del g.graph.node[:]
    g.graph.node.extend(kept)
    kept_inits = [t for t in g.graph.initializer if t.name in used]
    del g.graph.initializer[:]
    g.graph.initializer.extend(kept_inits)
    del g.graph.output[:]
    g.graph.output.extend(helper.make_tensor_value_info(t, TensorProto.FLOAT, None) for t in maps)
    return g


def main(model_path: str, out_dir: str) -> None:
    m = onnx.load(model_path)
    for k, n in enumerate(m.graph.node):
        n.name = n.name or f"node{k}"
    pools = [n for n in m.graph.node if n.op_type == "GlobalAveragePool"]
    taps = copy.deepcopy(m)
    for n in pools:
        taps.graph.output.append(helper.make_tensor_value_info(n.output[0], TensorProto.FLOAT, None))
    onnx.save(taps, f"{out_dir}/taps.onnx")
    fed = copy.deepcopy(m)
    keep = [n for n in fed.graph.node if n.op_type != "GlobalAveragePool"]
    del fed.graph.node[:]
    fed.graph.node.extend(keep)
    for n in pools:
        fed.graph.input.append(helper.make_tensor_value_info(n.output[0], TensorProto.FLOAT, ["N", None, 1, 1]))
    onnx.checker.check_model(fed)
    onnx.save(fed, f"{out_dir}/fed.onnx")
    padded = {n.name for n in fed.graph.node if n.op_type == "Conv" and any(attrs(n).get("pads", [0]))}
    bpad, maps = blank_padded(fed, padded)
    onnx.save(bpad, f"{out_dir}/bpad.onnx")
    # The image input's own blank value is the colour itself: the caller feeds it.
    onnx.save(summed(fed, [t for t in maps if t != fed.graph.input[0].name]), f"{out_dir}/blank.onnx")
    print(f"{len(pools)} pooled vectors, {len(padded)} padded convolutions: {out_dir}/taps, fed, bpad, blank .onnx")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
