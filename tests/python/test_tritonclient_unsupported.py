"""What tritonclient calls beyond inference: shared memory (not supported, said clearly on both
protocols), ModelReady of unknown models, and the empty final response of streams.

Starts the mlhost binary (MLHOST_BIN) on free ports with the house-prices example.
"""

import queue
import unittest

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from mlhost_server import serve_examples

SHARED_MEMORY = "shared memory is not supported by mlhost"


def features(module):
    values = np.array([[1.0, 2.0, 4.0]], dtype=np.float32)
    tensor = module.InferInput("features", list(values.shape), "FP32")
    tensor.set_data_from_numpy(values)
    return tensor


class TritonClientUnsupportedTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = serve_examples("house-prices")
        cls.grpc = grpcclient.InferenceServerClient(url=cls.server.grpc)
        cls.http = httpclient.InferenceServerClient(url=cls.server.http)

    @classmethod
    def tearDownClass(cls):
        cls.grpc.close()
        cls.http.close()
        cls.server.close()

    def assert_unsupported(self, call, *args):
        with self.assertRaises(InferenceServerException) as raised:
            call(*args)
        self.assertIn(SHARED_MEMORY, raised.exception.message())
        return raised.exception

    def test_shared_memory_calls_say_unsupported(self):
        for client in [self.grpc, self.http]:
            self.assert_unsupported(client.get_system_shared_memory_status)
            self.assert_unsupported(client.get_system_shared_memory_status, "region")
            self.assert_unsupported(
                client.register_system_shared_memory, "region", "/mlhost-shm", 64
            )
            self.assert_unsupported(client.unregister_system_shared_memory)
            self.assert_unsupported(client.unregister_system_shared_memory, "region")
            self.assert_unsupported(client.get_cuda_shared_memory_status)
            self.assert_unsupported(
                client.register_cuda_shared_memory, "region", b"aGFuZGxl", 0, 64
            )
            self.assert_unsupported(client.unregister_cuda_shared_memory, "region")
        error = self.assert_unsupported(self.grpc.get_system_shared_memory_status)
        self.assertEqual(error.status(), "StatusCode.UNIMPLEMENTED")
        error = self.assert_unsupported(self.http.get_system_shared_memory_status)
        self.assertEqual(error.status(), "400")

    def test_tensors_in_shared_memory_say_unsupported(self):
        for module, client in [(grpcclient, self.grpc), (httpclient, self.http)]:
            tensor = module.InferInput("features", [1, 3], "FP32")
            tensor.set_shared_memory("input-region", 12)
            self.assert_unsupported(client.infer, "house-prices", [tensor])
            output = module.InferRequestedOutput("predict")
            output.set_shared_memory("output-region", 8)
            with self.assertRaises(InferenceServerException) as raised:
                client.infer("house-prices", [features(module)], outputs=[output])
            self.assertIn(SHARED_MEMORY, raised.exception.message())

    def test_model_ready_of_unknown_models_is_false(self):
        self.assertTrue(self.grpc.is_model_ready("house-prices"))
        self.assertFalse(self.grpc.is_model_ready("no-such-model"))
        self.assertFalse(self.grpc.is_model_ready("house-prices", "9"))
        self.assertFalse(self.http.is_model_ready("no-such-model"))

    def test_stream_with_an_empty_final_response(self):
        results = queue.Queue()
        client = grpcclient.InferenceServerClient(url=self.server.grpc)
        client.start_stream(callback=lambda result, error: results.put((result, error)))
        try:
            client.async_stream_infer(
                "house-prices", [features(grpcclient)], request_id="s1",
                enable_empty_final_response=True,
            )
            client.async_stream_infer("house-prices", [features(grpcclient)], request_id="s2")
            answers = [results.get(timeout=10) for _ in range(3)]
        finally:
            client.stop_stream()
            client.close()
        for _, error in answers:
            self.assertIsNone(error)
        first, final, plain = [result.get_response() for result, _ in answers]
        self.assertEqual(first.id, "s1")
        self.assertFalse(first.parameters["triton_final_response"].bool_param)
        np.testing.assert_array_equal(answers[0][0].as_numpy("predict"), [[192.0]])
        self.assertEqual((final.id, final.model_name), ("s1", "house-prices"))
        self.assertEqual(len(final.outputs), 0)
        self.assertTrue(final.parameters["triton_final_response"].bool_param)
        self.assertEqual(plain.id, "s2")
        self.assertNotIn("triton_final_response", plain.parameters)


if __name__ == "__main__":
    unittest.main()
