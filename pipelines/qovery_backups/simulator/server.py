"""The simulator's HTTP server: a local stand-in for https://api.qovery.com.

:class:`SimulatorServer` serves a :class:`~qovery_backups.simulator.world.World`
on 127.0.0.1 only, from a daemon thread, with HTTP/1.1 keep-alive. Each request
goes through these steps, in order: numbering and the fixed ``latency``, the
faults of :mod:`qovery_backups.simulator.faults`, the token check (401), the
method check (405 for anything but GET on a served path) and the endpoint of
:mod:`qovery_backups.simulator.routes`.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from qovery_backups.simulator import routes
from qovery_backups.simulator.faults import Faults, FaultKind
from qovery_backups.simulator.world import World

logger = logging.getLogger(__name__)

# Token accepted when the caller passes no tokens.
DEFAULT_TOKEN = "qov_test_token"

# Authorization schemes the API accepts: "Token" for API tokens, "Bearer" for JWTs (case-insensitive).
_AUTH_SCHEMES = ("token", "bearer")


@dataclass(frozen=True)
class RequestRecord:
    """One request the server received.

    Attributes:
        number: The request's number, from 1, which the faults are keyed on.
        method: The HTTP method.
        path: The URL path, without the query string.
        query: The query parameters, with the first value of a repeated name.
        headers: The request headers, including ``Authorization``.
        status: The response's status code, or None when the connection was dropped.
    """

    number: int
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int | None


class _HTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that can close its open keep-alive connections on stop."""

    daemon_threads = True

    def __init__(self, simulator: SimulatorServer, port: int) -> None:
        self.simulator = simulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _RequestHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        with self._connections_lock:
            self._connections.add(connection)
        return connection, address

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The base class prints the traceback to stderr, which would make the server noisy.
        logger.exception("the simulator failed to handle a connection from %s", client_address)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # The client closed it first.


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "QoverySimulator/1.0"
    # An idle keep-alive connection releases its thread after this many seconds.
    timeout = 30
    # The headers and the body go out in two writes. With Nagle's algorithm the body waits
    # for the client's delayed ACK of the headers, about 40 ms per response on Linux.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def do_GET(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
        self.server.simulator._handle(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        logger.debug("%s - " + format, self.address_string(), *args)


class SimulatorServer:
    """An HTTP server that serves a world like the Qovery API, for use as a context manager.

    Args:
        world: The data to serve. Tests may change it while the server runs.
        tokens: The tokens accepted after ``Token`` or ``Bearer`` in ``Authorization``.
        faults: The faults to inject, none by default. Tests may replace ``faults`` while
            the server runs.
        latency: Seconds to wait before responding to every request.
        page_size_as_float: Serve ``page_size`` as ``20.0`` rather than ``20``.
        port: TCP port to listen on. The default 0 picks a free port.

    Attributes:
        base_url: ``http://127.0.0.1:<port>``, set once the server is started.
        faults: The faults consulted for each request.
    """

    def __init__(
        self,
        world: World,
        tokens: Iterable[str] = (DEFAULT_TOKEN,),
        faults: Faults | None = None,
        latency: float = 0.0,
        page_size_as_float: bool = False,
        port: int = 0,
    ) -> None:
        self.world = world
        self.port = port
        self.tokens = frozenset(tokens)
        if not self.tokens:
            raise ValueError("tokens is empty: pass at least one token the server accepts")
        self.faults = faults or Faults()
        self.latency = latency
        self.page_size_as_float = page_size_as_float
        self.base_url = ""
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._log_lock = threading.Lock()
        self._request_count = 0
        self._records: list[RequestRecord] = []

    # ----- lifecycle -----

    def start(self) -> SimulatorServer:
        """Start serving on 127.0.0.1 and return the server.

        Raises:
            RuntimeError: If the server is already running.
            OSError: If the port is in use.
        """
        if self._httpd is not None:
            raise RuntimeError(f"the simulator is already running at {self.base_url}")
        self._httpd = _HTTPServer(self, self.port)
        host, port = self._httpd.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        # A short poll interval makes stop() return within about 50 ms instead of the default 0.5 s.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"qovery-simulator-{port}", daemon=True
        )
        self._thread.start()
        logger.info("Qovery API simulator listening on %s (%s)", self.base_url, self.world.summary())
        return self

    def stop(self) -> None:
        """Stop serving, close every open connection and wait for the server thread. Does nothing if stopped."""
        if self._httpd is None or self._thread is None:
            return
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        self._thread.join()
        logger.info("Qovery API simulator at %s stopped, requests received: %d", self.base_url, self._request_count)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ----- request log -----

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, in the order the server finished handling the requests."""
        with self._log_lock:
            return list(self._records)

    def count(self, path_prefix: str | None = None) -> int:
        """Return the number of logged requests, or of those whose path starts with ``path_prefix``."""
        with self._log_lock:
            return sum(1 for record in self._records if path_prefix is None or record.path.startswith(path_prefix))

    def reset_log(self) -> None:
        """Empty the request log and number the next request 1, so faults count from there."""
        with self._log_lock:
            self._records.clear()
            self._request_count = 0

    def _next_request_number(self) -> int:
        with self._log_lock:
            self._request_count += 1
            return self._request_count

    def _log(self, record: RequestRecord) -> None:
        # The record is stored before the response is written, so a client that has its
        # response already finds the request in the log.
        with self._log_lock:
            self._records.append(record)
        logger.debug("request %d: %s %s -> %s", record.number, record.method, record.path, record.status)

    # ----- request handling -----

    def _handle(self, handler: _RequestHandler) -> None:
        number = self._next_request_number()
        url = urlsplit(handler.path)
        query: dict[str, str] = {}
        for name, value in parse_qsl(url.query, keep_blank_values=True):
            query.setdefault(name, value)
        headers = {name: value for name, value in handler.headers.items()}
        _discard_request_body(handler)
        faults = self.faults

        def log(status: int | None) -> None:
            self._log(RequestRecord(number, handler.command, url.path, query, headers, status))

        delay = self.latency + faults.delay_for(number)
        if delay:
            time.sleep(delay)
        try:
            response = self._respond(handler, url.path, query, faults, number)
        except Exception:
            logger.exception("request %d: %s %s failed in the simulator", number, handler.command, url.path)
            response = routes.error_response(500, "the simulator failed to build the response, see its log")
        if response is None:
            log(None)
            handler.close_connection = True
            logger.debug("request %d: dropped the connection (fault)", number)
            return
        body = json.dumps(response.body).encode()
        if response.status == 200 and faults.truncates(number):
            body = body[: len(body) // 2]
        log(response.status)
        try:
            _send(handler, response.status, body, response.headers)
        except OSError as error:
            # A client that timed out has closed its socket, which is expected in timeout tests.
            handler.close_connection = True
            logger.debug("request %d: the client closed the connection before the response: %s", number, error)

    def _respond(
        self, handler: _RequestHandler, path: str, query: Mapping[str, str], faults: Faults, number: int
    ) -> routes.Response | None:
        fault = faults.replacement_for(number)
        if fault is FaultKind.DROP_CONNECTION:
            return None
        if fault is FaultKind.SERVER_ERROR:
            return routes.error_response(faults.server_error_status, "simulated server error")
        if fault is FaultKind.RATE_LIMIT:
            headers = {
                "Retry-After": str(faults.retry_after_seconds),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(time.time()) + faults.retry_after_seconds),
            }
            return routes.error_response(429, "rate limit exceeded, retry after Retry-After seconds", headers)
        if not self._is_authorized(handler.headers.get("Authorization")):
            return routes.error_response(401, "access token is missing or invalid")
        if handler.command != "GET":
            if routes.is_known_path(path):
                return routes.error_response(405, f"{handler.command} is not served on {path}", {"Allow": "GET"})
            return routes.error_response(404, f"no resource at {path}")
        options = routes.RouteOptions(
            page_size_as_float=self.page_size_as_float, ignore_start_id=faults.ignore_start_id
        )
        return routes.route(self.world, path, query, options)

    def _is_authorized(self, authorization: str | None) -> bool:
        if not authorization:
            return False
        scheme, _, token = authorization.strip().partition(" ")
        return scheme.lower() in _AUTH_SCHEMES and token.strip() in self.tokens


def _discard_request_body(handler: _RequestHandler) -> None:
    # Reading the body keeps a keep-alive connection in step for the next request.
    length = int(handler.headers.get("Content-Length") or 0)
    if length > 0:
        handler.rfile.read(length)


def _send(handler: _RequestHandler, status: int, body: bytes, headers: Mapping[str, str]) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)
