"""The documented way to serve a scikit-learn model: `scripts/sklearn-to-onnx MODEL.joblib OUT`
converts a pickled model (checking onnxruntime against the model), and mlhost serves the folder
on its native backend with the model's own answers. Through tritonclient, as a user would."""

import os
import subprocess
import sys
import tempfile
import unittest

import joblib
import numpy as np
import tritonclient.http as httpclient
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlhost_server import ROOT, Server

CONVERT = os.path.join(ROOT, "scripts", "sklearn-to-onnx")


def training_data():
    """Rows of two numeric columns and one text column, with 3 classes (fixed seed)."""
    x, y = make_classification(n_samples=300, n_features=2, n_informative=2, n_redundant=0,
                               n_classes=3, n_clusters_per_class=1, random_state=3)
    cities = np.array(["paris", "lyon", "nice"])[np.arange(300) % 3]
    return x.astype(np.float32), cities, y


class SklearnToOnnx(unittest.TestCase):
    def test_a_converted_pipeline_serves_scikit_learn_s_answers(self):
        x, cities, y = training_data()
        rows = np.concatenate([x.astype(object), cities[:, None]], axis=1)
        model = Pipeline([
            ("columns", ColumnTransformer([("scale", StandardScaler(), [0, 1]),
                                           ("city", OneHotEncoder(), [2])])),
            ("classifier", GradientBoostingClassifier(n_estimators=20, random_state=0)),
        ]).fit(rows[:250], y[:250])
        with tempfile.TemporaryDirectory() as scratch:
            pickled = os.path.join(scratch, "model.joblib")
            joblib.dump(model, pickled)
            folder = os.path.join(scratch, "models", "churn")
            env = dict(os.environ, MLHOST_PYTHON=sys.executable)
            converted = subprocess.run(
                [CONVERT, pickled, folder, "--inputs", "a:float:1,b:float:1,city:string:1"],
                capture_output=True, text=True, env=env)
            self.assertEqual(converted.returncode, 0, converted.stdout + converted.stderr)
            self.assertTrue(os.path.isfile(os.path.join(folder, "model.onnx")))

            server = Server(os.path.join(scratch, "models"))
            try:
                client = httpclient.InferenceServerClient(server.http)
                metadata = client.get_model_metadata("churn")
                self.assertEqual(metadata["parameters"]["backend"], "native")
                held_out = rows[250:]
                inputs = []
                for index, (name, datatype) in enumerate([("a", "FP32"), ("b", "FP32"),
                                                          ("city", "BYTES")]):
                    column = held_out[:, index:index + 1]
                    tensor = httpclient.InferInput(name, list(column.shape), datatype)
                    data = column.astype(np.float32) if datatype == "FP32" else column.astype(object)
                    tensor.set_data_from_numpy(data, binary_data=True)
                    inputs.append(tensor)
                result = client.infer("churn", inputs)
                np.testing.assert_array_equal(result.as_numpy("label"), model.predict(held_out))
                np.testing.assert_allclose(result.as_numpy("probabilities"),
                                           model.predict_proba(held_out), atol=1e-5)
            finally:
                server.close()


if __name__ == "__main__":
    unittest.main()
