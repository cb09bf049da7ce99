"""HTTP/1.1 front of the stand-in: routing by prefix, keep-alive, writing replies.

One thread per connection (ThreadingHTTPServer) and persistent connections, every
reply with a Content-Length. Requests under `<prefix>/_control/` go to the control
interface, everything else is an API request.
"""

import contextlib
import selectors
import socket
import struct
import sys
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import api, control
from .errors import ApiError
from .instance import Instance

CONTROL_SEGMENT = "/_control/"
MAX_BODY = 512 * 1024 * 1024  # a 300,000-item load() through the control API fits


def normalize_prefix(prefix: str) -> str:
    """ "" or "/ns": leading slash, no trailing slash."""
    prefix = prefix.strip().strip("/")
    return f"/{prefix}" if prefix else ""


class StandinHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    # handle_request() is only called when the listening socket is ready; a zero
    # timeout keeps it from blocking if the connection vanished before accept.
    timeout = 0.0

    def __init__(self, address: tuple[str, int], instance: Instance, prefix: str = "") -> None:
        self.instance = instance
        self.prefix = normalize_prefix(prefix)
        # Open connections, so that stopping the server also ends the keep-alive
        # connections clients still hold, instead of serving them from a "stopped"
        # stand-in.
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        # serve_forever() notices a shutdown only at its next poll, 50 ms or so; a
        # test suite starting a stand-in per test would spend its time waiting. A
        # socket pair lets stop_serving() wake the loop at once.
        self._stopping = threading.Event()
        self._wake_reader, self._wake_writer = socket.socketpair()
        super().__init__(address, _Handler)

    def serve(self) -> None:
        """Accept connections until `stop_serving()`; each is served in its own thread."""
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self and not self._stopping.is_set():
                        self.handle_request()

    def stop_serving(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"\0")

    def server_close(self) -> None:
        super().server_close()
        self._wake_reader.close()
        self._wake_writer.close()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already gone
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-answer is normal for a test double; anything else
        # is a bug in the stand-in and worth the traceback.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "NonSistemas"
    sys_version = ""
    timeout = 300  # idle keep-alive connections give their thread back eventually
    server: StandinHTTPServer

    def setup(self) -> None:
        super().setup()
        # Replies are written in one piece; no reason to let Nagle hold them back.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the instance keeps its own request log; stderr stays quiet

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_OPTIONS(self) -> None:
        self._serve()

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return None  # no client of this API streams request bodies
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            return None
        if not 0 <= length <= MAX_BODY:
            return None
        return self.rfile.read(length)

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            self.close_connection = True
            error = {"codigo": "parametro_invalido", "mensaje": "Cuerpo ilegible"}
            self._write(api.json_reply(400, {"error": error}))
            return
        parts = urlsplit(self.path)
        prefix = self.server.prefix
        path = parts.path
        relative = path[len(prefix) :] if path.startswith(prefix + "/") else None
        instance = self.server.instance
        try:
            reply = self._reply(instance, path, relative, parts.query, body)
        except Exception:
            # A bug of the stand-in: answer what a real instance would, keep the
            # traceback visible, and keep serving.
            traceback.print_exc()
            reply = api.error_reply(ApiError("error_interno"))
        self._write(reply)

    def _reply(
        self, instance: Instance, path: str, relative: str | None, query: str, body: bytes
    ) -> api.Reply:
        if relative is not None and relative.startswith(CONTROL_SEGMENT):
            name = relative[len(CONTROL_SEGMENT) :]
            return control.handle(instance, name, self.command, body)
        request = api.ApiRequest(
            method=self.command,
            # Outside the prefix nothing matches; keep the full path for the log.
            path=relative if relative is not None else path,
            query=parse_qs(query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            under_prefix=relative is not None,
        )
        return api.handle(instance, request)

    def _write(self, reply: api.Reply) -> None:
        if reply.reset:
            self._reset_connection()
            return
        try:
            phrase = HTTPStatus(reply.status).phrase
        except ValueError:
            phrase = ""
        lines = [
            f"HTTP/1.1 {reply.status} {phrase}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
            f"Content-Type: {reply.content_type}",
            f"Content-Length: {len(reply.body)}",
        ]
        lines += [f"{name}: {value}" for name, value in reply.headers.items()]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # One write for head and body: two small writes would meet the client's
        # delayed ACK and cost tens of milliseconds per request.
        self.wfile.write(head if self.command == "HEAD" else head + reply.body)

    def _reset_connection(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN. The
        # socket must be really closed here, before the server's shutdown_request
        # would send a FIN. rfile holds a reference to the socket; close it first.
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.connection.close()
