"""Sentry through the real SDK to a real HTTP endpoint on this machine that records what arrives."""

import gzip
import json
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from indoor import create_app


class EnvelopeSink:
    """A stand-in for Sentry's ingest: accepts envelopes over HTTP and keeps their items."""

    def __init__(self):
        self.raw: list[bytes] = []
        self.items: list[tuple[dict, dict]] = []  # (item header, payload)
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                elif encoding == "br":
                    import brotli

                    body = brotli.decompress(body)
                sink.record(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def dsn(self, project: int = 42) -> str:
        return f"http://publickey@127.0.0.1:{self.port}/{project}"

    def record(self, body: bytes):
        self.raw.append(body)
        lines = body.split(b"\n")
        i = 1  # line 0 is the envelope header
        while i + 1 < len(lines):
            if not lines[i].strip():
                i += 1
                continue
            header = json.loads(lines[i])
            try:
                payload = json.loads(lines[i + 1])
            except ValueError:
                payload = {}
            self.items.append((header, payload))
            i += 2

    def of_type(self, kind: str) -> list[dict]:
        return [payload for header, payload in self.items if header.get("type") == kind]

    def close(self):
        self.server.shutdown()


@pytest.fixture
def sink():
    sink = EnvelopeSink()
    yield sink
    sink.close()
    import sentry_sdk

    sentry_sdk.init()  # no DSN: the SDK is off again for the rest of the run


def test_errors_and_traces_reach_sentry_with_request_id_and_without_pii(sink, database_url):
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "LOG_FORMAT": "text",
            "SENTRY_DSN": sink.dsn(),
            "SENTRY_TRACES_SAMPLE_RATE": 1.0,
            "SENTRY_ENVIRONMENT": "ci",
            "SENTRY_RELEASE": "indoor@1.2.3",
        }
    )

    def broken_view():
        raise RuntimeError("kaboom in a view")

    app.add_url_rule("/api/broken", "broken", broken_view)
    client = app.test_client()
    secret = "s3c" + "ret"  # built, so that the source lines Sentry attaches to a frame don't contain it
    secrets = {"Cookie": f"session={secret}-cookie", "Authorization": f"Bearer {secret}-token"}
    broken = client.get(
        "/api/broken?email=someone@example.org",
        headers={"X-Request-ID": "sentry-req-1", **secrets},
        environ_base={"REMOTE_ADDR": ".".join(["198", "51", "100", "77"])},
    )
    assert broken.status_code == 500
    assert broken.get_json() == {"error": {"code": "internal", "message": "internal error"}}
    assert client.get("/api/openapi.json", headers={"X-Request-ID": "sentry-req-2"}).status_code == 200
    assert client.get("/api/health/").status_code == 200
    assert client.get("/api/health/ready").status_code == 200
    stream = client.get("/api/openapi.json", headers={"Accept": "text/event-stream", "X-Request-ID": "sentry-req-3"})
    assert stream.status_code == 200

    import sentry_sdk

    sentry_sdk.flush(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (sink.of_type("event") and sink.of_type("transaction")):
        time.sleep(0.05)

    (error,) = [e for e in sink.of_type("event") if e.get("tags", {}).get("request_id") == "sentry-req-1"]
    assert error["exception"]["values"][-1]["type"] == "RuntimeError"
    assert error["environment"] == "ci" and error["release"] == "indoor@1.2.3"

    transactions = sink.of_type("transaction")
    traced = {t.get("tags", {}).get("request_id") for t in transactions}
    assert "sentry-req-2" in traced  # an ordinary request is traced, with its id
    assert "sentry-req-3" not in traced  # an event stream is not
    urls = [t.get("request", {}).get("url", "") for t in transactions]
    assert urls and not any("/api/health" in url for url in urls), urls  # nor are the probes

    everything = b"".join(sink.raw)
    for private in [secret.encode(), b"198.51.100.77", b"someone@example.org"]:
        at = everything.find(private)
        assert at < 0, everything[max(0, at - 300) : at + 100]
    app.extensions["indoor.db"].close()
