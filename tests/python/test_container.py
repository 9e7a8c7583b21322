"""The container image: built by scripts/build-image (scripts/test builds it where buildah and
podman can run), run here with podman on loopback, asked to infer as a client would.

The image is FROM scratch and glibc-based: mlhost, ONNX Runtime's library, and the shared
libraries both need with the dynamic loader, nothing else (no shell). Its own loader (`ld.so
--list`, run in the image) says which libraries those are.

Skipped, saying why, only where podman or the image is not available.
"""

import json
import math
import os
import shutil
import socket
import struct
import subprocess
import tarfile
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from mlhost_server import ROOT

IMAGE = os.environ.get("MLHOST_IMAGE", "localhost/mlhost:latest")
PODMAN = shutil.which("podman")
# What works on these machines (../shared/notes/containers.md): vfs storage, runc, cgroupfs.
CONTAINERS_CONF = "[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = \"cgroupfs\"\n"
BINARY = "usr/local/bin/mlhost"
LIBRARY = "usr/local/lib/libonnxruntime.so"
# Measured: 85,184,720 bytes (81.2 MiB) for the `dist` build of 2026-12-04 (binary 43 MiB,
# libonnxruntime 33 MiB, glibc and libstdc++ 5 MiB); the limit leaves about 4 MiB of margin.
SIZE_LIMIT = 85 * 1024 * 1024
# Everything beside the binary (ONNX Runtime, the C and C++ libraries): checked on every image,
# including the tests' own, whose binary is the (larger) test build (scripts/test).
BESIDE_BINARY_LIMIT = 42 * 1024 * 1024
# A model committed with onnxruntime's own answers (runtimes/onnx/fixtures/README.md).
ONNX_FIXTURE = os.path.join(ROOT, "runtimes", "onnx", "fixtures", "logistic_regression")


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


def export_image(scratch):
    """The image's file system as a tar archive in `scratch` (from a container never started)."""
    created = podman("create", IMAGE)
    if created.returncode != 0:
        raise AssertionError(created.stderr)
    container = created.stdout.strip()
    try:
        archive = os.path.join(scratch, "image.tar")
        exported = podman("export", "-o", archive, container)
        if exported.returncode != 0:
            raise AssertionError(exported.stderr)
        return archive
    finally:
        podman("rm", "-f", container)


def elf_interpreter(data):
    """The ELF interpreter (PT_INTERP) a 64-bit little-endian executable names, from its start."""
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not a 64-bit LE ELF file"
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        kind, _, offset, _, _, size = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if kind == 3:  # PT_INTERP
            return data[offset:offset + size].rstrip(b"\0").decode()
    return None


def loader_list(interpreter, path):
    """What the image's own dynamic loader resolves for `path`: (paths, its whole output)."""
    listed = podman("run", "--rm", "--runtime", "runc", "--entrypoint", interpreter, IMAGE,
                    "--list", path)
    paths = set()
    for line in listed.stdout.splitlines():
        words = line.split()
        if "=>" in words and words[words.index("=>") + 1].startswith("/"):
            paths.add(words[words.index("=>") + 1])
        elif words and words[0].startswith("/"):
            paths.add(words[0])
    return listed, paths


SKIP = ("podman or the image %s is not available here (scripts/test builds it with "
        "scripts/build-image where buildah and podman can run)" % IMAGE)


@unittest.skipUnless(image_available(), SKIP)
class ContainerImageTest(unittest.TestCase):
    def test_the_image_is_small_and_configured(self):
        size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip())
        config = json.loads(podman("image", "inspect", IMAGE).stdout)[0]["Config"]
        with tempfile.TemporaryDirectory() as scratch:
            with tarfile.open(export_image(scratch)) as tar:
                binary_size = next(member.size for member in tar
                                   if member.name.strip("/").removeprefix("./") == BINARY)
        self.assertLess(size - binary_size, BESIDE_BINARY_LIMIT,
                        "the image is %d bytes, its binary %d" % (size, binary_size))
        if config.get("Labels", {}).get("mlhost.build") == "dist":
            self.assertLess(size, SIZE_LIMIT, "the image is %d bytes" % size)
        self.assertEqual(config["Entrypoint"], ["/" + BINARY])
        self.assertEqual(config["Cmd"], ["serve", "--models", "/mnt/models"])
        self.assertEqual(config["User"], "65532:65532")
        self.assertIn("MLHOST_ONNXRUNTIME_LIBRARY=/" + LIBRARY, config["Env"])
        self.assertIn("MLHOST_COMPILATION_CACHE_DIR=/tmp/mlhost-compiled", config["Env"])

    def test_the_image_holds_mlhost_onnxruntime_and_their_libraries_only(self):
        with tempfile.TemporaryDirectory() as scratch:
            with tarfile.open(export_image(scratch)) as tar:
                files = {member.name.strip("/").removeprefix("./"): member for member in tar}
                interpreter = elf_interpreter(tar.extractfile(files[BINARY]).read(1 << 16))
        self.assertIsNotNone(interpreter, "mlhost names no ELF interpreter")
        expected = {BINARY, LIBRARY, interpreter.lstrip("/")}
        for path in ("/" + BINARY, "/" + LIBRARY):
            listed, needed = loader_list(interpreter, path)
            self.assertEqual(listed.returncode, 0, listed.stderr)
            self.assertNotIn("not found", listed.stdout)
            expected |= {p.lstrip("/") for p in needed}
        # libc, libm, libgcc_s, libstdc++ and the loader, at least: the list is not trivially empty.
        self.assertGreaterEqual(len(expected), 7, expected)
        present = {path for path, member in files.items() if not member.isdir()}
        self.assertEqual(present, expected)
        self.assertTrue(all(files[path].isfile() for path in present), "links in the image")
        self.assertNotIn("bin/sh", files)
        tmp = files["tmp"]
        self.assertTrue(tmp.isdir())
        self.assertEqual((tmp.mode & 0o7777, tmp.uid, tmp.gid), (0o1777, 65532, 65532))
        self.assertEqual([path for path in files if path.startswith("tmp/")], [])
        # And there is no shell to run.
        shell = podman("run", "--rm", "--runtime", "runc", "--entrypoint", "/bin/sh", IMAGE,
                       "-c", "true")
        self.assertNotEqual(shell.returncode, 0)


