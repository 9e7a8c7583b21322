"""Metrics, the OpenAPI document and the docs page, checked with the tools people use on them:
Prometheus' own parser, an OpenAPI validator, and headless Chromium.
"""

import json
import shutil
import subprocess
import tempfile
import unittest
import urllib.request

from openapi_spec_validator import validate
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families as text_parser

from mlhost_server import serve_examples

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def get(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode()


def scrape(url, accept=None):
    """The metrics page and its content type, asking for `accept`."""
    headers = {} if accept is None else {"Accept": accept}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
        return response.read().decode(), response.headers["Content-Type"]


class ObservabilityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = serve_examples()
        cls.base = "http://" + cls.server.http

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def infer(self, model, body):
        request = urllib.request.Request(
            "%s/v2/models/%s/infer" % (self.base, model), data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def test_prometheus_parsers_read_every_family_with_its_type(self):
        body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 4]}]}
        for _ in range(2):
            self.infer("house-prices", body)
        text, content_type = scrape(self.server.metrics)
        self.assertEqual(content_type, "text/plain; version=0.0.4; charset=utf-8")
        openmetrics, om_type = scrape(self.server.metrics, "application/openmetrics-text; version=1.0.0")
        self.assertTrue(om_type.startswith("application/openmetrics-text"), om_type)
        expected = {
            "model_infer_request_success": "counter",
            "model_infer_request_duration": "summary",
            "rest_server_requests": "counter",
            "rest_server_request_duration_seconds": "histogram",
            "rest_server_requests_in_progress": "gauge",
            "parallel_request_queue": "histogram",
            "mlhost_models": "gauge",
        }
        for parse, page in [(text_parser, text), (openmetrics_parser, openmetrics)]:
            families = {family.name: family for family in parse(page)}
            for name, family in families.items():
                self.assertIn(family.type, ("counter", "gauge", "histogram", "summary"), name)
            for name, kind in expected.items():
                self.assertEqual(families[name].type, kind, name)
            success = [sample for sample in families["model_infer_request_success"].samples
                       if sample.labels.get("model") == "house-prices" and sample.name.endswith("_total")]
            self.assertEqual(len(success), 1)
            self.assertGreaterEqual(success[0].value, 2)
            states = {sample.labels["state"]: sample.value for sample in families["mlhost_models"].samples}
            self.assertEqual(states["READY"], 5)

    def test_the_openapi_documents_validate(self):
        document = json.loads(get(self.base + "/v2/docs/dataplane.json"))
        validate(document)
        self.assertIn("/v2/models/{model}/infer", document["paths"])
        model = json.loads(get(self.base + "/v2/models/iris/docs/dataplane.json"))
        validate(model)
        self.assertIn("/v2/models/iris/infer", model["paths"])
        names = model["components"]["schemas"]["RequestInput"]["properties"]["name"]["enum"]
        self.assertEqual(names, ["input-0"])

    def test_the_docs_page_renders_in_chromium_without_console_errors(self):
        if CHROMIUM is None:
            self.skipTest("Chromium is not installed here (scripts/test installs Debian's chromium where it can)")
        document = json.loads(get(self.base + "/v2/docs/dataplane.json"))
        operations = sum(len(item) for item in document["paths"].values())
        profile = tempfile.mkdtemp()
        try:
            run = subprocess.run(
                [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0",
                 "--virtual-time-budget=10000", "--dump-dom", self.base + "/v2/docs"],
                capture_output=True, text=True, timeout=120)
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        console = [line for line in run.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
        self.assertEqual(console, [], run.stderr[-2000:])
        self.assertIn('data-operations="%d"' % operations, run.stdout, run.stdout[:2000])
        self.assertIn("/v2/models/{model}/infer", run.stdout)


if __name__ == "__main__":
    unittest.main()
