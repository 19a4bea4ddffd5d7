"""Two edits of the PP-OCRv4 detector for bench/eval/squeeze.ts (the text eval's diagnosis of windowed drift).

taps.onnx: the same graph with every squeeze-excitation pooled vector (GlobalAveragePool output) as an extra output.
fed.onnx:  the same graph with every GlobalAveragePool removed and its output made a graph input, so a window can run
           with the pooled vectors of another run (the whole image, or a downscaled glance).
(The served level-by-level segments and blank graphs are cut in TypeScript at load: lib/onnx/levels.ts.)

Usage: /usr/bin/python3 bench/eval/squeeze_graphs.py MODEL.onnx OUT_DIR   (Debian's python3-onnx)
"""
import copy
import sys

import onnx
from onnx import TensorProto, helper


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
    print(f"{len(pools)} pooled vectors: {out_dir}/taps.onnx, fed.onnx")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
