"""Two edits of the PP-OCRv4 detector for bench/eval/squeeze.ts (the text eval's diagnosis of windowed drift).

taps.onnx: the same graph with every squeeze-excitation pooled vector (GlobalAveragePool output) as an extra output.
fed.onnx:  the same graph with every GlobalAveragePool removed and its output made a graph input, so a window can run
           with the pooled vectors of another run (the whole image, or a downscaled glance).
fedtap.onnx: fed.onnx that also outputs every pooled vector's feature map (the GlobalAveragePool's input), and
           levels.json: per pooled vector (in fed.onnx's input order) its channel count and its level, 0 for those no
           other pooled vector feeds, else 1 + the highest level among those it depends on (bench/eval/_pool_levels.ts).
blank.onnx: what fedtap.onnx's feature maps hold far inside a page of one colour, from a 1×1 input: every Conv's
           kernel summed over space (on a constant map a k×k convolution is a 1×1 one with the summed kernel; stride
           and padding only matter at the edges), cut to the graph that feeds the pooled vectors' feature maps.

Usage: /usr/bin/python3 bench/eval/squeeze_graphs.py MODEL.onnx OUT_DIR   (Debian's python3-onnx)
"""
import copy
import json
import sys

import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference, utils


def main(model_path: str, out_dir: str) -> None:
    m = onnx.load(model_path)
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
    fedtap = copy.deepcopy(fed)
    for n in pools:
        fedtap.graph.output.append(helper.make_tensor_value_info(n.input[0], TensorProto.FLOAT, ["N", None, None, None]))
    onnx.save(fedtap, f"{out_dir}/fedtap.onnx")
    json.dump(levels(m, pools), open(f"{out_dir}/levels.json", "w"))
    collapse(fedtap, out_dir, [n.input[0] for n in pools])
    print(f"{len(pools)} pooled vectors: {out_dir}/taps.onnx, fed.onnx, fedtap.onnx, levels.json, blank.onnx")


def collapse(fedtap, out_dir: str, maps: list) -> None:
    """blank.onnx (see the module's docstring)."""
    g = copy.deepcopy(fedtap)
    weights = {t.name: t for t in g.graph.initializer}
    for n in g.graph.node:
        if n.op_type == "Constant":
            weights.update({n.output[0]: a.t for a in n.attribute if a.name == "value"})
    for n in g.graph.node:
        if n.op_type != "Conv":
            continue
        w = weights[n.input[1]]
        summed = numpy_helper.to_array(w).sum(axis=(2, 3), keepdims=True)
        w.CopyFrom(numpy_helper.from_array(summed, w.name))
        group = [a for a in n.attribute if a.name == "group"]
        del n.attribute[:]
        n.attribute.extend(group + [helper.make_attribute("kernel_shape", [1, 1])])
    onnx.save(g, f"{out_dir}/blank-full.onnx")
    inputs = [i.name for i in g.graph.input]
    utils.extract_model(f"{out_dir}/blank-full.onnx", f"{out_dir}/blank.onnx", inputs, maps)


def levels(m, pools):
    """Channels and dependency level of each pooled vector (see the module's docstring)."""
    producer = {o: n for n in m.graph.node for o in n.output}
    pool_of = {n.output[0]: i for i, n in enumerate(pools)}
    memo = {}

    def feeding(tensor, seen):
        # The pooled vectors upstream of `tensor`, not looking past another pooled vector.
        found = set()
        stack = [tensor]
        while stack:
            t = stack.pop()
            if t in seen:
                continue
            seen.add(t)
            if t in pool_of:
                found.add(pool_of[t])
                continue
            n = producer.get(t)
            if n is not None:
                stack.extend(n.input)
        return found

    def level(i):
        if i not in memo:
            ups = feeding(pools[i].input[0], set())
            memo[i] = 1 + max(level(j) for j in ups) if ups else 0
        return memo[i]

    inferred = shape_inference.infer_shapes(m)
    info = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    return [{
        "name": n.output[0],
        "channels": info[n.input[0]].type.tensor_type.shape.dim[1].dim_value,
        "level": level(i),
    } for i, n in enumerate(pools)]


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
