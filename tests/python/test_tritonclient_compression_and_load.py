"""Compression and repository loads with `config` and `files`, through tritonclient (HTTP and gRPC).

tritonclient compresses requests with `request_compression_algorithm` (HTTP) or
`compression_algorithm` (gRPC), and asks for compressed answers with
`response_compression_algorithm` (HTTP; grpcio always offers gzip and deflate); `load_model` sends
Triton's `config` (JSON text) and `files` ("file:<path>" -> bytes).
"""

import gzip
import http.client
import json
import os
import shutil
import tempfile
import unittest
import zlib

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from mlhost_server import ROOT, Server

# house-prices: 150·x₀ + 12.5·x₁ − 0.75·x₂ + 20
ROWS = np.array([[1.0, 2.0, 4.0]] * 400, dtype=np.float32)
ROW_PRICE = 192.0
# A model of the house-prices kind that halves house-prices' coefficients (y = 75·x₀ + ...).
HALF = {"kind": "linear", "coefficients": [[75.0, 6.25, -0.375]], "intercepts": [10.0], "input_name": "features"}


def setUpModule():
    global MODELS, SERVER
    MODELS = tempfile.mkdtemp()
    shutil.copytree(os.path.join(ROOT, "examples", "models", "house-prices"),
                    os.path.join(MODELS, "house-prices"))
    with open(os.path.join(MODELS, "house-prices", "half.json"), "w") as f:
        json.dump(HALF, f)
    SERVER = Server(MODELS)


def tearDownModule():
    SERVER.close()
    shutil.rmtree(MODELS, ignore_errors=True)


class HttpTest(unittest.TestCase):
    def setUp(self):
        self.client = httpclient.InferenceServerClient(url=SERVER.http)

    def tearDown(self):
        self.client.load_model("house-prices")
        self.client.close()

    def infer(self, model="house-prices", rows=ROWS, binary_data=True, **options):
        inputs = [httpclient.InferInput("features", list(rows.shape), "FP32")]
        inputs[0].set_data_from_numpy(rows, binary_data=binary_data)
        outputs = [httpclient.InferRequestedOutput("predict", binary_data=binary_data)]
        return self.client.infer(model, inputs, outputs=outputs, **options).as_numpy("predict")

    def test_requests_and_answers_compressed_with_gzip_and_deflate(self):
        for algorithm in ["gzip", "deflate"]:
            for binary_data in [True, False]:
                with self.subTest(algorithm=algorithm, binary_data=binary_data):
                    predict = self.infer(binary_data=binary_data,
                                         request_compression_algorithm=algorithm,
                                         response_compression_algorithm=algorithm)
                    self.assertEqual(predict.shape, (400, 1))
                    np.testing.assert_allclose(predict, ROW_PRICE)

    def test_answers_are_compressed_when_accepted_and_large(self):
        body = json.dumps({"inputs": [{"name": "features", "datatype": "FP32", "shape": list(ROWS.shape),
                                       "data": ROWS.flatten().tolist()}]})
        connection = http.client.HTTPConnection(SERVER.http)
        for encoding, decompress in [("gzip", gzip.decompress), ("deflate", zlib.decompress)]:
            connection.request("POST", "/v2/models/house-prices/infer", body,
                               {"Content-Type": "application/json", "Accept-Encoding": encoding})
            response = connection.getresponse()
            data = response.read()
            self.assertEqual(response.status, 200)
            self.assertEqual(response.getheader("Content-Encoding"), encoding)
            answer = json.loads(decompress(data))
            self.assertEqual(answer["outputs"][0]["data"][:2], [ROW_PRICE, ROW_PRICE])
        # Small answers are not compressed.
        connection.request("GET", "/v2/health/live", headers={"Accept-Encoding": "gzip"})
        response = connection.getresponse()
        response.read()
        self.assertIsNone(response.getheader("Content-Encoding"))
        connection.close()

    def test_load_with_a_config_applies_it(self):
        config = self.client.get_model_config("house-prices")
        config["parameters"] = {"uri": "half.json"}
        self.client.load_model("house-prices", config=json.dumps(config))
        np.testing.assert_allclose(self.infer(rows=ROWS[:2]), ROW_PRICE / 2)
        # A plain load reads the disk again.
        self.client.load_model("house-prices")
        np.testing.assert_allclose(self.infer(rows=ROWS[:2]), ROW_PRICE)

    def test_a_config_that_cannot_be_applied_is_400(self):
        for config, message in [("notjson", "not JSON"),
                                (json.dumps({"sequence_batching": {"direct": {}}}), "sequence_batching"),
                                (json.dumps({"platform": "tensorflow_savedmodel"}), "no runtime")]:
            with self.subTest(config=config):
                with self.assertRaises(InferenceServerException) as raised:
                    self.client.load_model("house-prices", config=config)
                self.assertEqual(raised.exception.status(), "400")
                self.assertIn(message, raised.exception.message())

    def test_load_with_files_serves_them(self):
        config = json.dumps({"backend": "linear", "max_batch_size": 8})
        self.client.load_model("sent-http", config=config,
                               files={"file:1/linear.json": json.dumps(HALF).encode()})
        self.assertTrue(self.client.is_model_ready("sent-http", "1"))
        np.testing.assert_allclose(self.infer("sent-http", rows=ROWS[:2]), ROW_PRICE / 2)
        with self.assertRaises(InferenceServerException) as raised:
            self.client.load_model("sent-http", config=config, files={"file:../linear.json": b"{}"})
        self.assertEqual(raised.exception.status(), "400")
        self.assertIn("inside the model's folder", raised.exception.message())


class GrpcTest(unittest.TestCase):
    def setUp(self):
        self.client = grpcclient.InferenceServerClient(url=SERVER.grpc)

    def tearDown(self):
        self.client.load_model("house-prices")
        self.client.close()

    def infer(self, model="house-prices", rows=ROWS, **options):
        inputs = [grpcclient.InferInput("features", list(rows.shape), "FP32")]
        inputs[0].set_data_from_numpy(rows)
        return self.client.infer(model, inputs, **options).as_numpy("predict")

    def test_requests_compressed_with_gzip_and_deflate(self):
        for algorithm in ["gzip", "deflate"]:
            with self.subTest(algorithm=algorithm):
                predict = self.infer(compression_algorithm=algorithm)
                self.assertEqual(predict.shape, (400, 1))
                np.testing.assert_allclose(predict, ROW_PRICE)

    def test_load_with_a_config_and_files(self):
        config = self.client.get_model_config("house-prices", as_json=True)["config"]
        config["parameters"] = {"uri": "half.json"}
        self.client.load_model("house-prices", config=json.dumps(config))
        np.testing.assert_allclose(self.infer(rows=ROWS[:2]), ROW_PRICE / 2)
        with self.assertRaises(InferenceServerException) as raised:
            self.client.load_model("house-prices", config="notjson")
        self.assertEqual(raised.exception.status(), "StatusCode.INVALID_ARGUMENT")
        self.assertIn("not JSON", raised.exception.message())

        self.client.load_model("sent-grpc", config=json.dumps({"implementation": "linear"}),
                               files={"file:linear.json": json.dumps(HALF).encode()})
        np.testing.assert_allclose(self.infer("sent-grpc", rows=ROWS[:2]), ROW_PRICE / 2)


if __name__ == "__main__":
    unittest.main()
