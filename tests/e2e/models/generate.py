#!/usr/bin/env python3
"""Regenerates the ONNX models of the end-to-end tests of the native backend.

- `slow_chain.onnx`: a graph whose run time the request chooses, to test deadlines on the
  native backend. Input `x` (FP32 [1, 256]) is tiled by `repeats` (INT64 [2]) to
  [repeats[0], 256], then goes through 300 MatMul + Tanh steps with one shared 256x256 weight,
  and is averaged back to `y` (FP32 [1, 256]). `repeats` [1, 1] runs in milliseconds,
  [4096, 1] for seconds.

Deterministic (fixed seed). Run with onnx and numpy installed:

    python tests/e2e/models/generate.py
"""

import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = pathlib.Path(__file__).resolve().parent
STEPS = 300
WIDTH = 256


def slow_chain():
    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((WIDTH, WIDTH)) / np.sqrt(WIDTH)).astype(np.float32)
    nodes = [helper.make_node("Tile", ["x", "repeats"], ["h0"])]
    for step in range(STEPS):
        nodes.append(helper.make_node("MatMul", [f"h{step}", "w"], [f"m{step}"]))
        nodes.append(helper.make_node("Tanh", [f"m{step}"], [f"h{step + 1}"]))
    nodes.append(helper.make_node("ReduceMean", [f"h{STEPS}"], ["y"], axes=[0], keepdims=1))
    graph = helper.make_graph(
        nodes,
        "slow_chain",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, WIDTH]),
            helper.make_tensor_value_info("repeats", TensorProto.INT64, [2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, WIDTH])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    onnx.save(slow_chain(), HERE / "slow_chain.onnx")
    print("wrote", HERE / "slow_chain.onnx")
