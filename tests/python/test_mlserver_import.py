"""`mlhost convert` and `mlhost import`, as an MLServer user runs them.

- convert: the joblib models of MLServer scikit-learn folders (a logistic regression, a random
  forest, a pipeline with a scaler and a one-hot encoder) converted beside their pickles with the
  inputs their model-settings.json declares; the folders, unchanged otherwise, then serve
  scikit-learn's answers on mlhost (labels exactly, probabilities to 1e-5).
- import: an MLServer repository with one model of each kind (an XGBoost model served as is, a
  scikit-learn pickle converted, MLflow folders mapped or converted, a custom Python runtime
  that needs work): the report, the exit code, and the imported repository served.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import joblib
import numpy as np
import tritonclient.http as httpclient
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlhost_server import BINARY, ROOT, Server

# The converter runs in this test's Python (it has scikit-learn, skl2onnx and onnxruntime).
ENV = dict(os.environ, MLHOST_PYTHON=sys.executable)


def data():
    x, y = make_classification(n_samples=240, n_features=4, n_informative=3, n_redundant=0,
                               n_classes=3, random_state=5)
    return x.astype(np.float32), y


def mixed_rows():
    """Two numeric columns and a text one, as an object array."""
    x, y = data()
    cities = np.array(["paris", "lyon", "nice"])[np.arange(len(y)) % 3]
    return np.concatenate([x[:, :2].astype(object), cities[:, None]], axis=1), y


def mlserver_folder(root, name, model, inputs=None):
    """An MLServer scikit-learn model folder: model.joblib and its model-settings.json."""
    folder = os.path.join(root, name)
    os.makedirs(folder)
    joblib.dump(model, os.path.join(folder, "model.joblib"))
    settings = {"name": name, "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "v1"}}
    if inputs:
        settings["inputs"] = inputs
    with open(os.path.join(folder, "model-settings.json"), "w") as file:
        json.dump(settings, file)
    return folder


def mlhost(*args):
    return subprocess.run([BINARY, *args], capture_output=True, text=True, env=ENV)


def tensor(name, array, datatype):
    value = httpclient.InferInput(name, list(array.shape), datatype)
    value.set_data_from_numpy(array, binary_data=True)
    return value


def models(root):
    """Three MLServer folders; returns the fitted models and the requests' inputs for them."""
    x, y = data()
    rows, labels = mixed_rows()
    logistic = LogisticRegression(max_iter=500).fit(x[:200], y[:200])
    forest = RandomForestClassifier(n_estimators=8, max_depth=4, random_state=0).fit(x[:200], y[:200])
    pipeline = Pipeline([
        ("columns", ColumnTransformer([("scale", StandardScaler(), [0, 1]),
                                       ("city", OneHotEncoder(handle_unknown="ignore"), [2])])),
        ("classifier", LogisticRegression(max_iter=500)),
    ]).fit(rows[:200], labels[:200])
    mlserver_folder(root, "iris-like", logistic,
                    [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}])
    mlserver_folder(root, "forest", forest)
    mlserver_folder(root, "churn", pipeline,
                    [{"name": "a", "datatype": "FP32", "shape": [-1, 1]},
                     {"name": "b", "datatype": "FP32", "shape": [-1, 1]},
                     {"name": "city", "datatype": "BYTES", "shape": [-1, 1]}])
    held_out, held_rows = x[200:], rows[200:]
    columns = [tensor("a", held_rows[:, 0:1].astype(np.float32), "FP32"),
               tensor("b", held_rows[:, 1:2].astype(np.float32), "FP32"),
               tensor("city", held_rows[:, 2:3].astype(object), "BYTES")]
    return {
        "iris-like": (logistic, held_out, [tensor("input-0", held_out, "FP32")]),
        "forest": (forest, held_out, [tensor("X", held_out, "FP32")]),
        "churn": (pipeline, held_rows, columns),
    }


