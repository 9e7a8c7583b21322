"""Checks of the KServe manifests in deploy/kserve.

Every object is validated against deploy/schemas/kserve.schema.json (a trimmed copy of KServe's
CRD schemas), the runtime's containers and volumes (and each InferenceService's container
overrides) against Kubernetes' own schemas through kubernetes-validate, and the manifests against
each other and against what mlhost does: formats, runtime names, protocols, ports, probes,
metrics, the compilation cache folder.

Needs PyYAML, jsonschema and kubernetes-validate (tests/python/requirements.txt); no
cluster, no network. Run: python -m unittest discover -s tests/python (from the repository root).
"""

import copy
import json
import pathlib
import posixpath
import re
import unittest

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
KSERVE_DIR = ROOT / "deploy" / "kserve"
SCHEMA_PATH = ROOT / "deploy" / "schemas" / "kserve.schema.json"
DEPLOY_README = ROOT / "deploy" / "README.md"

RUNTIME_NAME = "kserve-mlhost"
RUNTIME_KINDS = ("ClusterServingRuntime", "ServingRuntime")
CONTAINER_NAME = "kserve-container"  # constants.InferenceServiceContainerName
MODELS_DIR = "/mnt/models"  # constants.DefaultModelLocalMountPath
# mlhost's defaults (host/src/config/mod.rs), used when the environment sets nothing.
DEFAULT_PORTS = {"http_port": 8080, "grpc_port": 8081, "metrics_port": 8082}
READY_PATH = "/v2/health/ready"
LIVE_PATH = "/v2/health/live"
# Kubernetes version whose schemas the containers are checked against: the oldest that current
# KServe releases support, when this kubernetes-validate still bundles it, else its newest.
PREFERRED_K8S_VERSION = "1.30.0"
# The predictor.model fields KServe adds to corev1.Container (v1beta1.ModelSpec).
KSERVE_MODEL_FIELDS = {"modelFormat", "runtime", "runtimeVersion", "protocolVersion", "storageUri", "storage"}
STORAGE_SCHEMES = {"gs", "s3", "pvc", "https", "http", "hdfs", "webhdfs", "hf", "oci", "azure"}


def k8s_version():
    versions = kubernetes_validate.utils.all_versions()
    return PREFERRED_K8S_VERSION if PREFERRED_K8S_VERSION in versions else versions[-1]


def load_objects(folder=KSERVE_DIR):
    """Every YAML document under `folder` (deploy/kserve by default), as (file name, object)."""
    objects = []
    for path in sorted(folder.rglob("*.y*ml")):
        with open(path, encoding="utf-8") as handle:
            for document in yaml.safe_load_all(handle):
                if document is not None:
                    objects.append((path.relative_to(ROOT).as_posix(), document))
    return objects


def env_of(container):
    return {item["name"]: item.get("value") for item in container.get("env", [])}


def mlhost_setting(env, field):
    """The value mlhost takes for a settings field from the environment: MLHOST_ first."""
    for prefix in ("MLHOST_", "MLSERVER_"):
        name = prefix + field.upper()
        if name in env:
            return env[name]
    return None


def ports_of(container):
    env = env_of(container)
    ports = {}
    for field, default in DEFAULT_PORTS.items():
        value = mlhost_setting(env, field)
        ports[field] = int(value) if value is not None else default
    return ports


QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
SUFFIXES = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(text):
    match = QUANTITY.match(str(text))
    if not match or match.group(2) not in SUFFIXES:
        raise ValueError(f"unsupported quantity {text!r}")
    return float(match.group(1)) * SUFFIXES[match.group(2)]


def schema_errors(validator, obj):
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    ]


def pod_of(name, containers, volumes=None):
    spec = {"containers": containers}
    if volumes:
        spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def k8s_errors(obj):
    try:
        kubernetes_validate.validate(obj, k8s_version(), strict=True)
    except kubernetes_validate.ValidationError as error:
        path = "/".join(str(p) for p in error.absolute_path) or "<root>"
        return [f"{path}: {error.message}"]
    return []


