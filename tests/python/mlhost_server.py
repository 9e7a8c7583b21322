"""Starts the mlhost binary for the client tests.

MLHOST_BIN names the binary (default target/debug/mlhost). The server runs on free ports (port 0
everywhere) and writes the ports it bound to its port file (`serve --port-file`), which gives the
addresses it listens on.
"""

import http.client
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("MLHOST_BIN", os.path.join(ROOT, "target", "debug", "mlhost"))
# The compilation cache the Rust end-to-end tests fill (tests/e2e/support.rs): each runtime
# compiles once per test run, whichever tests load it first.
CACHE = os.path.join(ROOT, "target", "tmp", "mlhost-compiled")
HOST = "127.0.0.1"
# How long the server has to bind its ports and load its models (a first start compiling every
# example takes about 35 s alone on 2 quiet cores; as tests/e2e/support.rs READY_TIMEOUT).
START_TIMEOUT = 300


class Server:
    """A running `mlhost serve`, stopped on close.

    `http` and `grpc` are the addresses (host:port) of the two front ends; `metrics` is the URL of
    the metrics endpoint (`metrics_endpoint`, /metrics unless the repository's settings.json
    says otherwise), or None when the metrics server is off.
    """

    def __init__(self, models, metrics_endpoint="/metrics", extra_env=None):
        # One compilation cache for the test run: each runtime compiles once. `extra_env`:
        # more variables for the server.
        self.owned = None
        env = dict(os.environ, RUST_LOG="info", MLHOST_COMPILATION_CACHE_DIR=CACHE)
        env.update(extra_env or {})
        self.port_dir = tempfile.mkdtemp(prefix="mlhost-ports-")
        port_file = os.path.join(self.port_dir, "ports.json")
        self.process = subprocess.Popen(
            [BINARY, "serve", "--models", models, "--host", HOST,
             "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0",
             "--port-file", port_file],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True,
        )
        # The log is kept for error messages (and read so that the pipe never fills).
        self.lines = []
        self.reader = threading.Thread(target=self._read_logs, daemon=True)
        self.reader.start()
        deadline = time.monotonic() + START_TIMEOUT
        ports = self._wait_for_port_file(port_file, deadline)
        self.http = "%s:%d" % (HOST, ports["http"])
        self.grpc = "%s:%d" % (HOST, ports["grpc"])
        metrics = ports.get("metrics")
        self.metrics = None if metrics is None else "http://%s:%d%s" % (HOST, metrics, metrics_endpoint)
        self._wait_ready(deadline)

    def _read_logs(self):
        for line in self.process.stderr:
            self.lines.append(line)

    def _fail(self, what):
        self.close()
        # The process is gone: its stderr ends, and the reader with it.
        self.reader.join(5)
        raise RuntimeError("mlhost %s: %s" % (what, self.lines))

    def _wait_for_port_file(self, path, deadline):
        """The port file's ports, once the server has written it (atomically, so whole)."""
        while time.monotonic() < deadline:
            try:
                with open(path) as f:
                    return json.load(f)
            except FileNotFoundError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.01)
        self._fail("did not start")

    def _wait_ready(self, deadline):
        """Polls /v2/health/ready until it answers 200 (the models have loaded)."""
        host, port = self.http.rsplit(":", 1)
        while time.monotonic() < deadline:
            connection = http.client.HTTPConnection(host, int(port), timeout=5)
            try:
                connection.request("GET", "/v2/health/ready")
                if connection.getresponse().status == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            finally:
                connection.close()
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        self._fail("did not become ready")

    def close(self):
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.port_dir, ignore_errors=True)
        if self.owned is not None:
            shutil.rmtree(self.owned, ignore_errors=True)


def serve_examples(*names, settings=None, **options):
    """A Server on a temporary copy of examples/models (only the models `names`, when given),
    with `settings` written as its settings.json; closing it removes the copy. `options` go to
    Server."""
    models = tempfile.mkdtemp()
    examples = os.path.join(ROOT, "examples", "models")
    try:
        if names:
            for name in names:
                shutil.copytree(os.path.join(examples, name), os.path.join(models, name))
        else:
            shutil.copytree(examples, models, dirs_exist_ok=True)
        if settings is not None:
            with open(os.path.join(models, "settings.json"), "w") as f:
                json.dump(settings, f)
        server = Server(models, **options)
    except BaseException:
        shutil.rmtree(models, ignore_errors=True)
        raise
    server.owned = models
    return server


def iris_probabilities(rows):
    """The iris example's class probabilities for `rows`, computed with NumPy from its
    linear.json (a softmax of the scores): what the server must answer."""
    with open(os.path.join(ROOT, "examples", "models", "iris", "linear.json")) as f:
        model = json.load(f)
    scores = rows @ np.array(model["coefficients"]).T + np.array(model["intercepts"])
    expected = np.exp(scores - scores.max(axis=1, keepdims=True))
    return expected / expected.sum(axis=1, keepdims=True)
