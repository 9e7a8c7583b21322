"""gRPC health checking and server reflection through grpcio's own clients.

grpcio-health-checking's stub asks what Kubernetes' gRPC probes and grpc-health-probe ask
(Check with the service "" or a model's name) and watches a model through a load and an unload;
grpcio-reflection's descriptor database lists and describes the services as grpcurl does, and a
call is built from the described types alone. Starts the mlhost binary (MLHOST_BIN) on free ports.
"""

import queue
import threading
import unittest

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
import tritonclient.grpc as grpcclient

from mlhost_server import serve_examples

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class GrpcHealthAndReflectionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = serve_examples("house-prices")
        cls.channel = grpc.insecure_channel(cls.server.grpc)
        cls.health = health_pb2_grpc.HealthStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.server.close()

    def check(self, service):
        request = health_pb2.HealthCheckRequest(service=service)
        return self.health.Check(request, timeout=10).status

    def test_probe_style_checks(self):
        # Kubernetes' grpc probe without `service`, and grpc-health-probe's default: "".
        self.assertEqual(self.check(""), SERVING)
        self.assertEqual(self.check("inference.GRPCInferenceService"), SERVING)
        self.assertEqual(self.check("house-prices"), SERVING)
        with self.assertRaises(grpc.RpcError) as unknown:
            self.check("no-such-model")
        self.assertEqual(unknown.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_watch_follows_unload_and_load(self):
        statuses = queue.Queue()
        call = self.health.Watch(health_pb2.HealthCheckRequest(service="house-prices"))

        def read():
            try:
                for message in call:
                    statuses.put(message.status)
            except grpc.RpcError:
                pass  # cancelled at the end of the test

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        client = grpcclient.InferenceServerClient(url=self.server.grpc)
        try:
            self.assertEqual(statuses.get(timeout=10), SERVING)
            client.unload_model("house-prices")
            self.assertEqual(statuses.get(timeout=10), NOT_SERVING)
            self.assertFalse(client.is_model_ready("house-prices"))
            client.load_model("house-prices")
            self.assertEqual(statuses.get(timeout=10), SERVING)
            self.assertEqual(self.check("house-prices"), SERVING)
        finally:
            call.cancel()
            client.close()
            reader.join(5)

    def test_watch_of_an_unknown_service_stays_open(self):
        call = self.health.Watch(health_pb2.HealthCheckRequest(service="later"))
        try:
            self.assertEqual(next(call).status, SERVICE_UNKNOWN)
        finally:
            call.cancel()

    def test_reflection_lists_describes_and_calls(self):
        database = ProtoReflectionDescriptorDatabase(self.channel)
        services = database.get_services()
        for service in [
            "inference.GRPCInferenceService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        ]:
            self.assertIn(service, services)
        pool = descriptor_pool.DescriptorPool(database)
        service = pool.FindServiceByName("inference.GRPCInferenceService")
        methods = {method.name: method for method in service.methods}
        for name in ["ModelInfer", "ModelStreamInfer", "ModelReady", "RepositoryIndex"]:
            self.assertIn(name, methods)
        infer = pool.FindMessageTypeByName("inference.ModelInferRequest")
        self.assertIn("raw_input_contents", infer.fields_by_name)
        # A call made from the described types alone, as grpcurl makes it.
        ready = methods["ModelReady"]
        request_class = GetMessageClass(ready.input_type)
        response_class = GetMessageClass(ready.output_type)
        call = self.channel.unary_unary(
            "/inference.GRPCInferenceService/ModelReady",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        self.assertTrue(call(request_class(name="house-prices"), timeout=10).ready)
        self.assertFalse(call(request_class(name="no-such-model"), timeout=10).ready)


if __name__ == "__main__":
    unittest.main()
