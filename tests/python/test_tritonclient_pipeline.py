"""A pipeline (docs/pipelines.md) through the real Triton clients, HTTP and gRPC, with their
defaults: a pre-processing runtime (tests/guests/pipeline-pre), an XGBoost classifier (the trees
runtime) and a post-processing runtime (tests/guests/pipeline-post), called as one model, answer
what the three models give when the client chains them itself.

Needs the test runtimes the host's build makes (target/mlhost-guests/wasm32-wasip2/guest/).
"""

import json
import os
import shutil
import tempfile
import unittest

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from mlhost_server import ROOT, Server

GUESTS = os.path.join(ROOT, "target", "mlhost-guests", "wasm32-wasip2", "guest")
FIXTURE = os.path.join(ROOT, "runtimes", "trees", "fixtures", "xgboost-binary")
PIPELINE = {"pipeline": {
    "steps": [
        {"name": "pre", "inputs": ["inputs.rows"]},
        {"name": "model", "model": "xgb", "inputs": {"input-0": "pre.outputs.features"}},
        {"name": "post", "inputs": {"scores": "model.outputs.predict_proba"}},
    ],
    "outputs": ["post.outputs.label", "post.outputs.confidence"],
}}


def write_model(root, name, settings, files=()):
    folder = os.path.join(root, name)
    os.makedirs(folder)
    with open(os.path.join(folder, "model-settings.json"), "w") as out:
        json.dump(settings, out)
    for target, source in files:
        shutil.copy(source, os.path.join(folder, target))


class TritonClientPipelineTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.models = tempfile.mkdtemp(prefix="mlhost-pipeline-")
        extra = {"mean": [0.5, -0.25, 0, 1, 0], "scale": [2, 1, 0.5, 1, 4]}
        write_model(cls.models, "pre", {"implementation": "./runtime.wasm",
                                        "parameters": {"extra": extra}},
                    [("runtime.wasm", os.path.join(GUESTS, "mlhost_test_pipeline_pre.wasm"))])
        write_model(cls.models, "post", {"implementation": "./runtime.wasm",
                                         "parameters": {"extra": {"classes": ["no", "yes"]}}},
                    [("runtime.wasm", os.path.join(GUESTS, "mlhost_test_pipeline_post.wasm"))])
        write_model(cls.models, "xgb", {"implementation": "xgboost",
                                        "parameters": {"uri": "./model.json"}},
                    [("model.json", os.path.join(FIXTURE, "model.json"))])
        write_model(cls.models, "scoring", PIPELINE)
        cls.server = Server(cls.models)
        with open(os.path.join(FIXTURE, "expected.json")) as expected:
            cls.rows = np.array([",".join(row) for row in json.load(expected)["rows"]],
                                dtype=np.object_)

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        shutil.rmtree(cls.models, ignore_errors=True)

    def chained(self, module, client):
        """The three calls a client would make, each answer passed on as the next input."""
        def call(model, name, array, datatype, output):
            tensor = module.InferInput(name, list(array.shape), datatype)
            tensor.set_data_from_numpy(array)
            asked = [module.InferRequestedOutput(output)] if output else None
            return client.infer(model, [tensor], outputs=asked)

        features = call("pre", "rows", self.rows, "BYTES", None).as_numpy("features")
        scores = call("xgb", "input-0", features, "FP32", "predict_proba").as_numpy("predict_proba")
        return call("post", "scores", scores, "FP32", None)

    def check(self, module, client):
        self.assertTrue(client.is_model_ready("scoring"))
        rows = module.InferInput("rows", [len(self.rows)], "BYTES")
        rows.set_data_from_numpy(self.rows)
        answer = client.infer("scoring", [rows], request_id="p-1")
        expected = self.chained(module, client)
        np.testing.assert_array_equal(answer.as_numpy("label"), expected.as_numpy("label"))
        np.testing.assert_array_equal(answer.as_numpy("confidence"),
                                      expected.as_numpy("confidence"))
        labels = {label.decode() for label in answer.as_numpy("label")}
        self.assertEqual(labels, {"no", "yes"})

    def test_http(self):
        client = httpclient.InferenceServerClient(url=self.server.http)
        try:
            self.check(httpclient, client)
            metadata = client.get_model_metadata("scoring")
            self.assertEqual(metadata["platform"], "pipeline")
            self.assertEqual([i["name"] for i in metadata["inputs"]], ["rows"])
            self.assertEqual([o["name"] for o in metadata["outputs"]], ["label", "confidence"])
        finally:
            client.close()

    def test_grpc(self):
        client = grpcclient.InferenceServerClient(url=self.server.grpc)
        try:
            self.check(grpcclient, client)
            self.assertEqual(client.get_model_metadata("scoring").platform, "pipeline")
        finally:
            client.close()


if __name__ == "__main__":
    unittest.main()
