"""The requests the MLServer metrics comparison makes, and how it reads a metrics page.

Shared by scripts/record-mlserver-metrics (which runs MLServer 1.7.1 and records its families in
tests/python/mlserver-1.7.1-metrics.json) and test_mlserver_metrics.py (which runs mlhost on the
same requests and compares). Only the standard library, grpcio and prometheus_client are used,
so that both environments (MLServer's own venv and the tests' venv) can import it.
"""

import json
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

# The model both servers serve under this name: one FP64 input `x` of shape [n, 1].
MODEL = "m"
SERVICE = "/inference.GRPCInferenceService/"
INPUT = {"name": "x", "datatype": "FP64", "shape": [1, 1], "data": [1.0]}
TWO_COLUMNS = {"name": "x", "datatype": "FP64", "shape": [1, 2], "data": [1.0, 2.0]}


def _http(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _infer_request(pb):
    tensor = pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP64", shape=[1, 1])
    tensor.contents.fp64_contents.extend([1.0])
    return pb.ModelInferRequest(model_name=MODEL, inputs=[tensor])


def make_requests(http, grpc_address, pb):
    """The same requests to either server: REST health, metadata, readiness, inferences that
    succeed and fail (a body that is not a request, a request the model refuses); gRPC
    ServerLive, ModelInfer and a ModelStreamInfer of two messages. `pb` is a module with the
    protocol's messages (MLServer's or tritonclient's)."""
    import grpc

    base = "http://" + http
    statuses = [
        _http(base, "GET", "/v2/health/live"),
        _http(base, "GET", "/v2/health/ready"),
        _http(base, "GET", "/v2/models/%s/ready" % MODEL),
        _http(base, "GET", "/v2/models/%s" % MODEL),
        _http(base, "POST", "/v2/models/%s/infer" % MODEL, {"inputs": [INPUT]}),
        _http(base, "POST", "/v2/models/%s/infer" % MODEL, {"inputs": [INPUT]}),
        _http(base, "POST", "/v2/models/%s/infer" % MODEL, {"inputs": "no"}),
        # The model refuses two columns: a failed inference.
        _http(base, "POST", "/v2/models/%s/infer" % MODEL, {"inputs": [TWO_COLUMNS]}),
    ]
    assert statuses[:6] == [200] * 6, statuses
    with grpc.insecure_channel(grpc_address) as channel:
        raw = lambda data: data  # noqa: E731 (the responses are not read)
        channel.unary_unary(SERVICE + "ServerLive", request_serializer=pb.ServerLiveRequest.SerializeToString,
                            response_deserializer=raw)(pb.ServerLiveRequest(), timeout=30)
        request = _infer_request(pb)
        channel.unary_unary(SERVICE + "ModelInfer", request_serializer=pb.ModelInferRequest.SerializeToString,
                            response_deserializer=raw)(request, timeout=30)
        stream = channel.stream_stream(SERVICE + "ModelStreamInfer",
                                       request_serializer=pb.ModelInferRequest.SerializeToString,
                                       response_deserializer=raw)
        # MLServer 1.7.1 answers such a stream once; mlhost answers each message.
        answers = list(stream(iter([request, request]), timeout=30))
        assert answers, answers


def scrape(url):
    """The families of a metrics page, read by Prometheus' Python parser (text format 0.0.4)."""
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    return list(text_string_to_metric_families(text))


# The labels whose values are compared too: what a dashboard selects on.
COMPARED_LABELS = ("app_name", "method", "path", "grpc_type", "grpc_service", "grpc_method",
                   "model", "version", "model_name", "model_version")


def describe(families):
    """Each family that has samples: its type, for each sample name its label names, and the
    values seen of the labels dashboards select on."""
    described = {}
    for family in families:
        samples, values = {}, {}
        for sample in family.samples:
            labels = sorted(name for name in sample.labels if name not in ("le", "quantile"))
            samples.setdefault(sample.name, labels)
            for name in COMPARED_LABELS:
                if name in sample.labels:
                    values.setdefault(name, set()).add(sample.labels[name])
        if samples:
            described[family.name] = {"type": family.type, "samples": samples,
                                      "values": {name: sorted(v) for name, v in values.items()}}
    return described