class DeployManifests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(SCHEMA_PATH, encoding="utf-8") as handle:
            cls.schema = json.load(handle)
        jsonschema.Draft202012Validator.check_schema(cls.schema)
        cls.validator = jsonschema.Draft202012Validator(cls.schema)
        cls.objects = load_objects()
        cls.runtimes = [(f, o) for f, o in cls.objects if o.get("kind") in RUNTIME_KINDS]
        cls.services = [(f, o) for f, o in cls.objects if o.get("kind") == "InferenceService"]
        cluster = [o for _, o in cls.runtimes if o["kind"] == "ClusterServingRuntime"]
        cls.runtime = cluster[0] if cluster else None

    # --- the manifests exist ------------------------------------------------------------------

    def test_ships_the_runtime_and_examples(self):
        kinds = [o.get("kind") for _, o in self.objects]
        self.assertEqual(kinds.count("ClusterServingRuntime"), 1, "one ClusterServingRuntime")
        self.assertEqual(self.runtime["metadata"]["name"], RUNTIME_NAME)
        self.assertGreaterEqual(len(self.services), 4, "an example InferenceService per format")
        for file, obj in self.objects:
            self.assertIn(obj.get("kind"), (*RUNTIME_KINDS, "InferenceService"), file)

    # --- KServe's CRD schema ------------------------------------------------------------------

    def test_every_object_matches_the_kserve_schema(self):
        for file, obj in self.objects:
            with self.subTest(file=file, kind=obj.get("kind")):
                errors = schema_errors(self.validator, obj)
                self.assertEqual(errors, [], f"{file} does not match {SCHEMA_PATH.name}")

    def test_the_schema_rejects_typical_mistakes(self):
        """The schema is closed where KServe's is: a misspelt or mistyped field fails."""
        runtime = self.runtime
        service = self.services[0][1]

        def broken(obj, change):
            obj = copy.deepcopy(obj)
            change(obj)
            return obj

        cases = {
            "misspelt spec field": broken(runtime, lambda o: o["spec"].__setitem__(
                "supportedModelFormat", o["spec"].pop("supportedModelFormats"))),
            "unknown protocol": broken(runtime, lambda o: o["spec"]["protocolVersions"].append("v3")),
            "priority below 1": broken(runtime, lambda o: o["spec"]["supportedModelFormats"][-1].__setitem__("priority", 0)),
            "version as a number": broken(runtime, lambda o: o["spec"]["supportedModelFormats"][0].__setitem__("version", 1)),
            "format without a name": broken(runtime, lambda o: o["spec"]["supportedModelFormats"][0].pop("name")),
            "no containers": broken(runtime, lambda o: o["spec"].pop("containers")),
            "misspelt container field": broken(runtime, lambda o: o["spec"]["containers"][0].__setitem__(
                "readynessProbe", {})),
            "bad quantity": broken(runtime, lambda o: o["spec"]["containers"][0]["resources"]["limits"].__setitem__(
                "memory", "1 GB")),
            "wrong apiVersion": broken(runtime, lambda o: o.__setitem__("apiVersion", "serving.kserve.io/v1beta1")),
            "no predictor": broken(service, lambda o: o["spec"].__setitem__("predicter", o["spec"].pop("predictor"))),
            "misspelt model field": broken(service, lambda o: o["spec"]["predictor"]["model"].__setitem__(
                "storageURI", o["spec"]["predictor"]["model"].pop("storageUri"))),
            "misspelt modelFormat field": broken(service, lambda o: o["spec"]["predictor"]["model"]["modelFormat"].__setitem__(
                "nmae", "xgboost")),
            "unknown protocolVersion": broken(service, lambda o: o["spec"]["predictor"]["model"].__setitem__(
                "protocolVersion", "v3")),
        }
        for name, obj in cases.items():
            with self.subTest(mistake=name):
                self.assertNotEqual(schema_errors(self.validator, obj), [], f"the schema accepts: {name}")

    # --- Kubernetes' own schemas --------------------------------------------------------------

    def test_runtime_containers_are_valid_kubernetes(self):
        for file, obj in self.runtimes:
            with self.subTest(file=file):
                spec = obj["spec"]
                pod = pod_of(obj["metadata"]["name"], spec["containers"], spec.get("volumes"))
                self.assertEqual(k8s_errors(pod), [], f"{file}: containers/volumes as a v1 Pod ({k8s_version()})")

    def test_inference_service_overrides_are_valid_kubernetes(self):
        """predictor.model is a corev1.Container plus KServe's fields: the rest must be valid."""
        for file, obj in self.services:
            with self.subTest(file=file):
                model = obj["spec"]["predictor"]["model"]
                container = {k: v for k, v in model.items() if k not in KSERVE_MODEL_FIELDS}
                container.setdefault("name", CONTAINER_NAME)
                container.setdefault("image", self.runtime["spec"]["containers"][0]["image"])
                self.assertEqual(k8s_errors(pod_of(obj["metadata"]["name"], [container])), [], file)

    def test_kubernetes_validation_catches_mistakes(self):
        container = copy.deepcopy(self.runtime["spec"]["containers"][0])
        container["readinessProbe"]["httpGet"]["port"] = "not a port name!"
        container["securityContext"]["runAsUser"] = "65532"
        self.assertNotEqual(k8s_errors(pod_of("broken", [container])), [])

    # --- the runtime ----------------------------------------------------------------------------

    def test_namespaced_runtime_matches_the_cluster_runtime(self):
        for file, obj in self.runtimes:
            with self.subTest(file=file):
                self.assertEqual(obj["metadata"]["name"], RUNTIME_NAME)
                self.assertEqual(obj["spec"], self.runtime["spec"], f"{file}: spec differs from the cluster runtime's")

    def test_runtime_serves_v2_single_model(self):
        spec = self.runtime["spec"]
        self.assertEqual(sorted(spec["protocolVersions"]), ["grpc-v2", "v2"])
        self.assertIs(spec.get("multiModel"), False)
        self.assertIsNot(spec.get("disabled"), True)
        names = [c["name"] for c in spec["containers"]]
        self.assertEqual(names, [CONTAINER_NAME])
        container = spec["containers"][0]
        self.assertTrue(container.get("image"))
        args = container.get("args", [])
        self.assertEqual(args[:1], ["serve"], "mlhost's subcommand")
        self.assertIn("--models", args)
        self.assertEqual(args[args.index("--models") + 1], MODELS_DIR, "KServe mounts the storageUri there")

    def test_auto_selected_formats_have_a_priority(self):
        seen = set()
        for entry in self.runtime["spec"]["supportedModelFormats"]:
            key = (entry["name"], entry.get("version"))
            self.assertNotIn(key, seen, f"{key} listed twice")
            seen.add(key)
            if entry.get("autoSelect"):
                self.assertGreaterEqual(entry.get("priority", 0), 1, f"{key}: autoSelect without a priority")

    def test_ports_are_distinct_and_knative_compatible(self):
        container = self.runtime["spec"]["containers"][0]
        ports = ports_of(container)
        self.assertEqual(len(set(ports.values())), 3, f"ports collide: {ports}")
        self.assertEqual(ports["http_port"], 8080, "KServe and Knative send REST to 8080 when no port is declared")
        declared = container.get("ports", [])
        # Knative (Serverless mode) takes one container port, and KServe merges the
        # InferenceService's ports into this container.
        self.assertLessEqual(len(declared), 1)
        for port in declared:
            self.assertIn(port["containerPort"], (ports["http_port"], ports["grpc_port"]))

    def test_probes_are_the_v2_health_endpoints(self):
        container = self.runtime["spec"]["containers"][0]
        http_port = ports_of(container)["http_port"]
        for probe, path in (("readinessProbe", READY_PATH), ("livenessProbe", LIVE_PATH)):
            with self.subTest(probe=probe):
                self.assertIn(probe, container)
                action = container[probe].get("httpGet")
                self.assertIsNotNone(action, f"{probe} must be an httpGet")
                self.assertEqual(action["path"], path)
                self.assertEqual(int(action["port"]), http_port)

    def test_prometheus_annotations_point_at_the_metrics_server(self):
        spec = self.runtime["spec"]
        annotations = spec.get("annotations", {})
        container = spec["containers"][0]
        declared = {str(p["containerPort"]) for p in container.get("ports", [])}
        metrics_port = str(ports_of(container)["metrics_port"])
        port = annotations.get("prometheus.kserve.io/port")
        self.assertIsNotNone(port, "prometheus.kserve.io/port")
        self.assertTrue(port == metrics_port or port in declared,
                        f"prometheus.kserve.io/port {port} is neither the metrics port {metrics_port} nor declared")
        self.assertEqual(port, metrics_port, "mlhost serves metrics only on metrics_port")
        endpoint = mlhost_setting(env_of(container), "metrics_endpoint") or "/metrics"
        self.assertEqual(annotations.get("prometheus.kserve.io/path"), endpoint)

    def test_security_context_is_restricted(self):
        context = self.runtime["spec"]["containers"][0]["securityContext"]
        self.assertIs(context.get("runAsNonRoot"), True)
        self.assertIsInstance(context.get("runAsUser"), int, "numeric: the image has no /etc/passwd")
        self.assertGreater(context["runAsUser"], 0)
        self.assertIs(context.get("readOnlyRootFilesystem"), True)
        self.assertIs(context.get("allowPrivilegeEscalation"), False)
        self.assertIn("ALL", context.get("capabilities", {}).get("drop", []))
        self.assertIsNot(context.get("privileged"), True)

    def test_compilation_cache_is_on_a_writable_private_folder(self):
        spec = self.runtime["spec"]
        container = spec["containers"][0]
        cache = env_of(container).get("MLHOST_COMPILATION_CACHE_DIR")
        self.assertIsNotNone(cache, "set MLHOST_COMPILATION_CACHE_DIR: the root filesystem is read-only")
        if cache == "":
            return  # the cache is off
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        mounts = [m for m in container.get("volumeMounts", [])
                  if posixpath.commonpath([cache, m["mountPath"]]) == m["mountPath"]]
        self.assertTrue(mounts, f"{cache} is on no mounted volume (the root filesystem is read-only)")
        mount = max(mounts, key=lambda m: len(m["mountPath"]))
        self.assertFalse(mount.get("readOnly"), f"{mount['mountPath']} is mounted read-only")
        self.assertIn(mount["name"], volumes, f"volume {mount['name']} is not in spec.volumes")
        self.assertIn("emptyDir", volumes[mount["name"]], "the cache belongs on an emptyDir")
        # An emptyDir's mount point is mode 0777, and mlhost refuses a cache folder others may
        # write to: it must create its own folder below the mount.
        self.assertNotEqual(posixpath.normpath(cache), posixpath.normpath(mount["mountPath"]),
                            "the cache folder must be below the emptyDir's mount point, not the mount point")

    def test_resources_are_bounded(self):
        resources = self.runtime["spec"]["containers"][0]["resources"]
        for name in ("cpu", "memory"):
            with self.subTest(resource=name):
                request = quantity(resources["requests"][name])
                limit = quantity(resources["limits"][name])
                self.assertLessEqual(request, limit)

    # --- runtime and examples together ----------------------------------------------------------

    def test_every_format_has_an_example(self):
        used = {o["spec"]["predictor"]["model"]["modelFormat"]["name"] for _, o in self.services}
        formats = {f["name"] for f in self.runtime["spec"]["supportedModelFormats"]}
        self.assertEqual(formats - used, set(), "formats without an example InferenceService")
        self.assertTrue({"xgboost", "lightgbm", "onnx", "wasm"} <= formats)

    def test_every_format_is_documented(self):
        text = DEPLOY_README.read_text(encoding="utf-8")
        self.assertIn(RUNTIME_NAME, text)
        for entry in self.runtime["spec"]["supportedModelFormats"]:
            self.assertIn(f"`{entry['name']}`", text, f"deploy/README.md does not mention {entry['name']}")
        for file, _ in self.objects:
            self.assertIn(pathlib.PurePosixPath(file).name, text, f"deploy/README.md does not mention {file}")

    def test_inference_services_use_the_runtime(self):
        spec = self.runtime["spec"]
        supported = {(f["name"], f.get("version")) for f in spec["supportedModelFormats"]}
        auto = {f["name"] for f in spec["supportedModelFormats"] if f.get("autoSelect")}
        grpc_port = ports_of(spec["containers"][0])["grpc_port"]
        http_port = ports_of(spec["containers"][0])["http_port"]
        for file, obj in self.services:
            with self.subTest(file=file):
                model = obj["spec"]["predictor"].get("model")
                self.assertIsNotNone(model, "examples use spec.predictor.model")
                fmt = model.get("modelFormat")
                self.assertIsNotNone(fmt, "modelFormat (KServe's webhook requires it)")
                runtime = model.get("runtime")
                self.assertTrue(runtime == RUNTIME_NAME or (runtime is None and fmt["name"] in auto),
                                f"runtime {runtime!r}: name {RUNTIME_NAME}, or leave it out for an auto-selected format")
                if fmt.get("version") is None:
                    self.assertIn(fmt["name"], {name for name, _ in supported})
                else:
                    self.assertIn((fmt["name"], fmt["version"]), supported,
                                  f"{fmt} is not a format and version {RUNTIME_NAME} declares")
                protocol = model.get("protocolVersion")
                self.assertIn(protocol, spec["protocolVersions"])
                uri = model.get("storageUri", "")
                self.assertIn(uri.split("://", 1)[0], STORAGE_SCHEMES, f"storageUri {uri!r}")
                ports = model.get("ports", [])
                self.assertLessEqual(len(ports) + len(spec["containers"][0].get("ports", [])), 1,
                                     "Knative serves one container port (the runtime's and these are merged)")
                if protocol == "grpc-v2":
                    self.assertEqual([(p.get("name"), p["containerPort"]) for p in ports], [("h2c", grpc_port)],
                                     "gRPC needs mlhost's gRPC port declared as h2c")
                else:
                    self.assertTrue(all(p["containerPort"] == http_port for p in ports), "REST is on the http port")

    def test_inference_service_names_are_unique(self):
        names = [o["metadata"]["name"] for _, o in self.services]
        self.assertEqual(len(names), len(set(names)))


if __name__ == "__main__":
    unittest.main()
