"""KServe's Python SDK (PyPI `kserve`) against mlhost: its REST and gRPC clients' health checks,
which read the bodies KServe's own servers answer (`{"live": true}`, `{"ready": true}`), and an
inference through each. The SDK runs in a process of its own (kserve_checks.py): its protobuf
messages clash with tritonclient's, which the other tests import.
"""

import json
import os
import subprocess
import sys
import unittest

from mlhost_server import serve_examples

HERE = os.path.dirname(os.path.abspath(__file__))
EXPECTED = {"live": True, "ready": True, "model_ready": True, "id": "k1", "outputs": 1}


class KserveClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = serve_examples()
        run = subprocess.run([sys.executable, os.path.join(HERE, "kserve_checks.py"),
                              cls.server.http, cls.server.grpc],
                             capture_output=True, text=True, timeout=120)
        cls.failure = None if run.returncode == 0 else run.stderr
        cls.results = json.loads(run.stdout) if run.returncode == 0 else {}

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def test_the_rest_client_reads_health_and_infers(self):
        self.assertIsNone(self.failure)
        self.assertEqual(self.results["rest"], EXPECTED)

    def test_the_grpc_client_reads_health_and_infers(self):
        self.assertIsNone(self.failure)
        self.assertEqual(self.results["grpc"], EXPECTED)


if __name__ == "__main__":
    unittest.main()
