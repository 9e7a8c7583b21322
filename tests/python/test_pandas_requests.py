"""Multi-column requests (mlserver.codecs.PandasCodec: one input per column, content type "pd")
to the built-in runtimes: answered as MLServer 1.7.1's runtimes answer them, and with the same
numbers as the matrix request.

pandas/requests.json holds the requests exactly as PandasCodec.encode_request wrote them, and
MLServer's own answers (mlserver_xgboost, mlserver_lightgbm, mlserver_sklearn), recorded by
pandas/generate.py with the models of pandas/models (MLServer's pins conflict with this venv's,
so it ran in a venv of its own). The ONNX models (which MLServer has no runtime for) are the
iris example, on the sandboxed backend and on the native one when the server has it, and
scikit-learn's column-transformer pipeline (one graph input per column; native only).
"""

import copy
import http.client
import json
import os
import shutil
import tempfile
import unittest

import numpy as np
import tritonclient.grpc as grpcclient

from mlhost_server import ROOT, Server

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "pandas")
IRIS = os.path.join(ROOT, "examples", "models", "onnx-iris", "model.onnx")
CHURN = os.path.join(ROOT, "runtimes", "onnx", "fixtures", "sklearn", "column_transformer_pipeline",
                     "model.onnx")
NUMPY = {"BOOL": np.bool_, "INT32": np.int32, "INT64": np.int64, "FP32": np.float32,
         "FP64": np.float64}
IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def onnx_model(folder, name, graph, backend, inputs=None):
    os.makedirs(os.path.join(folder, name))
    shutil.copy(graph, os.path.join(folder, name, "model.onnx"))
    settings = {"implementation": "onnx", "backend": backend}
    if inputs:
        settings["inputs"] = inputs
    with open(os.path.join(folder, name, "model-settings.json"), "w") as f:
        json.dump(settings, f)


def columns(request):
    """The request's columns as NumPy arrays, by name."""
    return {i["name"]: np.array([np.nan if v is None else v for v in i["data"]],
                                dtype=NUMPY.get(i["datatype"], object))
            for i in request["inputs"]}


class PandasRequestsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(FIXTURES, "requests.json")) as f:
            cls.recorded = json.load(f)["requests"]
        cls.models = tempfile.mkdtemp()
        for name in ("xgboost", "lightgbm", "linear"):
            shutil.copytree(os.path.join(FIXTURES, "models", name), os.path.join(cls.models, name))
        onnx_model(cls.models, "iris-sandboxed", IRIS, "sandboxed")
        onnx_model(cls.models, "iris-auto", IRIS, "auto")
        # Declared inputs, one per column, name the columns of the graph's one [N, 4] input.
        onnx_model(cls.models, "iris-declared", IRIS, "sandboxed", inputs=[
            {"name": name, "datatype": "FP64", "shape": [-1, 1]} for name in IRIS_COLUMNS])
        onnx_model(cls.models, "churn", CHURN, "native")
        cls.server = Server(cls.models)

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        shutil.rmtree(cls.models, ignore_errors=True)

    def call(self, method, path, body=None):
        host, port = self.server.http.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            payload = None if body is None else json.dumps(body)
            connection.request(method, path, payload, {"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            connection.close()

    def infer(self, model, body, status=200):
        code, answer = self.call("POST", "/v2/models/%s/infer" % model, body)
        self.assertEqual(code, status, answer)
        return answer

    def metadata(self, model):
        code, answer = self.call("GET", "/v2/models/%s" % model)
        return answer if code == 200 else None

    def assert_same_outputs(self, mine, theirs, rtol=0.0):
        self.assertEqual([o["name"] for o in mine], [o["name"] for o in theirs])
        for a, b in zip(mine, theirs):
            shape = b["shape"]
            if a["shape"] + [1] == shape:
                # The linear runtime's labels are [N] where MLServer's scikit-learn runtime
                # answers [N, 1] (its NumPy codec's column): the same numbers.
                shape = a["shape"]
            self.assertEqual((a["datatype"], a["shape"]), (b["datatype"], shape), a["name"])
            if a["datatype"] in ("FP32", "FP64") and rtol:
                np.testing.assert_allclose(a["data"], b["data"], rtol=rtol, err_msg=a["name"])
            else:
                self.assertEqual(a["data"], b["data"], a["name"])

    def matrix_request(self, model, request, outputs):
        """The request's rows as one matrix of the model's input datatype, columns in the
        model's order, each cast from its own datatype (as the library casts a DataFrame)."""
        (matrix,) = self.metadata(model)["inputs"]
        names = json.loads(matrix["parameters"]["feature_names"])
        data = columns(request)
        dtype = NUMPY[matrix["datatype"]]
        rows = np.stack([data[name].astype(dtype) for name in names], axis=1)
        values = [None if np.isnan(v) else float(v) for v in rows.ravel()]
        return {"inputs": [{"name": matrix["name"], "datatype": matrix["datatype"],
                            "shape": list(rows.shape), "data": values}],
                "outputs": outputs}

    def test_trees_and_linear_answer_as_mlserver_and_as_the_matrix(self):
        for request_name, recorded in self.recorded.items():
            for model, theirs in recorded["mlserver"].items():
                with self.subTest(request=request_name, model=model):
                    body = copy.deepcopy(recorded["request"])
                    body["outputs"] = [{"name": o["name"]} for o in theirs]
                    mine = self.infer(model, body)["outputs"]
                    self.assert_same_outputs(mine, theirs, rtol=1e-6)
                    # Columns are found by name, in any order.
                    body["inputs"].reverse()
                    self.assert_same_outputs(self.infer(model, body)["outputs"], mine)
                    # The matrix's values as JSON text: FP32 columns in an FP64 matrix take 17
                    # digits, which serde_json reads to within an ULP (it does not round
                    # correctly): the answers agree to 1e-12, not bit for bit.
                    matrix = self.matrix_request(model, recorded["request"], body["outputs"])
                    self.assert_same_outputs(self.infer(model, matrix)["outputs"], mine,
                                             rtol=1e-12)

    def test_the_metadata_names_the_columns(self):
        for model in ("xgboost", "lightgbm", "linear"):
            (matrix,) = self.metadata(model)["inputs"]
            self.assertEqual(json.loads(matrix["parameters"]["feature_names"]),
                             ["age", "height", "member", "score", "visits"], model)

    def test_onnx_takes_columns_in_order_or_by_declared_name(self):
        request = self.recorded["iris"]["request"]
        data = columns(request)
        rows = np.stack([data[name].astype(np.float32) for name in IRIS_COLUMNS], axis=1)
        (graph_input,) = self.metadata("iris-sandboxed")["inputs"]
        matrix = {"inputs": [{"name": graph_input["name"], "datatype": "FP32", "shape": [3, 4],
                              "data": rows.ravel().tolist()}]}
        backend = self.metadata("iris-auto")["parameters"]["backend"]
        models = ["iris-sandboxed"] + (["iris-auto"] if backend == "native" else [])
        for model in models:
            with self.subTest(model=model):
                expected = self.infer(model, matrix)["outputs"]
                self.assert_same_outputs(self.infer(model, request)["outputs"], expected)
        # With its columns declared, the model finds them by name in any order.
        expected = self.infer("iris-sandboxed", matrix)["outputs"]
        shuffled = copy.deepcopy(request)
        shuffled["inputs"].reverse()
        for body in (request, shuffled):
            self.assert_same_outputs(self.infer("iris-declared", body)["outputs"], expected)
        if backend != "native":
            self.skipTest("the server has no ONNX Runtime: the native backend was not tried")

    def test_a_graph_of_one_input_per_column_takes_the_dataframe(self):
        if self.metadata("churn") is None:
            self.skipTest("the server has no ONNX Runtime (the pipeline needs the native backend)")
        request = self.recorded["churn"]["request"]
        typed = copy.deepcopy(request)
        del typed["parameters"]
        for tensor in typed["inputs"]:
            if tensor["datatype"] != "BYTES":
                tensor["datatype"] = "FP32"
        expected = self.infer("churn", typed)["outputs"]
        self.assert_same_outputs(self.infer("churn", request)["outputs"], expected)

    def test_missing_unknown_and_mistyped_columns_are_named(self):
        request = copy.deepcopy(self.recorded["mixed"]["request"])
        request["inputs"] = [i for i in request["inputs"] if i["name"] != "score"]
        extra = dict(request["inputs"][0], name="extra")
        request["inputs"].append(extra)
        for model in ("xgboost", "lightgbm", "linear"):
            error = self.infer(model, request, status=400)["error"]
            self.assertIn("missing column(s) 'score'", error)
            self.assertIn("unknown column(s) 'extra'", error)
        three = copy.deepcopy(self.recorded["iris"]["request"])
        three["inputs"].pop()
        error = self.infer("iris-sandboxed", three, status=400)["error"]
        self.assertIn("3 column(s) but model 'iris-sandboxed' takes 4 features", error)
        text = copy.deepcopy(self.recorded["iris"]["request"])
        text["inputs"][1] = {"name": "sepal_width", "datatype": "BYTES", "shape": [3, 1],
                             "data": ["a", "b", "c"], "parameters": {"content_type": "str"}}
        error = self.infer("iris-declared", text, status=400)["error"]
        self.assertIn("column 'sepal_width' is BYTES but model 'iris-declared' takes FP32", error)

    def test_grpc_takes_the_columns_too(self):
        recorded = self.recorded["mixed"]
        client = grpcclient.InferenceServerClient(self.server.grpc)
        inputs = []
        for name, values in columns(recorded["request"]).items():
            tensor = grpcclient.InferInput(name, [len(values), 1],
                                           {np.bool_: "BOOL"}.get(values.dtype.type) or
                                           next(k for k, v in NUMPY.items() if v == values.dtype.type))
            tensor.set_data_from_numpy(values.reshape(-1, 1))
            inputs.append(tensor)
        outputs = [grpcclient.InferRequestedOutput("predict_proba")]
        result = client.infer("xgboost", inputs, outputs=outputs, parameters={"content_type": "pd"})
        theirs = recorded["mlserver"]["xgboost"][1]
        np.testing.assert_allclose(result.as_numpy("predict_proba").ravel(), theirs["data"],
                                   rtol=1e-6)


if __name__ == "__main__":
    unittest.main()
