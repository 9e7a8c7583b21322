"""Runs MLServer (1.7.1, from the venv running this script) on the comparison's requests and
writes the metric families it exports to the JSON file named by the first argument.

Used by scripts/record-mlserver-metrics, and by test_mlserver_metrics.py when MLSERVER_VENV
names a venv with MLServer installed.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mlserver_metrics import MODEL, describe, make_requests, scrape  # noqa: E402

# A model that answers its input (one column, as mlhost's linear model of the comparison takes):
# MLServer's custom-runtime interface, streams included.
RUNTIME = '''
from mlserver import MLModel
from mlserver.types import InferenceResponse, ResponseOutput


class Echo(MLModel):
    async def load(self):
        return True

    async def predict(self, payload):
        tensor = payload.inputs[0]
        if tensor.shape[-1] != 1:
            raise ValueError("x takes one column")
        return InferenceResponse(model_name=self.name, outputs=[ResponseOutput(
            name="y", datatype=tensor.datatype, shape=tensor.shape, data=tensor.data)])

    async def predict_stream(self, payloads):
        async for payload in payloads:
            yield await self.predict(payload)
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(out):
    import mlserver
    from mlserver.grpc import dataplane_pb2

    folder = tempfile.mkdtemp(prefix="mlserver-")
    http, grpc_port, metrics = free_port(), free_port(), free_port()
    with open(os.path.join(folder, "settings.json"), "w") as f:
        json.dump({"host": "127.0.0.1", "http_port": http, "grpc_port": grpc_port,
                   "metrics_port": metrics}, f)
    os.makedirs(os.path.join(folder, MODEL))
    with open(os.path.join(folder, MODEL, "model-settings.json"), "w") as f:
        json.dump({"name": MODEL, "implementation": "model.Echo",
                   "max_batch_size": 4, "max_batch_time": 0.01}, f)
    with open(os.path.join(folder, MODEL, "model.py"), "w") as f:
        f.write(RUNTIME)
    env = dict(os.environ, PYTHONPATH=os.path.join(folder, MODEL))
    mlserver_bin = os.path.join(os.path.dirname(sys.executable), "mlserver.exe" if os.name == "nt" else "mlserver")
    process = subprocess.Popen([mlserver_bin, "start", folder], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/v2/models/%s/ready" % (http, MODEL),
                                            timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("MLServer did not start")
            time.sleep(0.5)
        make_requests("127.0.0.1:%d" % http, "127.0.0.1:%d" % grpc_port, dataplane_pb2)
        time.sleep(1)  # the workers' multiprocess metric files catch up
        families = describe(scrape("http://127.0.0.1:%d/metrics" % metrics))
    finally:
        process.terminate()
        process.wait(30)
        shutil.rmtree(folder, ignore_errors=True)
    with open(out, "w") as f:
        json.dump({"mlserver": mlserver.__version__, "families": families}, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
