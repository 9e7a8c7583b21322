"""KServe's Python SDK (PyPI `kserve`) against mlhost: its REST and gRPC clients' health checks,
which read the bodies KServe's own servers answer (`{"live": true}`, `{"ready": true}`), and an
inference through each.
"""

import asyncio
import os
import shutil
import tempfile
import unittest

from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig

from mlhost_server import ROOT, Server

FEATURES = [1.0, 2.0, 4.0]


def request():
    features = InferInput(name="features", shape=[1, 3], datatype="FP32", data=FEATURES)
    return InferRequest(model_name="house-prices", infer_inputs=[features], request_id="k1")


class KserveClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.models = tempfile.mkdtemp()
        shutil.copytree(os.path.join(ROOT, "examples", "models"), cls.models, dirs_exist_ok=True)
        cls.server = Server(cls.models)
        cls.base = "http://" + cls.server.http

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        shutil.rmtree(cls.models, ignore_errors=True)

    def test_the_rest_client_reads_health_and_infers(self):
        async def run():
            client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0))
            try:
                self.assertIs(await client.is_server_live(self.base), True)
                self.assertIs(await client.is_server_ready(self.base), True)
                self.assertIs(await client.is_model_ready(self.base, "house-prices"), True)
                response = await client.infer(self.base, request(), model_name="house-prices")
                self.assertEqual(response.id, "k1")
                self.assertEqual(len(response.outputs), 1)
            finally:
                await client.close()

        asyncio.run(run())

    def test_the_grpc_client_reads_health_and_infers(self):
        async def run():
            client = InferenceGRPCClient(self.server.grpc, retries=0)
            try:
                self.assertIs(await client.is_server_live(), True)
                self.assertIs(await client.is_server_ready(), True)
                self.assertIs(await client.is_model_ready("house-prices"), True)
                response = await client.infer(request())
                self.assertEqual(response.id, "k1")
                self.assertEqual(len(response.outputs), 1)
            finally:
                await client.close()

        asyncio.run(run())


if __name__ == "__main__":
    unittest.main()
