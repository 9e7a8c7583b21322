"""The three ONNX graphs scripts/bench-onnx measures, built with onnx.helper from fixed seeds
(opset 17, batch dimension "N"), each with a NumPy reference of its forward pass that
`check` compares ONNX Runtime against.

- mlp: x FP32 [N, 256] -> Gemm 1024 -> Relu -> Gemm 1024 -> Relu -> Gemm 10 -> y [N, 10]
- cnn: x FP32 [N, 3, 32, 32] -> Conv 3x3 32 -> Relu -> MaxPool 2 -> Conv 3x3 64 -> Relu ->
  MaxPool 2 -> Flatten -> Gemm 10 -> y [N, 10]
- transformer: ids INT64 [N, 32] -> Gather from a 1000x128 embedding -> one encoder block
  (4-head self-attention, residual + LayerNormalization, feed-forward 128-512-128 with the erf
  GELU, residual + LayerNormalization) -> mean over the 32 tokens -> y FP32 [N, 128]
"""
import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
SEQ, VOCAB, DIM, HEADS, FF = 32, 1000, 128, 4, 512


class Graph:
    """Nodes and initializers being collected for one model."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.params = [], [], {}
        self.count = 0

    def weight(self, name, shape, scale):
        value = (self.rng.standard_normal(shape) * scale).astype(np.float32)
        return self.const(name, value)

    def const(self, name, value):
        self.inits.append(numpy_helper.from_array(value, name))
        self.params[name] = value
        return name

    def op(self, op_type, inputs, **attrs):
        self.count += 1
        out = f"{op_type.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def model(self, name, inputs, out_shape):
        # Rename the last node's output to "y".
        self.nodes[-1].output[0] = "y"
        graph = helper.make_graph(
            self.nodes, name, inputs,
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="mlhost-bench-onnx")
        model.ir_version = 8  # what opset 17 came with; ONNX Runtime 1.32 reads it
        return model


def mlp():
    g = Graph(seed=1)
    h, width = "x", 256
    for i, out in enumerate([1024, 1024, 10]):
        w = g.weight(f"w{i}", (width, out), math.sqrt(2 / width))
        b = g.weight(f"b{i}", (out,), 0.01)
        h = g.op("Gemm", [h, w, b])
        if i < 2:
            h = g.op("Relu", [h])
        width = out
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 256])
    return g.model("mlp", [x], ["N", 10]), g.params


def mlp_reference(p, x):
    h = np.maximum(x @ p["w0"] + p["b0"], 0)
    h = np.maximum(h @ p["w1"] + p["b1"], 0)
    return h @ p["w2"] + p["b2"]


def cnn():
    g = Graph(seed=2)
    h, channels = "x", 3
    for i, out in enumerate([32, 64]):
        w = g.weight(f"conv{i}_w", (out, channels, 3, 3), math.sqrt(2 / (channels * 9)))
        b = g.weight(f"conv{i}_b", (out,), 0.01)
        h = g.op("Conv", [h, w, b], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        h = g.op("Relu", [h])
        h = g.op("MaxPool", [h], kernel_shape=[2, 2], strides=[2, 2])
        channels = out
    h = g.op("Flatten", [h], axis=1)
    w = g.weight("fc_w", (64 * 8 * 8, 10), math.sqrt(2 / (64 * 8 * 8)))
    b = g.weight("fc_b", (10,), 0.01)
    h = g.op("Gemm", [h, w, b])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])
    return g.model("cnn", [x], ["N", 10]), g.params


def _conv3x3(x, w, b):
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))
    return np.einsum("ncijkl,ockl->noij", windows, w) + b[None, :, None, None]


def _maxpool2(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def cnn_reference(p, x):
    h = x
    for i in range(2):
        h = _maxpool2(np.maximum(_conv3x3(h, p[f"conv{i}_w"], p[f"conv{i}_b"]), 0))
    return h.reshape(len(h), -1) @ p["fc_w"] + p["fc_b"]


def transformer():
    g = Graph(seed=3)
    head = DIM // HEADS
    emb = g.weight("embedding", (VOCAB, DIM), 1.0)
    x = g.op("Gather", [emb, "ids"], axis=0)  # [N, 32, 128]

    def dense(h, name, fan_in, fan_out):
        w = g.weight(f"{name}_w", (fan_in, fan_out), math.sqrt(1 / fan_in))
        b = g.weight(f"{name}_b", (fan_out,), 0.01)
        return g.op("Add", [g.op("MatMul", [h, w]), b])

    split = g.const("split_heads", np.array([-1, SEQ, HEADS, head], np.int64))
    merge = g.const("merge_heads", np.array([-1, SEQ, DIM], np.int64))
    q, k, v = (g.op("Reshape", [dense(x, n, DIM, DIM), split]) for n in ("q", "k", "v"))
    q = g.op("Transpose", [q], perm=[0, 2, 1, 3])   # [N, 4, 32, 32]
    k = g.op("Transpose", [k], perm=[0, 2, 3, 1])   # [N, 4, 32(d), 32(t)]
    v = g.op("Transpose", [v], perm=[0, 2, 1, 3])
    scale = g.const("scale", np.array(1 / math.sqrt(head), np.float32))
    scores = g.op("Softmax", [g.op("Mul", [g.op("MatMul", [q, k]), scale])], axis=-1)
    attended = g.op("Transpose", [g.op("MatMul", [scores, v])], perm=[0, 2, 1, 3])
    attended = dense(g.op("Reshape", [attended, merge]), "o", DIM, DIM)

    def layer_norm(h, name):
        gamma = g.const(f"{name}_gamma", (1 + 0.1 * g.rng.standard_normal(DIM)).astype(np.float32))
        beta = g.weight(f"{name}_beta", (DIM,), 0.1)
        return g.op("LayerNormalization", [h, gamma, beta], axis=-1, epsilon=1e-5)

    x = layer_norm(g.op("Add", [x, attended]), "ln1")
    h = dense(x, "ff1", DIM, FF)
    half = g.const("half", np.array(0.5, np.float32))
    one = g.const("one", np.array(1.0, np.float32))
    sqrt2 = g.const("sqrt2", np.array(math.sqrt(2), np.float32))
    erf = g.op("Erf", [g.op("Div", [h, sqrt2])])
    h = g.op("Mul", [g.op("Mul", [h, half]), g.op("Add", [erf, one])])  # GELU, erf form
    x = layer_norm(g.op("Add", [x, dense(h, "ff2", FF, DIM)]), "ln2")
    g.op("ReduceMean", [x], axes=[1], keepdims=0)
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", SEQ])
    return g.model("transformer", [ids], ["N", DIM]), g.params


def _layer_norm(x, gamma, beta):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * gamma + beta


def transformer_reference(p, ids):
    head = DIM // HEADS
    x = p["embedding"][ids]
    n = len(ids)
    q, k, v = (((x @ p[f"{m}_w"] + p[f"{m}_b"]).reshape(n, SEQ, HEADS, head)
                .transpose(0, 2, 1, 3)) for m in "qkv")
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head)
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    scores /= scores.sum(-1, keepdims=True)
    attended = (scores @ v).transpose(0, 2, 1, 3).reshape(n, SEQ, DIM)
    x = _layer_norm(x + attended @ p["o_w"] + p["o_b"], p["ln1_gamma"], p["ln1_beta"])
    h = x @ p["ff1_w"] + p["ff1_b"]
    h = 0.5 * h * (1 + np.vectorize(math.erf)(h / math.sqrt(2)))
    x = _layer_norm(x + h @ p["ff2_w"] + p["ff2_b"], p["ln2_gamma"], p["ln2_beta"])
    return x.mean(axis=1)


def mlp_input(batch, rng):
    return rng.standard_normal((batch, 256)).astype(np.float32)


def cnn_input(batch, rng):
    return rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)


def transformer_input(batch, rng):
    return rng.integers(0, VOCAB, (batch, SEQ), dtype=np.int64)


# name: (builder, reference, input maker, input name)
MODELS = {
    "mlp": (mlp, mlp_reference, mlp_input, "x"),
    "cnn": (cnn, cnn_reference, cnn_input, "x"),
    "transformer": (transformer, transformer_reference, transformer_input, "ids"),
}


def build(name):
    """The model `name` as an onnx.ModelProto, checked: onnx.checker (full check, shape
    inference included), and ONNX Runtime's answer on 3 rows against the NumPy reference.
    Returns (model, make_input(batch, rng), input name)."""
    import onnxruntime as ort
    builder, reference, make_input, input_name = MODELS[name]
    model, params = builder()
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = make_input(3, np.random.default_rng(0))
    got = session.run(None, {input_name: x})[0]
    want = reference(params, x)
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-4, atol=1e-4):
        raise RuntimeError(f"{name}: ONNX Runtime and the NumPy reference differ by up to "
                           f"{np.abs(got - want).max()} (shapes {got.shape}, {want.shape})")
    return model, make_input, input_name
