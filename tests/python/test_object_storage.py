"""Models from object storage: `parameters.uri` of s3:// (moto's S3 server) and http:// and
https:// (a web server of the test's own, its CA given to mlhost as SSL_CERT_FILE), against the
real mlhost binary.

A model fetched by uri answers as the same model read from disk; a second start with the same
cache downloads nothing (no GET reaches either server); a corrupt, cut-short, too large, missing
or unsupported download leaves its model unavailable with the reason in the repository index, and
nothing of it in the cache; the repository load call fetches a uri its config names.
"""

import hashlib
import http.client
import http.server
import json
import logging
import os
import shutil
import ssl
import tempfile
import threading
import unittest
from email.utils import formatdate

import boto3
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from mlhost_server import ROOT, Server

EXAMPLES = os.path.join(ROOT, "examples", "models")
BUCKET = "models"
# house-prices: 150·x₀ + 12.5·x₁ − 0.75·x₂ + 20; HALF halves every coefficient.
HALF = {"kind": "linear", "coefficients": [[75.0, 6.25, -0.375]], "intercepts": [10.0], "input_name": "features"}


def read(*path):
    with open(os.path.join(EXAMPLES, *path), "rb") as f:
        return f.read()


class Requests:
    """The requests a server saw, as (method, path)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seen = []

    def add(self, method, path):
        with self.lock:
            self.seen.append((method, path))

    def clear(self):
        with self.lock:
            self.seen.clear()

    def gets(self):
        with self.lock:
            return [path for method, path in self.seen if method == "GET"]


def corrupting(app, requests):
    """moto's WSGI app, its requests logged, and the bytes of every object under `corrupt/`
    flipped on GET (the same length: only a checksum can tell)."""
    def wrapped(environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING")
        requests.add(method, path + ("?" + query if query else ""))
        body = app(environ, start_response)
        if method == "GET" and "/corrupt/" in path:
            return [bytes(byte ^ 0xFF for byte in b"".join(body))]
        return body
    return wrapped


class WebFiles(http.server.BaseHTTPRequestHandler):
    """A web server of FILES (path -> bytes): a path under /truncated/ is cut short (its whole
    length announced, half of it sent), one under /corrupt/ sent with its bytes flipped."""

    files = {}
    requests = Requests()
    protocol_version = "HTTP/1.1"

    def do_HEAD(self):
        self.answer(send_body=False)

    def do_GET(self):
        self.answer(send_body=True)

    def answer(self, send_body):
        self.requests.add(self.command, self.path)
        body = self.files.get(self.path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Last-Modified", formatdate(1764892800, usegmt=True))
        self.end_headers()
        if not send_body:
            return
        if self.path.startswith("/truncated/"):
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path.startswith("/corrupt/"):
            body = bytes(byte ^ 0xFF for byte in body)
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class TlsWebFiles(WebFiles):
    """The same files, over HTTPS, with a log of their own."""

    requests = Requests()


def tls_files(folder):
    """A CA's certificate and a certificate it signs for 127.0.0.1 with its key (PEM files):
    the web server's HTTPS, which mlhost trusts through SSL_CERT_FILE."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import datetime
    import ipaddress

    def name(text):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def certificate(subject, public_key, ca, extension):
        return (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name("test CA"))
                .public_key(public_key).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(hours=1))
                .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                .add_extension(extension, critical=False)
                .sign(ca_key, hashes.SHA256()))
    ca = certificate("test CA", ca_key.public_key(), True,
                     x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()))
    leaf = certificate("127.0.0.1", key.public_key(), False,
                       x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]))
    paths = [os.path.join(folder, file) for file in ["ca.pem", "server.pem", "server.key"]]
    for path, pem in zip(paths, [ca.public_bytes(serialization.Encoding.PEM),
                                 leaf.public_bytes(serialization.Encoding.PEM),
                                 key.private_bytes(serialization.Encoding.PEM,
                                                   serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption())]):
        with open(path, "wb") as f:
            f.write(pem)
    return paths


def serve(server):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


def write_model(root, name, settings):
    folder = os.path.join(root, name)
    os.makedirs(folder)
    with open(os.path.join(folder, "model-settings.json"), "w") as f:
        json.dump(dict(settings, name=name), f)


