"""Starts the mlhost binary for the client tests.

MLHOST_BIN names the binary (default target/debug/mlhost). The server runs on free ports; its
log lines give the addresses it listens on.
"""

import os
import re
import subprocess
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("MLHOST_BIN", os.path.join(ROOT, "target", "debug", "mlhost"))
CACHE = os.path.join(ROOT, "target", "tmp", "mlhost-python-compiled")


class Server:
    """A running `mlhost serve`, stopped on close."""

    def __init__(self, models):
        # One compilation cache for the test run: each runtime compiles once.
        env = dict(os.environ, RUST_LOG="info", MLHOST_COMPILATION_CACHE_DIR=CACHE)
        self.process = subprocess.Popen(
            [BINARY, "serve", "--models", models, "--host", "127.0.0.1",
             "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0"],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True,
        )
        self.grpc = None
        self.http = None
        self.metrics = None
        self.ready = threading.Event()
        self.lines = []
        threading.Thread(target=self._read_logs, daemon=True).start()
        if not self.ready.wait(60):
            self.close()
            raise RuntimeError("mlhost did not start: %s" % self.lines)

    def _read_logs(self):
        for line in self.process.stderr:
            self.lines.append(line)
            found = re.search(r"gRPC server listening on (\S+)", line)
            if found:
                self.grpc = found.group(1)
            found = re.search(r"REST server listening on http://(\S+)", line)
            if found:
                self.http = found.group(1)
            found = re.search(r"metrics server listening on (http://\S+)", line)
            if found:
                self.metrics = found.group(1)
            if "server ready" in line:
                self.ready.set()

    def close(self):
        self.process.kill()
        self.process.wait()
