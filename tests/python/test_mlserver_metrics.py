"""mlhost's metrics against MLServer 1.7.1's, after the same requests (mlserver_metrics.py).

MLServer's side is the families it exported, recorded by scripts/record-mlserver-metrics in
mlserver-1.7.1-metrics.json (MLServer's pins conflict with this venv's, so it runs in a venv of
its own). With MLSERVER_VENV naming such a venv, the test runs MLServer now instead.
"""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

from tritonclient.grpc import service_pb2

from mlhost_server import Server
from mlserver_metrics import MODEL, describe, make_requests, scrape

HERE = os.path.dirname(os.path.abspath(__file__))
RECORDED = os.path.join(HERE, "mlserver-1.7.1-metrics.json")
LINEAR = {"kind": "linear", "coefficients": [[2.0]], "intercepts": [1.0], "input_name": "x"}
# Labels whose values must be the same; for the others mlhost may have more (it counts a
# stream's start and end, which MLServer's interceptor counts only for unary calls).
SAME_VALUES = ("app_name", "method", "path", "grpc_service")
MORE_VALUES = ("grpc_type", "grpc_method")


def mlserver_families():
    venv = os.environ.get("MLSERVER_VENV")
    if not venv:
        with open(RECORDED) as f:
            return json.load(f)["families"]
    folder = tempfile.mkdtemp()
    try:
        out = os.path.join(folder, "metrics.json")
        python = os.path.join(venv, "Scripts", "python.exe") if os.name == "nt" else os.path.join(venv, "bin", "python")
        subprocess.run([python, os.path.join(HERE, "run_mlserver.py"), out],
                       check=True, timeout=300)
        with open(out) as f:
            return json.load(f)["families"]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class MlserverMetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.models = tempfile.mkdtemp()
        folder = os.path.join(cls.models, MODEL)
        os.makedirs(folder)
        with open(os.path.join(folder, "model-settings.json"), "w") as f:
            json.dump({"implementation": "linear", "max_batch_size": 4, "max_batch_time": 0.01}, f)
        with open(os.path.join(folder, "linear.json"), "w") as f:
            json.dump(LINEAR, f)
        cls.server = Server(cls.models)
        make_requests(cls.server.http, cls.server.grpc, service_pb2)
        cls.mine = describe(scrape(cls.server.metrics))
        cls.theirs = mlserver_families()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        shutil.rmtree(cls.models, ignore_errors=True)

    def test_every_mlserver_family_has_its_type_samples_and_labels(self):
        for name, family in self.theirs.items():
            with self.subTest(family=name):
                self.assertIn(name, self.mine)
                mine = self.mine[name]
                self.assertEqual(mine["type"], family["type"])
                self.assertEqual(mine["samples"], family["samples"])
                for label in SAME_VALUES:
                    self.assertEqual(mine["values"].get(label), family["values"].get(label), label)
                for label in MORE_VALUES:
                    theirs = set(family["values"].get(label, []))
                    self.assertLessEqual(theirs, set(mine["values"].get(label, [])), label)

    def test_mlhosts_other_families_are_its_own(self):
        others = [name for name in self.mine if name not in self.theirs]
        self.assertTrue(others)
        for name in others:
            self.assertTrue(name.startswith("mlhost_"), name)


if __name__ == "__main__":
    unittest.main()