# Models load concurrently, and pinned content already in the cache is not asked for: each model
# whose requests the test counts has content of its own (the same model, a space or line more).
XGBOOST = read("xgboost-classifier", "model.json")
CORRUPT_XGBOOST = XGBOOST + b"\n"
TLS_XGBOOST = XGBOOST + b" "
IRIS_PINNED = read("iris", "linear.json") + b"\n"


def start_s3():
    """moto's S3 on a free port, with the test's objects; the server's AWS_* variables."""
    global S3, S3_REQUESTS
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    S3_REQUESTS = Requests()
    app = corrupting(DomainDispatcherApplication(create_backend_app), S3_REQUESTS)
    S3 = serve(make_server("127.0.0.1", 0, app, threaded=True))
    s3_url = "http://127.0.0.1:%d" % S3.server_port
    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=BUCKET)
    house_prices = read("house-prices", "linear.json")
    for key, body in [("house-prices/linear.json", house_prices),
                      ("half/linear.json", json.dumps(HALF).encode()),
                      ("corrupt/linear.json", house_prices),
                      ("iris/linear.json", read("iris", "linear.json")),
                      ("iris-pinned/linear.json", IRIS_PINNED),
                      # Over the 1 MiB limit the tests' server has.
                      ("big/linear.json", b" " * (3 << 19))]:
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return {"AWS_ENDPOINT_URL": s3_url, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            # The test's servers are reached directly, whatever proxy the machine has.
            "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}


def start_web():
    """The web server over HTTP and over HTTPS (its CA in TLS/ca.pem); their base URLs."""
    global WEB, WEB_TLS, TLS
    WebFiles.files = {"/xgb/model.json": XGBOOST, "/truncated/model.json": XGBOOST,
                      "/corrupt/model.json": CORRUPT_XGBOOST}
    TlsWebFiles.files = {"/xgb/model.json": TLS_XGBOOST}
    WEB = serve(http.server.ThreadingHTTPServer(("127.0.0.1", 0), WebFiles))
    TLS = tempfile.mkdtemp(prefix="mlhost-storage-tls-")
    _, certificate, key = tls_files(TLS)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    WEB_TLS = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TlsWebFiles)
    WEB_TLS.socket = context.wrap_socket(WEB_TLS.socket, server_side=True)
    serve(WEB_TLS)
    return "http://127.0.0.1:%d" % WEB.server_port, "https://127.0.0.1:%d" % WEB_TLS.server_port


def write_models(web, web_tls):
    """The repository: the example models from disk, and models by uri."""
    global MODELS
    MODELS = tempfile.mkdtemp(prefix="mlhost-storage-models-")
    for name in ["house-prices", "xgboost-classifier"]:
        shutil.copytree(os.path.join(EXAMPLES, name), os.path.join(MODELS, name + "-disk"))
        path = os.path.join(MODELS, name + "-disk", "model-settings.json")
        with open(path) as f:
            settings = json.load(f)
        with open(path, "w") as f:
            json.dump(dict(settings, name=name + "-disk"), f)
    with open(os.path.join(EXAMPLES, "house-prices", "model-settings.json")) as f:
        linear = json.load(f)
    xgb = {"implementation": "xgboost"}
    for name, settings in [
        ("s3-file", dict(linear, parameters={"uri": "s3://models/house-prices/linear.json"})),
        ("s3-folder", {"implementation": "linear", "parameters": {"uri": "s3://models/iris/"}}),
        ("s3-folder-pinned", {"implementation": "linear", "parameters": {
            "uri": "s3://models/iris-pinned/",
            "uri_sha256": {"linear.json": hashlib.sha256(IRIS_PINNED).hexdigest()}}}),
        ("s3-corrupt", dict(linear, parameters={"uri": "s3://models/corrupt/linear.json"})),
        ("s3-too-big", dict(linear, parameters={"uri": "s3://models/big/linear.json"})),
        ("s3-missing", dict(linear, parameters={"uri": "s3://models/nothing/"})),
        ("ftp", dict(linear, parameters={"uri": "ftp://127.0.0.1/linear.json"})),
        ("web-file", dict(xgb, parameters={"uri": web + "/xgb/model.json",
                                            "uri_sha256": hashlib.sha256(XGBOOST).hexdigest()})),
        ("web-https", dict(xgb, parameters={"uri": web_tls + "/xgb/model.json"})),
        ("web-truncated", dict(xgb, parameters={"uri": web + "/truncated/model.json"})),
        ("web-corrupt", dict(xgb, parameters={"uri": web + "/corrupt/model.json",
                                               "uri_sha256": hashlib.sha256(CORRUPT_XGBOOST).hexdigest()})),
    ]:
        write_model(MODELS, name, settings)


