"""mlhost through the real Triton gRPC client (tritonclient.grpc), with its defaults.

Starts the mlhost binary (MLHOST_BIN, default target/debug/mlhost) on free ports against the
example models, then infers, reads metadata and drives the repository RPCs as a user would.
Run with `python -m unittest discover tests/python` from the workspace root.
"""

import unittest

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from mlhost_server import iris_probabilities, serve_examples


class TritonGrpcClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = serve_examples()
        cls.client = grpcclient.InferenceServerClient(url=cls.server.grpc)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.server.close()

    def test_health_and_metadata(self):
        self.assertTrue(self.client.is_server_live())
        self.assertTrue(self.client.is_server_ready())
        self.assertTrue(self.client.is_model_ready("iris"))
        self.assertTrue(self.client.is_model_ready("iris", "1"))
        self.assertEqual(self.client.get_server_metadata().name, "mlhost")
        metadata = self.client.get_model_metadata("iris")
        self.assertEqual(metadata.name, "iris")
        self.assertEqual(list(metadata.versions), ["1"])
        self.assertEqual(metadata.inputs[0].name, "input-0")
        self.assertEqual(list(metadata.inputs[0].shape), [-1, 4])

    def test_infer_with_default_raw_encoding(self):
        features = np.array([[1.0, 2.0, 4.0], [0.5, 0.0, -8.0]], dtype=np.float32)
        inputs = [grpcclient.InferInput("features", list(features.shape), "FP32")]
        inputs[0].set_data_from_numpy(features)
        result = self.client.infer("house-prices", inputs, request_id="py-1")
        # 150·x₀ + 12.5·x₁ − 0.75·x₂ + 20
        np.testing.assert_array_equal(result.as_numpy("predict"), np.array([[192.0], [101.0]]))
        self.assertEqual(result.get_response().id, "py-1")

    def test_infer_probabilities_against_numpy(self):
        rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float64)
        inputs = [grpcclient.InferInput("input-0", list(rows.shape), "FP64")]
        inputs[0].set_data_from_numpy(rows)
        outputs = [grpcclient.InferRequestedOutput("predict_proba"), grpcclient.InferRequestedOutput("predict")]
        result = self.client.infer("iris", inputs, model_version="1", outputs=outputs)
        np.testing.assert_allclose(result.as_numpy("predict_proba"), iris_probabilities(rows), rtol=1e-12)
        np.testing.assert_array_equal(result.as_numpy("predict"), np.array([0, 2]))

    def test_errors_are_raised_with_the_servers_message(self):
        features = np.zeros((1, 3), dtype=np.float32)
        inputs = [grpcclient.InferInput("features", [1, 3], "FP32")]
        inputs[0].set_data_from_numpy(features)
        with self.assertRaises(InferenceServerException) as raised:
            self.client.infer("no-such-model", inputs)
        self.assertIn("not found", raised.exception.message())
        wrong = [grpcclient.InferInput("x", [1, 3], "FP32")]
        wrong[0].set_data_from_numpy(features)
        with self.assertRaises(InferenceServerException) as raised:
            self.client.infer("house-prices", wrong)
        self.assertIn("unknown input 'x'", raised.exception.message())

    def test_repository_rpcs(self):
        index = self.client.get_model_repository_index()
        states = {model.name: model.state for model in index.models}
        self.assertEqual(states, {"iris": "READY", "house-prices": "READY", "onnx-iris": "READY",
                                  "xgboost-classifier": "READY", "lightgbm-classifier": "READY"})
        self.client.unload_model("house-prices")
        self.assertFalse("house-prices" in {m.name for m in self.client.get_model_repository_index().models if m.state == "READY"})
        self.client.load_model("house-prices")
        self.assertTrue(self.client.is_model_ready("house-prices"))

    def test_model_config_and_statistics(self):
        config = self.client.get_model_config("house-prices").config
        self.assertEqual(config.name, "house-prices")
        self.assertEqual(config.backend, "mlhost")
        self.assertEqual(config.max_batch_size, 0)
        self.assertEqual(config.input[0].name, "features")
        self.assertEqual(config.input[0].data_type, 11)  # TYPE_FP32
        self.assertEqual(list(config.input[0].dims), [-1, 3])
        self.assertEqual(config.output[0].data_type, 12)  # TYPE_FP64

        def successes():
            stats = self.client.get_inference_statistics("iris").model_stats
            return stats[0].inference_stats.success.count

        before = successes()
        rows = np.zeros((2, 4), dtype=np.float64)
        inputs = [grpcclient.InferInput("input-0", [2, 4], "FP64")]
        inputs[0].set_data_from_numpy(rows)
        for _ in range(3):
            self.client.infer("iris", inputs)
        self.assertEqual(successes(), before + 3)
        everything = self.client.get_inference_statistics().model_stats
        self.assertEqual(sorted(s.name for s in everything),
                         ["house-prices", "iris", "lightgbm-classifier", "onnx-iris", "xgboost-classifier"])

    def test_stream_infer(self):
        import queue
        answers = queue.Queue()
        self.client.start_stream(callback=lambda result, error: answers.put((result, error)))
        try:
            features = np.array([[1.0, 2.0, 4.0]], dtype=np.float32)
            inputs = [grpcclient.InferInput("features", [1, 3], "FP32")]
            inputs[0].set_data_from_numpy(features)
            self.client.async_stream_infer("house-prices", inputs, request_id="s-1")
            self.client.async_stream_infer("no-such-model", inputs, request_id="s-2")
            result, error = answers.get(timeout=30)
            self.assertIsNone(error)
            np.testing.assert_array_equal(result.as_numpy("predict"), np.array([[192.0]]))
            result, error = answers.get(timeout=30)
            self.assertIsNotNone(error)
            self.assertIn("not found", error.message())
        finally:
            self.client.stop_stream()


if __name__ == "__main__":
    unittest.main()