@unittest.skipUnless(image_available(), SKIP)
class ContainerServingTest(unittest.TestCase):
    """One container serves a linear model (a built-in wasm runtime) and an ONNX model."""

    @classmethod
    def setUpClass(cls):
        cls.models = tempfile.mkdtemp()
        shutil.copytree(os.path.join(ROOT, "examples", "models", "house-prices"),
                        os.path.join(cls.models, "house-prices"))
        onnx = os.path.join(cls.models, "logistic-regression")
        os.mkdir(onnx)
        shutil.copy(os.path.join(ONNX_FIXTURE, "model.onnx"), onnx)
        with open(os.path.join(onnx, "model-settings.json"), "w") as f:
            json.dump({"name": "logistic-regression", "implementation": "onnx",
                       "parameters": {"uri": "./model.onnx"}}, f)
        os.chmod(cls.models, 0o755)
        http, grpc, cls.metrics = free_port(), free_port(), free_port()
        cls.name = "mlhost-test-%d" % os.getpid()
        run = podman("run", "--rm", "-d", "--name", cls.name, "--runtime", "runc",
                     "--network", "host", "-v", "%s:/mnt/models:ro" % cls.models,
                     "-e", "MLSERVER_HTTP_PORT=%d" % http, "-e", "MLSERVER_GRPC_PORT=%d" % grpc,
                     "-e", "MLHOST_METRICS_PORT=%d" % cls.metrics, "-e", "MLHOST_HOST=127.0.0.1",
                     IMAGE)
        if run.returncode != 0:
            shutil.rmtree(cls.models, ignore_errors=True)
            raise AssertionError(run.stderr)
        cls.base = "http://127.0.0.1:%d" % http
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(cls.base + "/v2/health/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                logs = podman("logs", cls.name).stderr
                cls.tearDownClass()
                raise AssertionError("not ready: %s" % logs)
            time.sleep(0.5)

    @classmethod
    def tearDownClass(cls):
        podman("rm", "-f", cls.name)
        shutil.rmtree(cls.models, ignore_errors=True)

    def get(self, path):
        with urllib.request.urlopen(self.base + path, timeout=30) as response:
            return json.loads(response.read())

    def infer(self, model, body):
        request = urllib.request.Request(self.base + "/v2/models/%s/infer" % model,
                                         data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            self.fail("%s: %s" % (error, error.read().decode()))

    def test_the_server_runs_as_65532(self):
        top = podman("top", self.name, "user", "group")
        self.assertEqual(top.returncode, 0, top.stderr)
        self.assertEqual(top.stdout.split()[2:], ["65532", "65532"], top.stdout)

    def test_the_image_serves_mounted_models(self):
        body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 3],
                            "data": [[1, 2, 4], [0.5, 0, -8]]}]}
        answer = self.infer("house-prices", body)
        # 150·x₀ + 12.5·x₁ − 0.75·x₂ + 20
        self.assertEqual(answer["outputs"][0]["data"], [192.0, 101.0])
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics, timeout=5) as response:
            self.assertIn("model_infer_request_success_total", response.read().decode())

    def test_an_onnx_model_is_served_by_the_native_backend(self):
        metadata = self.get("/v2/models/logistic-regression")
        self.assertEqual(metadata.get("parameters", {}).get("backend"), "native", metadata)
        with open(os.path.join(ONNX_FIXTURE, "expected.json")) as f:
            expected = json.load(f)
        rows = expected["batch"]["X"]
        answer = self.infer("logistic-regression", {
            "inputs": [{"name": "X", "datatype": "FP32", "shape": [len(rows), 4], "data": rows}],
            "outputs": [{"name": "label"}, {"name": "probabilities"}]})
        outputs = {output["name"]: output for output in answer["outputs"]}
        # onnxruntime's own answers (recorded by runtimes/onnx/fixtures/generate.py).
        self.assertEqual(outputs["label"]["data"], expected["label"])
        probabilities = outputs["probabilities"]["data"]
        flat = [p for row in expected["probabilities"] for p in row]
        self.assertEqual(len(probabilities), len(flat))
        for got, want in zip(probabilities, flat):
            self.assertTrue(math.isclose(got, want, abs_tol=1e-5), (got, want))


if __name__ == "__main__":
    unittest.main()
