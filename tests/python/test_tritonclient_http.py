"""mlhost through the real Triton HTTP client (tritonclient.http).

tritonclient.http sends tensors with the binary tensor data extension and asks for binary
outputs by default (MLServer fails there: its issue #324); these tests use it with its defaults,
and with JSON (`binary_data=False`) for comparison.
"""

import unittest

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from mlhost_server import iris_probabilities, serve_examples

HOUSES = np.array([[1.0, 2.0, 4.0], [0.5, 0.0, -8.0]], dtype=np.float32)
# 150·x₀ + 12.5·x₁ − 0.75·x₂ + 20
PRICES = np.array([[192.0], [101.0]])


class TritonHttpClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = serve_examples()
        cls.client = httpclient.InferenceServerClient(url=cls.server.http)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.server.close()

    def houses(self, binary_data=True):
        inputs = [httpclient.InferInput("features", list(HOUSES.shape), "FP32")]
        inputs[0].set_data_from_numpy(HOUSES, binary_data=binary_data)
        return inputs

    def test_health_and_metadata(self):
        self.assertTrue(self.client.is_server_live())
        self.assertTrue(self.client.is_server_ready())
        self.assertTrue(self.client.is_model_ready("iris", "1"))
        metadata = self.client.get_server_metadata()
        self.assertIn("binary_tensor_data", metadata["extensions"])
        self.assertEqual(self.client.get_model_metadata("house-prices")["inputs"][0]["shape"], [-1, 3])

    def test_infer_with_the_defaults_binary_in_and_out(self):
        result = self.client.infer("house-prices", self.houses(), request_id="h-1")
        np.testing.assert_array_equal(result.as_numpy("predict"), PRICES)
        response = result.get_response()
        self.assertEqual(response["id"], "h-1")
        self.assertIn("binary_data_size", response["outputs"][0]["parameters"])

    def test_infer_with_binary_outputs_asked_by_name(self):
        outputs = [httpclient.InferRequestedOutput("predict", binary_data=True)]
        result = self.client.infer("house-prices", self.houses(), outputs=outputs)
        np.testing.assert_array_equal(result.as_numpy("predict"), PRICES)

    def test_infer_with_json_in_and_out(self):
        outputs = [httpclient.InferRequestedOutput("predict", binary_data=False)]
        result = self.client.infer("house-prices", self.houses(binary_data=False), outputs=outputs)
        np.testing.assert_array_equal(result.as_numpy("predict"), PRICES)
        self.assertIn("data", result.get_response()["outputs"][0])

    def test_probabilities_against_numpy(self):
        rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float64)
        inputs = [httpclient.InferInput("input-0", list(rows.shape), "FP64")]
        inputs[0].set_data_from_numpy(rows)
        outputs = [httpclient.InferRequestedOutput("predict_proba"), httpclient.InferRequestedOutput("predict")]
        result = self.client.infer("iris", inputs, model_version="1", outputs=outputs)
        np.testing.assert_allclose(result.as_numpy("predict_proba"), iris_probabilities(rows), rtol=1e-12)
        np.testing.assert_array_equal(result.as_numpy("predict"), np.array([0, 2]))

    def test_errors_are_raised_with_the_servers_message(self):
        with self.assertRaises(InferenceServerException) as raised:
            self.client.infer("no-such-model", self.houses())
        self.assertIn("not found", raised.exception.message())
        wrong = [httpclient.InferInput("features", [2, 2], "FP32")]
        wrong[0].set_data_from_numpy(np.zeros((2, 2), dtype=np.float32))
        with self.assertRaises(InferenceServerException) as raised:
            self.client.infer("house-prices", wrong)
        self.assertIn("shape", raised.exception.message())

    def test_model_config_and_statistics(self):
        config = self.client.get_model_config("house-prices")
        self.assertEqual(config["max_batch_size"], 0)
        self.assertEqual(config["input"][0]["data_type"], "TYPE_FP32")
        self.assertEqual(config["input"][0]["dims"], [-1, 3])

        def counts():
            stats = self.client.get_inference_statistics("house-prices")["model_stats"][0]
            return stats["inference_stats"]["success"]["count"], stats["inference_stats"]["fail"]["count"]

        successes, failures = counts()
        self.client.infer("house-prices", self.houses())
        self.client.infer("house-prices", self.houses(binary_data=False))
        bad = [httpclient.InferInput("features", [1, 3], "FP64")]
        bad[0].set_data_from_numpy(np.zeros((1, 3), dtype=np.float64))
        with self.assertRaises(InferenceServerException):
            self.client.infer("house-prices", bad)
        self.assertEqual(counts(), (successes + 2, failures + 1))


if __name__ == "__main__":
    unittest.main()
