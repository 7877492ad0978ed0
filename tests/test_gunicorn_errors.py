"""No HTML from gunicorn: requests gunicorn itself refuses while parsing (before the app sees them)
are answered in the API's JSON error shape with gunicorn's status, over raw sockets against a real
gunicorn (config/gunicorn_worker.py). Before, each of these got gunicorn's HTML error page."""

from __future__ import annotations

import socket

import pytest

from tests import strict_json

GET = b"GET /api/health/ HTTP/1.1\r\n"
# name -> (the bytes sent, the status gunicorn gives them)
MALFORMED = {
    "duplicate Host": (GET + b"Host: a.example\r\nHost: b.example\r\n\r\n", 400),
    "lower-case method": (b"get /api/health/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "garbage method": (b"G(T /api/health/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "HTTP/2 preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    "obs-fold": (GET + b"Host: x\r\nX-Folded: one\r\n two\r\n\r\n", 400),
    "Content-Length with Transfer-Encoding": (
        b"POST /api/health/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "negative Content-Length": (b"POST /api/health/ HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    "control character in a header": (GET + b"Host: x\r\nX-Bad: a\x01b\r\n\r\n", 400),
    "64 kB header": (GET + b"Host: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n", 431),
    "unsupported Transfer-Encoding": (
        b"POST /api/health/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        400,
    ),
}


def send_raw(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Everything the server writes back before it closes (it may close before reading all of a
    large request: a reset then ends what was read)."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    return received


@pytest.fixture(scope="module")
def gunicorn(database_url, redis_url, workdir):
    from scripts.services import GunicornServer
    from tests.conftest import TEST_RATE_LIMITS

    server = GunicornServer({"DATABASE_URL": database_url, "REDIS_URL": redis_url, **TEST_RATE_LIMITS})
    server.start(workdir / f"gunicorn-{server.port}.log")
    yield server
    server.stop()


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_what_gunicorn_refuses_is_answered_as_json(gunicorn, name):
    request, status = MALFORMED[name]
    answer = send_raw(gunicorn.port, request)
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} "), answer[:300]
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    assert b"<" not in body
    error = strict_json.loads(body)["error"]
    assert set(error) == {"code", "message"} and error["code"] and error["message"]


def test_the_server_still_answers_after_them(gunicorn):
    for request, _ in MALFORMED.values():
        send_raw(gunicorn.port, request)
    answer = send_raw(gunicorn.port, GET + b"Host: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ")
