#!/usr/bin/env python3
"""Records what MLServer 1.7.1 answers to multi-column (PandasCodec) requests, for
test_pandas_requests.py.

Trains three small models on a DataFrame of mixed column datatypes (INT64, FP64, BOOL, FP32,
INT32): an XGBoost classifier, a LightGBM binary model and a scikit-learn logistic regression
(written for mlhost's `linear` runtime as linear.json, with its feature_names_in_). Encodes
request DataFrames with mlserver.codecs.PandasCodec (the request a client sends: one input per
column, content type "pd"), runs MLServer's own runtimes (mlserver_xgboost, mlserver_lightgbm,
mlserver_sklearn) on them in process, and writes, next to this script:

- models/{xgboost,lightgbm,linear}/: the model folders mlhost serves (model-settings.json and
  the model file);
- requests.json: each request as PandasCodec encoded it, and MLServer's outputs per model.

MLServer's pins conflict with the tests' venv, so it runs in a venv of its own:

    python3 -m venv /tmp/mlserver-venv
    /tmp/mlserver-venv/bin/pip install mlserver==1.7.1 mlserver-xgboost==1.7.1 \
        mlserver-lightgbm==1.7.1 mlserver-sklearn==1.7.1 "uvloop<0.22"
    /tmp/mlserver-venv/bin/python tests/python/pandas/generate.py
"""

import asyncio
import json
import shutil
from pathlib import Path

import joblib
import lightgbm as lgb
import mlserver
import numpy as np
import pandas as pd
import sklearn
import xgboost as xgb
from mlserver.codecs import PandasCodec
from mlserver.settings import ModelParameters, ModelSettings
from mlserver.types import InferenceRequest, RequestOutput
from mlserver_lightgbm import LightGBMModel
from mlserver_sklearn import SKLearnModel
from mlserver_xgboost import XGBoostModel
from sklearn.linear_model import LogisticRegression

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models"
SEED = 11


def frame(rng, rows, missing=False):
    """Columns of five datatypes; `missing` puts NaN in the FP64 column (trees only)."""
    data = pd.DataFrame({
        "age": rng.integers(18, 90, size=rows).astype(np.int64),
        "height": rng.normal(1.7, 0.1, size=rows).astype(np.float64),
        "member": rng.random(rows) < 0.5,
        "score": rng.normal(0, 1, size=rows).astype(np.float32),
        "visits": rng.integers(0, 40, size=rows).astype(np.int32),
    })
    if missing:
        data.loc[::3, "height"] = np.nan
    return data


def labels(data):
    signal = (data["age"] - 50) / 20 + (data["height"].fillna(1.7) - 1.7) * 8 \
        + data["member"] * 0.8 + data["score"] - data["visits"] / 20
    return signal


def train(rng):
    data = frame(rng, 300)
    signal = labels(data)
    binary = (signal > 0).astype(int)
    three = np.digitize(signal, [-0.7, 0.7])
    models = {}

    folder = MODELS / "xgboost"
    folder.mkdir(parents=True)
    booster = xgb.XGBClassifier(n_estimators=6, max_depth=3, random_state=SEED)
    booster.fit(data, binary)
    booster.save_model(folder / "model.json")
    write_settings(folder, "xgboost", "xgboost")
    models["xgboost"] = (XGBoostModel, folder / "model.json", ["predict", "predict_proba"])

    folder = MODELS / "lightgbm"
    folder.mkdir(parents=True)
    gbm = lgb.train({"objective": "binary", "num_leaves": 7, "verbose": -1, "seed": SEED},
                    lgb.Dataset(data, binary), num_boost_round=6)
    gbm.save_model(folder / "model.txt")
    write_settings(folder, "lightgbm", "lightgbm")
    models["lightgbm"] = (LightGBMModel, folder / "model.txt", ["predict"])

    folder = MODELS / "linear"
    folder.mkdir(parents=True)
    logistic = LogisticRegression(max_iter=1000).fit(data, three)
    with open(folder / "linear.json", "w") as f:
        json.dump({
            "kind": "logistic",
            "coefficients": logistic.coef_.tolist(),
            "intercepts": logistic.intercept_.tolist(),
            "classes": [int(c) for c in logistic.classes_],
            "feature_names": [str(name) for name in logistic.feature_names_in_],
        }, f, indent=1)
    write_settings(folder, "linear", "linear")
    # MLServer serves the scikit-learn model itself (from a joblib file outside the folder).
    sklearn_file = HERE / "sklearn-model.joblib"
    joblib.dump(logistic, sklearn_file)
    models["linear"] = (SKLearnModel, sklearn_file, ["predict", "predict_proba"])
    return models


