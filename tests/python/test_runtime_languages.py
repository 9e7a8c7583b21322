"""Runtimes in Python (componentize-py) and JavaScript (jco componentize), end to end.

For each language: `mlhost init` writes a project, `mlhost build` turns it into a component and
checks its world, `mlhost serve` serves it, and `mlhost infer` (REST and gRPC) prints what the
runtime computed. The Rust runtime's same path is tested in tests/e2e/authoring.rs.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from mlhost_server import BINARY, Server

# The virtual environment's tools (componentize-py) come first on the PATH of `mlhost build`.
TOOLS_ENV = dict(
    os.environ,
    PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
)


def mlhost(*args, env=None):
    return subprocess.run([BINARY, *args], capture_output=True, text=True, env=env,
                          timeout=900)


class RuntimeLanguages(unittest.TestCase):
    def serve_a_new_runtime(self, language):
        with tempfile.TemporaryDirectory() as root:
            project = os.path.join(root, "demo")
            init = mlhost("init", "demo", "--lang", language, "--dir", project)
            self.assertEqual(init.returncode, 0, init.stderr)
            self.assertTrue(os.path.isfile(os.path.join(project, "wit", "runtime.wit")))

            build = mlhost("build", project, env=TOOLS_ENV)
            self.assertEqual(build.returncode, 0, build.stdout + build.stderr)
            self.assertIn("implements mlhost:runtime/runtime@0.1.2", build.stdout)
            self.assertTrue(os.path.isfile(os.path.join(project, "build", "demo.wasm")))
            # The factor comes from model-settings.json (the template's 2 is also the default).
            settings_file = os.path.join(project, "model-settings.json")
            with open(settings_file) as f:
                settings = json.load(f)
            settings["parameters"]["extra"]["factor"] = 3
            with open(settings_file, "w") as f:
                json.dump(settings, f)

            server = Server(project)
            try:
                request = os.path.join(project, "request.json")
                for transport, address in (("rest", server.http), ("grpc", server.grpc)):
                    infer = mlhost("infer", "demo", "-u", address, "-t", transport,
                                   "-i", request)
                    self.assertEqual(infer.returncode, 0, infer.stderr)
                    self.assertIn("y FP64 [2, 2] = [[3.0,6.0],[9.0,12.0]]", infer.stdout)
                # FP32 in, FP64 out.
                infer = mlhost("infer", "demo", "-u", server.http,
                               "--tensor", "x:FP32:3=0.5,-1,10")
                self.assertEqual(infer.returncode, 0, infer.stderr)
                self.assertIn("y FP64 [3] = [1.5,-3.0,30.0]", infer.stdout)
                # The runtime's invalid-input error reaches the client as a 400.
                missing = mlhost("infer", "demo", "-u", server.http, "--tensor", "z=1")
                self.assertNotEqual(missing.returncode, 0)
                self.assertIn("400", missing.stderr)
                strings = mlhost("infer", "demo", "-u", server.http,
                                 "--tensor", "x:BYTES=a,b")
                self.assertIn("400", strings.stderr)
            finally:
                server.close()

    def test_python_runtime(self):
        if shutil.which("componentize-py", path=TOOLS_ENV["PATH"]) is None:
            self.skipTest("componentize-py is not installed (tests/python/requirements.txt)")
        self.serve_a_new_runtime("python")

    def test_javascript_runtime(self):
        if shutil.which("npm") is None:
            self.skipTest("npm is not installed")
        self.serve_a_new_runtime("js")


if __name__ == "__main__":
    unittest.main()
