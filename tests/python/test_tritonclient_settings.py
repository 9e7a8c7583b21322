"""Triton's logging and trace extensions through tritonclient (HTTP and gRPC): the calls
get_log_settings / update_log_settings and get_trace_settings / update_trace_settings, as a
Triton user makes them against mlhost (whose traces go over OpenTelemetry to tracing_server).
"""

import socket
import unittest

import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from mlhost_server import serve_examples


def free_port():
    """A port nothing listens on (the collector is absent: exports fail quietly)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TritonSettingsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = serve_examples(
            "house-prices", settings={"tracing_server": "127.0.0.1:%d" % free_port()})
        cls.http = httpclient.InferenceServerClient(url=cls.server.http)
        cls.grpc = grpcclient.InferenceServerClient(url=cls.server.grpc)

    @classmethod
    def tearDownClass(cls):
        cls.http.close()
        cls.grpc.close()
        cls.server.close()

    def test_log_settings_over_http(self):
        settings = self.http.get_log_settings()
        self.assertEqual(
            settings,
            {"log_file": "", "log_info": True, "log_warning": True, "log_error": True,
             "log_verbose_level": 0, "log_format": "default"},
        )
        updated = self.http.update_log_settings({"log_verbose_level": 1, "log_warning": False})
        self.assertEqual(updated["log_verbose_level"], 1)
        self.assertFalse(updated["log_warning"])
        restored = self.http.update_log_settings(
            {"log_verbose_level": 0, "log_warning": True, "log_format": "ISO8601"})
        self.assertEqual(restored["log_format"], "ISO8601")
        self.http.update_log_settings({"log_format": "default"})
        with self.assertRaises(InferenceServerException) as refused:
            self.http.update_log_settings({"log_file": "/tmp/triton.log"})
        self.assertIn("stderr only", str(refused.exception))
        with self.assertRaises(InferenceServerException) as unknown:
            self.http.update_log_settings({"log_colour": True})
        self.assertIn("unknown log setting", str(unknown.exception))

    def test_log_settings_over_grpc(self):
        settings = self.grpc.get_log_settings(as_json=True)["settings"]
        self.assertEqual(settings["log_info"], {"bool_param": True})
        self.assertEqual(settings["log_format"], {"string_param": "default"})
        updated = self.grpc.update_log_settings({"log_verbose_level": 2, "log_error": True},
                                                as_json=True)["settings"]
        self.assertEqual(updated["log_verbose_level"], {"uint32_param": 2})
        self.grpc.update_log_settings({"log_verbose_level": 0})
        with self.assertRaises(InferenceServerException) as refused:
            self.grpc.update_log_settings({"log_format": "xml"})
        self.assertIn("log_format", str(refused.exception))

    def test_trace_settings_over_http(self):
        settings = self.http.get_trace_settings()
        self.assertEqual(settings["trace_level"], ["TIMESTAMPS"])
        self.assertEqual(settings["trace_mode"], "opentelemetry")
        self.assertEqual(settings["trace_count"], "-1")
        self.assertEqual(self.http.update_trace_settings(settings={"trace_rate": "5"})["trace_rate"], "5")
        # A model's own level; clearing it falls back to the server's.
        own = self.http.update_trace_settings(model_name="house-prices",
                                              settings={"trace_level": ["OFF"]})
        self.assertEqual(own["trace_level"], ["OFF"])
        self.assertEqual(own["trace_rate"], "5")
        self.assertEqual(self.http.get_trace_settings()["trace_level"], ["TIMESTAMPS"])
        cleared = self.http.update_trace_settings(model_name="house-prices",
                                                  settings={"trace_level": None})
        self.assertEqual(cleared["trace_level"], ["TIMESTAMPS"])
        self.http.update_trace_settings(settings={"trace_rate": None})
        self.assertEqual(self.http.get_trace_settings()["trace_rate"], "1")
        with self.assertRaises(InferenceServerException) as refused:
            self.http.update_trace_settings(settings={"trace_level": ["TENSORS"]})
        self.assertIn("TENSORS is not supported", str(refused.exception))

    def test_trace_settings_over_grpc(self):
        settings = self.grpc.get_trace_settings(as_json=True)["settings"]
        self.assertEqual(settings["trace_mode"], {"value": ["opentelemetry"]})
        updated = self.grpc.update_trace_settings(
            model_name="house-prices", settings={"trace_count": "3"}, as_json=True)["settings"]
        self.assertEqual(updated["trace_count"], {"value": ["3"]})
        self.grpc.update_trace_settings(model_name="house-prices", settings={"trace_count": None})
        with self.assertRaises(InferenceServerException) as refused:
            self.grpc.update_trace_settings(settings={"trace_file": "/tmp/trace.json"})
        self.assertIn("not to a file", str(refused.exception))
        with self.assertRaises(InferenceServerException) as unknown:
            self.grpc.get_trace_settings(model_name="nope")
        self.assertIn("nope", str(unknown.exception))


if __name__ == "__main__":
    unittest.main()
