"""A fault-injecting HTTP reverse proxy for S3 tests: clients talk to it, it talks to the moto server.

Every request is forwarded as it came (method, path, query, headers, body) unless a :class:`Fault`
rule matches it; then the proxy answers in the rule's way instead:

- ``"slowdown"``: ``503 SlowDown`` with S3's XML error body (throttling);
- ``"internal"``: ``500 InternalError`` with S3's XML error body;
- ``"drop"``: the connection is closed halfway through the request body (or right after the
  headers of a request without one), with no response: the server never sees a complete request;
- ``"lost"``: the request *is* forwarded (the server acts on it), then the connection is closed
  instead of answering: the client cannot tell whether it happened;
- ``"truncate"``: the request is forwarded and the response starts (status, headers with the full
  ``Content-Length``), but the connection is closed halfway through the body (a download cut off).

A rule matches ``"METHOD /bucket/key?query"`` (path-style addressing, as s3fs, boto3 and pyarrow
use against a custom endpoint) with a regular expression, optionally only for some methods, and
fires for its first ``times`` matching requests (a transient fault) or for every one
(``times=None``, a permanent fault). Each rule counts the requests it matched and the faults it
injected, so a test can assert that the faults really happened.

Request bodies arrive with ``Content-Length`` or ``Transfer-Encoding: chunked`` and possibly after
``Expect: 100-continue`` (answered by the proxy); they are forwarded with a ``Content-Length``
(transfer encodings are hop-by-hop; an ``aws-chunked`` *content* encoding is passed on untouched).
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

KINDS = ("slowdown", "internal", "drop", "lost", "truncate")
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
               "trailer", "trailers", "transfer-encoding", "upgrade", "expect"}
_ERRORS = {
    "slowdown": (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    "internal": (500, "Internal Server Error", "InternalError", "We encountered an internal error. Please try again."),
}


@dataclass
class Fault:
    """One rule: answer requests matching ``pattern`` (and ``methods``) with ``kind``, ``times`` times."""

    kind: str
    pattern: str
    times: int | None = None  # None: every matching request (a permanent fault)
    methods: tuple[str, ...] | None = None
    matched: int = 0  # requests that matched the rule
    injected: int = 0  # faults injected (matched while the rule was still active)
    seen: list[str] = field(default_factory=list)  # "METHOD /path" of each injected fault

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {KINDS}")
        self._regex = re.compile(self.pattern)

    def applies(self, method: str, target: str) -> bool:
        return (self.methods is None or method in self.methods) and bool(self._regex.search(f"{method} {target}"))

    @property
    def active(self) -> bool:
        return self.times is None or self.injected < self.times


class FaultyS3Proxy:
    """A threaded reverse proxy in front of ``upstream`` (``http://host:port``) on 127.0.0.1.

    Use as a context manager or call :meth:`start` / :meth:`stop`; :attr:`endpoint` is the URL
    to give clients (``AWS_ENDPOINT_URL``); it listens on ``port`` (default: a free one).
    :attr:`log` records ``(method, target, outcome)`` of every request, the outcome being the
    upstream status or the fault kind.
    """

    def __init__(self, upstream: str, *, port: int = 0) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self.upstream_url = upstream
        self.port = port
        self.upstream = (parts.hostname, parts.port)
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, str]] = []
        self.headers: list[dict[str, str]] = []  # the request headers of each entry of the log
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- rules and counters -------------------------------------------------------------------

    def add(self, kind: str, pattern: str, *, times: int | None = None, methods: tuple[str, ...] | None = None) -> Fault:
        """Add a rule (see :class:`Fault`) and return it (its counters update as requests come)."""
        fault = Fault(kind, pattern, times=times, methods=methods)
        with self._lock:
            self.faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        """Remove one rule (its counters stay as they were)."""
        with self._lock:
            self.faults = [f for f in self.faults if f is not fault]

    def clear(self) -> None:
        """Remove every rule (the request log is kept)."""
        with self._lock:
            self.faults = []

    def reset(self) -> None:
        """Remove every rule and forget the request log."""
        with self._lock:
            self.faults = []
            self.log = []
            self.headers = []

    def injected(self, kind: str | None = None) -> int:
        """Faults injected so far (of one kind, or of all)."""
        with self._lock:
            return sum(f.injected for f in self.faults if kind is None or f.kind == kind)

    def requests(self, pattern: str = "", method: str | None = None) -> list[tuple[str, str, str]]:
        """The logged requests whose ``"METHOD target"`` matches ``pattern`` (and ``method``)."""
        regex = re.compile(pattern)
        with self._lock:
            return [r for r in self.log if (method is None or r[0] == method) and regex.search(f"{r[0]} {r[1]}")]

    def _decide(self, method: str, target: str) -> Fault | None:
        with self._lock:
            chosen = None
            for fault in self.faults:
                if fault.applies(method, target):
                    fault.matched += 1
                    if chosen is None and fault.active:
                        fault.injected += 1
                        fault.seen.append(f"{method} {target}")
                        chosen = fault
            return chosen

    def _record(self, method: str, target: str, outcome: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.log.append((method, target, outcome))
            self.headers.append(headers)

    # -- server -------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy is not running")
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> FaultyS3Proxy:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="faulty-s3-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            for conn in list(self._connections):  # idle keep-alive connections of the clients
                _close(conn)
            self._connections.clear()
        self._server = None

    def __enter__(self) -> FaultyS3Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _close(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # the client closed it first: nothing left to shut down
    conn.close()


class _Handler(BaseHTTPRequestHandler):
    owner: FaultyS3Proxy
    protocol_version = "HTTP/1.1"  # keep-alive, and Expect: 100-continue answered by parse_request

    def setup(self) -> None:
        super().setup()
        with self.owner._lock:
            self.owner._connections.add(self.connection)

    def finish(self) -> None:
        with self.owner._lock:
            self.owner._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass  # a connection the proxy dropped on purpose cannot be flushed

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (quiet: the test reads .log)
        return

    def do_GET(self) -> None:
        self._proxy()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    def _proxy(self) -> None:
        method = self.command
        target = unquote(self.path)
        fault = self.owner._decide(method, target)
        seen = {k.lower(): v for k, v in self.headers.items()}
        if fault is not None and fault.kind == "drop":
            self._read_body(limit_fraction=0.5)
            self.owner._record(method, target, "drop", seen)
            self._drop()
            return
        body = self._read_body()
        if fault is not None and fault.kind in _ERRORS:
            self.owner._record(method, target, fault.kind, seen)
            self._error(*_ERRORS[fault.kind])
            return
        try:
            status, reason, headers, payload = self._forward(body)
        except OSError as e:  # the upstream went away: say so as a gateway would
            self.owner._record(method, target, f"upstream: {e}", seen)
            self._error(502, "Bad Gateway", "InternalError", f"upstream: {e}")
            return
        if fault is not None and fault.kind == "lost":  # the server acted on it, the answer never arrives
            self.owner._record(method, target, "lost", seen)
            self._drop()
            return
        cut = fault is not None and fault.kind == "truncate"
        self.owner._record(method, target, "truncate" if cut else str(status), seen)
        self.send_response(status, reason)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        if method == "HEAD":
            length = next((v for k, v in headers if k.lower() == "content-length"), None)
            if length is not None:
                self.send_header("Content-Length", length)
        elif status not in (204, 304):
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if cut:
            self.wfile.write(payload[: len(payload) // 2])
            self._drop()
        elif method != "HEAD" and payload:
            self.wfile.write(payload)

    def _read_body(self, limit_fraction: float = 1.0) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # skip the trailers up to the blank line
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)  # the CRLF after the chunk
                if limit_fraction < 1.0:
                    break  # a drop mid-body: enough was read
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(int(length * limit_fraction)) if length else b""

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self.owner.upstream, timeout=60)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():  # Host included: the client signed it
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    conn.putheader(name, value)
            if body or "Content-Length" in self.headers or "chunked" in self.headers.get("Transfer-Encoding", ""):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            resp = conn.getresponse()
            payload = resp.read()
            return resp.status, resp.reason, resp.getheaders(), payload
        finally:
            conn.close()

    def _error(self, status: int, reason: str, code: str, message: str) -> None:
        request_id = uuid.uuid4().hex[:16].upper()
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<RequestId>{request_id}</RequestId><HostId>faulty-s3-proxy</HostId></Error>"
        ).encode()
        self.send_response(status, reason)
        self.send_header("Content-Type", "application/xml")
        self.send_header("x-amz-request-id", request_id)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _drop(self) -> None:
        self.close_connection = True
        _close(self.connection)