class ConvertAndImport(unittest.TestCase):
    def check_answers(self, server, expected):
        client = httpclient.InferenceServerClient(server.http)
        for name, (model, rows, inputs) in expected.items():
            result = client.infer(name, inputs)
            np.testing.assert_array_equal(result.as_numpy("label"), model.predict(rows), name)
            np.testing.assert_allclose(result.as_numpy("probabilities"),
                                       model.predict_proba(rows), atol=1e-5, err_msg=name)

    def test_convert_writes_model_onnx_beside_the_pickle_and_the_folder_serves(self):
        with tempfile.TemporaryDirectory() as root:
            expected = models(root)
            for name in expected:
                converted = mlhost("convert", os.path.join(root, name, "model.joblib"),
                                   "--rows", "50")
                self.assertEqual(converted.returncode, 0, converted.stdout + converted.stderr)
                self.assertIn("checked on 50 random rows", converted.stdout)
                self.assertIn("mlhost serves", converted.stdout)
                self.assertTrue(os.path.isfile(os.path.join(root, name, "model.onnx")))
            # A signature that does not fit the model is refused, and nothing is written.
            bad = mlserver_folder(root, "bad", LogisticRegression().fit(*data()),
                                  [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}])
            refused = mlhost("convert", os.path.join(bad, "model.joblib"))
            self.assertNotEqual(refused.returncode, 0)
            self.assertIn("the model takes 4", refused.stderr)
            self.assertFalse(os.path.exists(os.path.join(bad, "model.onnx")))
            shutil.rmtree(bad)
            missing = mlhost("convert", os.path.join(root, "missing.joblib"))
            self.assertNotEqual(missing.returncode, 0)
            self.assertIn("no such file", missing.stderr)

            server = Server(root)
            try:
                self.check_answers(server, expected)
            finally:
                server.close()

    def test_import_converts_maps_and_reports_what_needs_work(self):
        with tempfile.TemporaryDirectory() as scratch:
            repo = os.path.join(scratch, "mlserver")
            os.makedirs(repo)
            with open(os.path.join(repo, "settings.json"), "w") as file:
                json.dump({"debug": False, "parallel_workers": 1}, file)
            expected = {name: value for name, value in models(repo).items() if name != "forest"}
            shutil.rmtree(os.path.join(repo, "forest"))
            # As is: an XGBoost model under MLServer's runtime.
            xgb = os.path.join(repo, "xgb")
            shutil.copytree(os.path.join(ROOT, "runtimes/trees/fixtures/xgboost-binary"), xgb)
            with open(os.path.join(xgb, "model-settings.json"), "w") as file:
                json.dump({"name": "xgb", "implementation": "mlserver_xgboost.XGBoostModel",
                           "parameters": {"uri": "./model.json"}}, file)
            # MLflow folders under MLServer's MLflow runtime: an ONNX flavour, a sklearn pickle.
            for name, fixture in [("mlflow-onnx", "onnx-named"), ("mlflow-sklearn", "sklearn-pickle")]:
                folder = os.path.join(repo, name)
                shutil.copytree(os.path.join(ROOT, "tests/fixtures/mlflow", fixture),
                                os.path.join(folder, "model"))
                with open(os.path.join(folder, "model-settings.json"), "w") as file:
                    json.dump({"name": name, "implementation": "mlserver_mlflow.MLflowRuntime",
                               "parameters": {"uri": "./model"}}, file)
            # A custom Python runtime.
            custom = os.path.join(repo, "custom")
            os.makedirs(custom)
            with open(os.path.join(custom, "model-settings.json"), "w") as file:
                json.dump({"name": "custom", "implementation": "models.MyCustomRuntime"}, file)

            # A model file outside its folder: a runtime reads its own folder only.
            outside = os.path.join(repo, "outside")
            os.makedirs(outside)
            with open(os.path.join(outside, "model-settings.json"), "w") as file:
                json.dump({"name": "outside", "implementation": "xgboost",
                           "parameters": {"uri": "../xgb/model.json"}}, file)

            out = os.path.join(scratch, "mlhost")
            imported = mlhost("import", repo, out)
            report = imported.stdout
            self.assertEqual(imported.returncode, 1, report + imported.stderr)
            lines = {line.split(" (")[0].strip(): line for line in report.splitlines()
                     if line.startswith("  ")}
            self.assertIn("served as is", lines["xgb"])
            self.assertIn("converted", lines["iris-like"])
            self.assertIn("converted", lines["churn"])
            self.assertIn("served as is: MLflow flavour `onnx`", lines["mlflow-onnx"])
            self.assertIn("converted: MLflow sklearn flavour", lines["mlflow-sklearn"])
            self.assertIn("needs work", lines["custom"])
            self.assertIn("mlhost init custom --lang python", lines["custom"])
            self.assertIn("needs work", lines["outside"])
            self.assertIn("outside the model's folder", lines["outside"])
            self.assertIn("5 of 7 models served", report)
            self.assertIn("2 need work", report)
            # No pickle reaches the mlhost repository; the MLServer one is unchanged.
            for dirpath, _, files in os.walk(out):
                self.assertFalse([f for f in files if f.endswith((".joblib", ".pkl"))], dirpath)
            self.assertFalse(os.path.exists(os.path.join(repo, "churn", "model.onnx")))
            with open(os.path.join(repo, "churn", "model-settings.json")) as file:
                self.assertEqual(json.load(file)["implementation"], "mlserver_sklearn.SKLearnModel")
            self.assertFalse(os.path.exists(os.path.join(out, "custom")))

            server = Server(out)
            try:
                self.check_answers(server, expected)
                client = httpclient.InferenceServerClient(server.http)
                for name in ["xgb", "mlflow-onnx", "mlflow-sklearn"]:
                    self.assertTrue(client.is_model_ready(name), name)
                x, _ = data()
                result = client.infer("mlflow-sklearn", [tensor("X", x[:4, :3].copy(), "FP32")])
                self.assertEqual(result.as_numpy("label").shape, (4,))
            finally:
                server.close()


if __name__ == "__main__":
    unittest.main()