def write_settings(folder, name, implementation):
    with open(folder / "model-settings.json", "w") as f:
        json.dump({"name": name, "implementation": implementation}, f, indent=1)
        f.write("\n")


async def mlserver_outputs(runtime, uri, outputs, request):
    settings = ModelSettings(name="m", implementation=runtime,
                             parameters=ModelParameters(uri=str(uri)))
    model = runtime(settings)
    await model.load()
    asked = request.model_copy(deep=True)
    asked.outputs = [RequestOutput(name=name) for name in outputs]
    response = await model.predict(asked)
    return [output.model_dump(exclude_none=True) for output in response.outputs]


def main():
    shutil.rmtree(MODELS, ignore_errors=True)
    rng = np.random.default_rng(SEED)
    models = train(rng)
    requests = {
        "mixed": (frame(rng, 6), list(models)),
        "missing": (frame(rng, 6, missing=True), ["xgboost", "lightgbm"]),
        # For ONNX models, which MLServer has no runtime for: the iris example (one FP32
        # [N, 4] input) and the column-transformer pipeline of runtimes/onnx/fixtures/sklearn
        # (one input per column); mlhost's answers to them are compared with its answers to
        # the same rows as typed tensors.
        "iris": (pd.DataFrame({
            "sepal_length": [5.1, 6.7, 5.9],
            "sepal_width": [3.5, 3.0, 3.0],
            "petal_length": np.array([1.4, 5.2, 4.2], dtype=np.float32),
            "petal_width": np.array([0, 2, 1], dtype=np.int64),
        }), []),
        "churn": (pd.DataFrame({
            "age": np.array([58, 39, 32], dtype=np.int64),
            "income": [58304.28125, 30043.439453125, 24116.94921875],
            "tenure": [0.5, 2.5, 3.9],
            # object columns, as pandas 2 makes them (MLServer 1.7.1 does not know pandas 3's
            # string dtype).
            "city": pd.Series(["lille", "paris", "lyon"], dtype=object),
            "plan": pd.Series(["pro", "plus", "basic"], dtype=object),
        }), []),
    }
    recorded = {
        "versions": {name: module.__version__ for name, module in
                     [("mlserver", mlserver), ("xgboost", xgb), ("lightgbm", lgb),
                      ("scikit-learn", sklearn), ("pandas", pd), ("numpy", np)]},
        "requests": {},
    }
    for name, (data, model_names) in requests.items():
        request = PandasCodec.encode_request(data)
        answers = {}
        for model_name in model_names:
            runtime, uri, outputs = models[model_name]
            answers[model_name] = asyncio.run(mlserver_outputs(runtime, uri, outputs, request))
        body = request.model_dump(exclude_none=True)
        # JSON as a client sends it (bytes of "str" columns as text, NaN as null).
        recorded["requests"][name] = {
            "request": json.loads(InferenceRequest.model_validate(body).model_dump_json(exclude_none=True)),
            "mlserver": answers,
        }
    (HERE / "sklearn-model.joblib").unlink()
    with open(HERE / "requests.json", "w") as f:
        json.dump(recorded, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