def setUpModule():
    global CACHE, ENV
    ENV = start_s3()
    web, web_tls = start_web()
    write_models(web, web_tls)
    CACHE = tempfile.mkdtemp(prefix="mlhost-storage-cache-")
    ENV.update(MLHOST_MODEL_CACHE_DIR=CACHE, MLHOST_MAX_MODEL_DOWNLOAD_MB="1",
               SSL_CERT_FILE=os.path.join(TLS, "ca.pem"))


def tearDownModule():
    for server in [S3, WEB, WEB_TLS]:
        server.shutdown()
        server.server_close()
    shutil.rmtree(TLS, ignore_errors=True)
    shutil.rmtree(MODELS, ignore_errors=True)
    shutil.rmtree(CACHE, ignore_errors=True)


def call(server, method, path, body=None):
    connection = http.client.HTTPConnection(server.http, timeout=30)
    try:
        connection.request(method, path, None if body is None else json.dumps(body),
                           {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def infer(server, model, rows):
    status, metadata = call(server, "GET", "/v2/models/%s" % model)
    assert status == 200, (model, metadata)
    data = [value for row in rows for value in row]
    request = {"inputs": [{"name": metadata["inputs"][0]["name"], "datatype": "FP32",
                           "shape": [len(rows), len(rows[0])], "data": data}]}
    status, answer = call(server, "POST", "/v2/models/%s/infer" % model, request)
    assert status == 200, (model, answer)
    return {output["name"]: output["data"] for output in answer["outputs"]}


def index(server):
    status, models = call(server, "POST", "/v2/repository/index", {})
    assert status == 200, models
    return {model["name"]: model for model in models}


class ObjectStorageTest(unittest.TestCase):
    def test_models_by_uri_serve_as_from_disk_then_restart_from_the_cache(self):
        S3_REQUESTS.clear()
        WebFiles.requests.clear()
        TlsWebFiles.requests.clear()
        server = Server(MODELS, extra_env=ENV)
        try:
            self.check_served(server)
            self.check_refusals(server)
        finally:
            server.close()
        self.assertIn("/models/house-prices/linear.json", S3_REQUESTS.gets())
        # Each fetch logs one line when its files are ready.
        self.assertTrue(any("model files ready" in line and "s3://models/iris/" in line
                            for line in server.lines), server.lines)
        self.assertIn("/models/iris-pinned/linear.json", S3_REQUESTS.gets())
        self.assertIn("/xgb/model.json", WebFiles.requests.gets())
        self.assertIn("/xgb/model.json", TlsWebFiles.requests.gets())
        # Nothing of the refused downloads is cached: three objects from S3 (the linear
        # models), one from each web server, and no temporary file left.
        self.assertEqual(len(os.listdir(os.path.join(CACHE, "blobs"))), 5)
        self.assertEqual(os.listdir(os.path.join(CACHE, "tmp")), [])

        S3_REQUESTS.clear()
        WebFiles.requests.clear()
        TlsWebFiles.requests.clear()
        server = Server(MODELS, extra_env=ENV)
        try:
            self.check_served(server)
            self.check_refusals(server)
            # The second start downloads nothing: S3 is asked whether the objects changed
            # (HEAD, a listing), the pinned web file is not asked for at all.
            downloads = [path for path in S3_REQUESTS.gets()
                         if path.split("?")[0].rstrip("/") != "/models" and "/corrupt/" not in path]
            self.assertEqual(downloads, [])
            # The pinned folder's files are all in the cache: the store is not even listed.
            self.assertEqual([path for _, path in S3_REQUESTS.seen if "iris-pinned" in path], [])
            self.assertNotIn("/xgb/model.json", [path for _, path in WebFiles.requests.seen])
            self.assertEqual(TlsWebFiles.requests.gets(), [])
            self.check_load_call(server)
        finally:
            server.close()

    def test_a_single_model_from_variables_by_uri(self):
        """MLServer's single-model variables with MLSERVER_MODEL_URI in S3 (a cache of its own)."""
        models, cache = tempfile.mkdtemp(), tempfile.mkdtemp()
        env = dict(ENV, MLHOST_MODEL_CACHE_DIR=cache, MLSERVER_MODEL_NAME="from-variables",
                   MLSERVER_MODEL_IMPLEMENTATION="linear",
                   MLSERVER_MODEL_URI="s3://models/half/linear.json")
        server = Server(models, extra_env=env)
        try:
            self.assertEqual(infer(server, "from-variables", [[1.0, 2.0, 4.0]])["predict"], [96.0])
        finally:
            server.close()
            shutil.rmtree(models, ignore_errors=True)
            shutil.rmtree(cache, ignore_errors=True)

    def check_served(self, server):
        models = index(server)
        for name in ["s3-file", "s3-folder", "s3-folder-pinned", "web-file", "web-https", "house-prices-disk",
                     "xgboost-classifier-disk"]:
            self.assertEqual(models[name]["state"], "READY", models[name])
        rows = [[1.0, 2.0, 4.0], [3.0, 0.0, 1.0]]
        self.assertEqual(infer(server, "s3-file", rows), infer(server, "house-prices-disk", rows))
        self.assertEqual(infer(server, "s3-file", rows)["predict"], [192.0, 469.25])
        rows = [[0.1, 0.2, 0.3, 0.4, 0.5], [1.0, -1.0, 2.0, -2.0, 0.0]]
        self.assertEqual(infer(server, "web-file", rows), infer(server, "xgboost-classifier-disk", rows))
        self.assertEqual(infer(server, "web-https", rows), infer(server, "xgboost-classifier-disk", rows))
        flowers = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
        self.assertEqual(infer(server, "s3-folder", flowers)["predict"], [0, 2])
        self.assertEqual(infer(server, "s3-folder-pinned", flowers)["predict"], [0, 2])

    def check_refusals(self, server):
        models = index(server)

        def reason(name):
            self.assertEqual(models[name]["state"], "UNAVAILABLE", models[name])
            status, _ = call(server, "GET", "/v2/models/%s/ready" % name)
            self.assertNotEqual(status, 200, name)
            return models[name]["reason"]
        self.assertIn("checksum mismatch", reason("s3-corrupt"))
        self.assertIn("ETag", reason("s3-corrupt"))
        self.assertIn("checksum mismatch", reason("web-corrupt"))
        self.assertIn("uri_sha256", reason("web-corrupt"))
        self.assertIn("cut short", reason("web-truncated"))
        self.assertIn("over the download limit of 1048576 bytes", reason("s3-too-big"))
        self.assertIn("no object or folder", reason("s3-missing"))
        self.assertIn("not ftp://", reason("ftp"))
        self.assertIn("s3://", reason("ftp"))

    def check_load_call(self, server):
        """The repository load call with a config naming a uri fetches it."""
        S3_REQUESTS.clear()
        config = json.dumps({"parameters": {"uri": "s3://models/half/linear.json"}})
        status, answer = call(server, "POST", "/v2/repository/models/house-prices-disk/load",
                              {"parameters": {"config": config}})
        self.assertEqual(status, 200, answer)
        self.assertIn("/models/half/linear.json", S3_REQUESTS.gets())
        self.assertEqual(infer(server, "house-prices-disk", [[1.0, 2.0, 4.0]])["predict"], [96.0])
        config = json.dumps({"parameters": {"uri": "s3://models/corrupt/linear.json"}})
        status, answer = call(server, "POST", "/v2/repository/models/s3-file/load",
                              {"parameters": {"config": config}})
        self.assertEqual(status, 400, answer)
        self.assertIn("checksum mismatch", answer["error"])
        # The version that served keeps serving.
        self.assertEqual(infer(server, "s3-file", [[1.0, 2.0, 4.0]])["predict"], [192.0])


if __name__ == "__main__":
    unittest.main()
