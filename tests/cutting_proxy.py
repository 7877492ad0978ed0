"""A TCP proxy in front of the app that loses one stream the way networks do: it cuts the response
to the first request whose line starts with `prefix` after `cut_after` bytes (mid-event), then
answers the next such request with a 503, as a proxy does while the app restarts (EventSource
gives up on a non-200, so the page has to reopen the stream by itself)."""

from __future__ import annotations

import socket
import threading

from scripts.services import free_port

_REFUSAL_BODY = b'{"error": {"code": "unavailable", "message": "service unavailable"}}\n'
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    + f"Content-Length: {len(_REFUSAL_BODY)}\r\nConnection: close\r\n\r\n".encode()
    + _REFUSAL_BODY
)


class CuttingProxy:
    def __init__(self, upstream_port: int, prefix: bytes, cut_after: int):
        self.upstream_port = upstream_port
        self.prefix = prefix
        self.cut_after = cut_after
        self.matched = 0  # requests seen that start with `prefix`
        self.seen: list[bytes] = []  # their request heads, for a failure's message
        self.port = free_port()
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.stopping = True
        self.listener.close()

    def _accept(self) -> None:
        while not self.stopping:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        # The browser sends one request at a time on a connection (no pipelining), so the bytes
        # that come back after a request are its response.
        budget = {"left": None}

        def requests_up():
            try:
                while chunk := client.recv(65536):
                    if chunk.startswith(self.prefix):
                        with self.lock:
                            self.matched += 1
                            self.seen.append(chunk.split(b"\r\n\r\n")[0])
                            nth = self.matched
                        if nth == 1:
                            budget["left"] = self.cut_after
                        elif nth == 2:
                            client.sendall(REFUSAL)
                            break
                    upstream.sendall(chunk)
            except OSError:
                pass
            _close(client, upstream)

        threading.Thread(target=requests_up, daemon=True).start()
        try:
            while chunk := upstream.recv(65536):
                left = budget["left"]
                if left is not None and len(chunk) >= left:
                    client.sendall(chunk[:left])
                    break  # the cut: mid-response, without the end of the chunked body
                if left is not None:
                    budget["left"] = left - len(chunk)
                client.sendall(chunk)
        except OSError:
            pass
        _close(client, upstream)


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
