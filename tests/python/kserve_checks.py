"""KServe's Python SDK against a running server: prints, as JSON, what its REST and gRPC clients'
health checks answer and the ids of an inference through each.

Run in a process of its own by test_kserve_client.py: kserve's protobuf messages are in the
`inference` package as tritonclient's are, and one process cannot import both.
Usage: kserve_checks.py HTTP_ADDRESS GRPC_ADDRESS
"""

import asyncio
import json
import sys

from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig

MODEL = "house-prices"


def request():
    features = InferInput(name="features", shape=[1, 3], datatype="FP32", data=[1.0, 2.0, 4.0])
    return InferRequest(model_name=MODEL, infer_inputs=[features], request_id="k1")


async def rest(base):
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0))
    try:
        response = await client.infer(base, request(), model_name=MODEL)
        return {
            "live": await client.is_server_live(base),
            "ready": await client.is_server_ready(base),
            "model_ready": await client.is_model_ready(base, MODEL),
            "id": response.id,
            "outputs": len(response.outputs),
        }
    finally:
        await client.close()


async def grpc(address):
    client = InferenceGRPCClient(address, retries=0)
    try:
        response = await client.infer(request())
        return {
            "live": await client.is_server_live(),
            "ready": await client.is_server_ready(),
            "model_ready": await client.is_model_ready(MODEL),
            "id": response.id,
            "outputs": len(response.outputs),
        }
    finally:
        await client.close()


if __name__ == "__main__":
    http, grpc_address = sys.argv[1], sys.argv[2]
    results = {"rest": asyncio.run(rest("http://" + http)), "grpc": asyncio.run(grpc(grpc_address))}
    print(json.dumps(results))
