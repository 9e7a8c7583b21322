"""Checks of the ModelMesh Serving manifests in deploy/modelmesh.

As test_deploy.py does for deploy/kserve: every object against deploy/schemas/kserve.schema.json
(KServe's CRD fields; ModelMesh Serving uses the same ServingRuntime and InferenceService CRDs),
the runtime's containers and volumes against Kubernetes' schemas (kubernetes-validate), and the
manifests against what ModelMesh Serving's controller and mlhost do: multi-model, the SPI and data
endpoints on mlhost's modelmesh_port and grpc_port, no port ModelMesh's own containers use, the
models folder, the formats mlhost's loadModel knows.

Needs PyYAML, jsonschema and kubernetes-validate; no cluster, no network.
"""

import json
import pathlib
import re
import unittest

import jsonschema

from test_deploy import (
    SCHEMA_PATH, env_of, k8s_errors, load_objects, mlhost_setting, pod_of, schema_errors,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODELMESH_DIR = ROOT / "deploy" / "modelmesh"
RUNTIME_NAME = "mlhost-modelmesh"
# Ports of the containers ModelMesh Serving's controller adds to a runtime's pod
# (kserve/modelmesh-serving: litelinks 8080, the ModelMesh service 8033, the puller 8086, the
# pre-stop hook 8090, ModelMesh's metrics 2112, the REST proxy 8008).
MODELMESH_PORTS = {8080, 8033, 8086, 8090, 2112, 8008}
# The folder the controller mounts in every container of the pod (controllers/modelmesh/runtime.go).
MODELS_DIR = "/models"
# The model types host/src/modelmesh/model_path.rs serves.
MESH_TYPES = {"xgboost", "lightgbm", "catboost", "onnx", "linear", "trees", "wasm"}
ENDPOINT = re.compile(r"^port:([0-9]+)$")


def port_of(endpoint):
    match = ENDPOINT.match(endpoint)
    if not match:
        raise ValueError(f"not a port endpoint: {endpoint!r}")
    return int(match.group(1))


class ModelMeshManifests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(SCHEMA_PATH, encoding="utf-8") as handle:
            cls.validator = jsonschema.Draft202012Validator(json.load(handle))
        cls.objects = load_objects(MODELMESH_DIR)
        runtimes = [o for _, o in cls.objects if o.get("kind") == "ServingRuntime"]
        cls.runtime = runtimes[0] if runtimes else None
        cls.services = [(f, o) for f, o in cls.objects if o.get("kind") == "InferenceService"]

    def test_ships_one_runtime_and_examples(self):
        self.assertIsNotNone(self.runtime, "a ServingRuntime")
        self.assertEqual(self.runtime["metadata"]["name"], RUNTIME_NAME)
        self.assertGreaterEqual(len(self.services), 2)

    def test_every_object_matches_the_kserve_schema(self):
        for file, obj in self.objects:
            with self.subTest(file=file):
                self.assertEqual(schema_errors(self.validator, obj), [])

    def test_the_schema_rejects_a_misspelt_endpoint(self):
        broken = json.loads(json.dumps(self.runtime))
        broken["spec"]["grpcEndPoint"] = broken["spec"].pop("grpcEndpoint")
        self.assertNotEqual(schema_errors(self.validator, broken), [])

    def test_runtime_containers_are_valid_kubernetes(self):
        spec = self.runtime["spec"]
        pod = pod_of(RUNTIME_NAME, spec["containers"], spec.get("volumes"))
        self.assertEqual(k8s_errors(pod), [])

    def test_multi_model_with_the_spi_and_data_endpoints_on_mlhosts_ports(self):
        spec = self.runtime["spec"]
        self.assertIs(spec["multiModel"], True)
        self.assertEqual(spec["protocolVersions"], ["grpc-v2"])
        container = spec["containers"][0]
        env = env_of(container)
        spi = port_of(spec["grpcEndpoint"])
        data = port_of(spec["grpcDataEndpoint"])
        self.assertNotEqual(spi, data)
        self.assertEqual(int(mlhost_setting(env, "modelmesh_port")), spi)
        self.assertEqual(int(mlhost_setting(env, "grpc_port")), data)
        ports = {
            int(mlhost_setting(env, field) or default)
            for field, default in (("http_port", 8080), ("grpc_port", 8081), ("metrics_port", 8082),
                                   ("modelmesh_port", 0))
        }
        self.assertEqual(len(ports), 4, "mlhost's four ports are distinct")
        self.assertEqual(ports & MODELMESH_PORTS, set(), "a port ModelMesh's containers use")
        self.assertEqual(mlhost_setting(env, "host"), "127.0.0.1")

    def test_models_come_from_modelmesh_not_from_the_folder_at_start(self):
        container = self.runtime["spec"]["containers"][0]
        args = container["args"]
        self.assertEqual(args[0], "serve")
        self.assertEqual(args[args.index("--models") + 1], MODELS_DIR)
        self.assertEqual(mlhost_setting(env_of(container), "load_models_at_startup"), "false")
        self.assertIs(self.runtime["spec"].get("storageHelper", {}).get("disabled", False), False,
                      "mlhost loads local folders only: the puller must fetch them")
        self.assertIsNone(mlhost_setting(env_of(container), "modelmesh_capacity_mb"),
                          "capacity comes from the container's memory limit")
        self.assertIn("memory", container["resources"]["limits"])

    def test_formats_are_the_types_mlhost_loads(self):
        formats = {f["name"] for f in self.runtime["spec"]["supportedModelFormats"]}
        self.assertLessEqual(formats, MESH_TYPES)
        auto = {f["name"] for f in self.runtime["spec"]["supportedModelFormats"] if f.get("autoSelect")}
        self.assertEqual(auto, {"wasm"})

    def test_inference_services_are_modelmesh_ones_this_runtime_serves(self):
        formats = {f["name"] for f in self.runtime["spec"]["supportedModelFormats"]}
        for file, obj in self.services:
            with self.subTest(file=file):
                annotations = obj["metadata"].get("annotations", {})
                self.assertEqual(annotations.get("serving.kserve.io/deploymentMode"), "ModelMesh")
                model = obj["spec"]["predictor"]["model"]
                self.assertIn(model["modelFormat"]["name"], formats)
                self.assertIn(model.get("runtime", RUNTIME_NAME), (RUNTIME_NAME,))
                self.assertTrue(model["storage"]["path"])


if __name__ == "__main__":
    unittest.main()
