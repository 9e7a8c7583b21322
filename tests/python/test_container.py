"""The container image: built by scripts/build-image (scripts/test builds it where buildah and
podman can run), run here with podman on loopback, asked to infer as a client would.

Skipped, saying why, only where podman or the image is not available.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

from mlhost_server import ROOT

IMAGE = "localhost/mlhost:latest"
PODMAN = shutil.which("podman")
# What works on these machines (../shared/notes/containers.md): vfs storage, runc, cgroupfs.
CONTAINERS_CONF = "[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = \"cgroupfs\"\n"


def podman(*args, **kwargs):
    conf = os.path.join(tempfile.gettempdir(), "mlhost-containers.conf")
    with open(conf, "w") as f:
        f.write(CONTAINERS_CONF)
    env = dict(os.environ, CONTAINERS_CONF=conf)
    return subprocess.run([PODMAN, "--storage-driver", "vfs", *args], env=env,
                          capture_output=True, text=True, **kwargs)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def image_available():
    return PODMAN is not None and podman("image", "exists", IMAGE).returncode == 0


@unittest.skipUnless(image_available(),
                     "podman or the image %s is not available here (scripts/test builds it with "
                     "scripts/build-image where buildah and podman can run)" % IMAGE)
class ContainerImageTest(unittest.TestCase):
    def test_the_image_is_small_and_static(self):
        size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip())
        self.assertLess(size, 50 * 1024 * 1024, "the image is %d bytes" % size)
        config = json.loads(podman("image", "inspect", IMAGE).stdout)[0]["Config"]
        self.assertEqual(config["Cmd"], ["serve", "--models", "/mnt/models"])
        self.assertEqual(config["User"], "65532:65532")

    def test_the_image_serves_mounted_models(self):
        models = tempfile.mkdtemp()
        shutil.copytree(os.path.join(ROOT, "examples", "models", "house-prices"),
                        os.path.join(models, "house-prices"))
        os.chmod(models, 0o755)
        http, grpc, metrics = free_port(), free_port(), free_port()
        name = "mlhost-test-%d" % os.getpid()
        run = podman("run", "--rm", "-d", "--name", name, "--runtime", "runc", "--network", "host",
                     "-v", "%s:/mnt/models:ro" % models,
                     "-e", "MLSERVER_HTTP_PORT=%d" % http, "-e", "MLSERVER_GRPC_PORT=%d" % grpc,
                     "-e", "MLHOST_METRICS_PORT=%d" % metrics, "-e", "MLHOST_HOST=127.0.0.1", IMAGE)
        self.assertEqual(run.returncode, 0, run.stderr)
        try:
            base = "http://127.0.0.1:%d" % http
            deadline = time.time() + 120
            while True:
                try:
                    with urllib.request.urlopen(base + "/v2/health/ready", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if time.time() > deadline:
                    self.fail("not ready: %s" % podman("logs", name).stderr)
                time.sleep(0.5)
            body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 3],
                                "data": [[1, 2, 4], [0.5, 0, -8]]}]}
            request = urllib.request.Request(base + "/v2/models/house-prices/infer",
                                             data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = json.loads(response.read())
            # 150·x₀ + 12.5·x₁ − 0.75·x₂ + 20
            self.assertEqual(answer["outputs"][0]["data"], [192.0, 101.0])
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics, timeout=5) as response:
                self.assertIn("model_infer_request_success_total", response.read().decode())
        finally:
            podman("rm", "-f", name)
            shutil.rmtree(models, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
