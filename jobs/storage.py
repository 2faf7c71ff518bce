"""Storage URLs for every job: local paths, ``file://``, ``s3://`` and ``memory://``.

Conventions
-----------
- A *URL* is what a user types: ``/data/ads``, ``file:///data/ads``, ``s3://bucket/ads`` or
  ``memory://scratch`` (in-process only, for notebooks and tests; Ray workers do not share it).
- S3 settings come from the standard AWS variables: ``AWS_ENDPOINT_URL`` (or
  ``AWS_ENDPOINT_URL_S3``), ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
  ``AWS_SESSION_TOKEN``, ``AWS_REGION`` / ``AWS_DEFAULT_REGION``. :func:`worker_env` collects
  them so that Ray workers on other machines see the same settings (``runtime_env.env_vars``).
- Writes are atomic: :func:`atomic_write` writes to a temporary file and only then renames it
  into place (local) or uploads it in one committed request (object stores: a single PUT or a
  multipart upload that is completed only after every part arrived). A writer that fails
  midway leaves no object, and a reader never sees half of one.
- Every failure is a :class:`StorageError` naming the URL and the cause.
- Transient S3 errors are retried, a bounded number of times. botocore (s3fs) and pyarrow retry
  each *request* in their ``standard`` mode: throttling (``503 SlowDown``), 5xx answers, dropped
  connections and timeouts, with exponential backoff and jitter, :data:`DEFAULT_S3_ATTEMPTS`
  attempts in all (``AWS_MAX_ATTEMPTS`` overrides it, as for the AWS CLI and SDKs). s3fs' own
  retry loop is turned off: it nests (an operation retries a request that retries ...) and
  multiplied one permanently failing read into 238 requests over three minutes. What botocore
  cannot retry, a download that breaks off after the answer started, :func:`read_bytes` and
  :func:`read_table` retry as a whole (:data:`READ_ATTEMPTS`). A permanent failure therefore
  ends within seconds with a :class:`StorageError` that says what the server answered and how
  often it was asked.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import random
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar
from urllib.parse import urlsplit

import fsspec
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

__all__ = [
    "StorageError",
    "atomic_write",
    "arrow_filesystem",
    "check_writable",
    "delete",
    "errors",
    "exists",
    "filesystem",
    "join",
    "list_files",
    "read_bytes",
    "read_table",
    "redact_url",
    "to_url",
    "worker_env",
    "write_bytes",
    "write_table",
]

#: Environment variables that configure storage (and tracking) and must reach Ray workers.
FORWARDED_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_MAX_ATTEMPTS",
    "MLFLOW_TRACKING_URI",
)

#: Attempts per S3 request (the first and the retries) unless ``AWS_MAX_ATTEMPTS`` says otherwise:
#: with botocore's backoff (a random share of 1, 2, 4, 8 s between them) a request that keeps
#: failing gives up after 15 s at most; throttling that lifts within that time costs nothing.
DEFAULT_S3_ATTEMPTS = 5
#: Attempts of a whole read whose download broke off midway (botocore retries requests, not bodies).
READ_ATTEMPTS = 3

_T = TypeVar("_T")

_SCHEMES = {"", "file", "local", "s3", "s3a", "memory"}


class StorageError(RuntimeError):
    """A storage operation failed; the message names the URL and the cause."""


def worker_env() -> dict[str, str]:
    """Storage and tracking variables set in this process, for ``runtime_env.env_vars``."""
    return {k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)}


def redact_url(url: str) -> str:
    """``url`` without any ``user:password@`` part, safe for logs and MLflow params."""
    parts = urlsplit(str(url))
    if parts.username is None and parts.password is None:
        return str(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=host).geturl()


SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")
_USERINFO = re.compile(r"(?<=//)[^/@\s\"']+@|[\w.%+-]+:[^@\s/\"']+@")  # a URL's user[:password]@, or one quoted bare


def scrub(text: object) -> str:
    """``text`` with credentials removed: any ``user:password@`` of a URL, and the values of the
    AWS credential variables of this process (a library's error message may quote either)."""
    out = _USERINFO.sub("<credentials>@", str(text))
    for name in SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 8:
            out = out.replace(value, f"<{name}>")
    return out


def _scheme(url: str) -> str:
    scheme = urlsplit(str(url)).scheme.lower()
    if len(scheme) == 1:  # a Windows drive letter, not a scheme
        scheme = ""
    if scheme not in _SCHEMES:
        raise StorageError(
            f"{url}: unsupported URL scheme {scheme!r}; use a local path, file://, s3:// or memory://"
        )
    return scheme


def s3_attempts() -> int:
    """Attempts per S3 request: ``AWS_MAX_ATTEMPTS`` if set, else :data:`DEFAULT_S3_ATTEMPTS`."""
    value = os.environ.get("AWS_MAX_ATTEMPTS", "").strip()
    if not value:
        return DEFAULT_S3_ATTEMPTS
    try:
        attempts = int(value)
    except ValueError:
        raise StorageError(f"AWS_MAX_ATTEMPTS={value!r}: not a whole number of attempts") from None
    if attempts < 1:
        raise StorageError(f"AWS_MAX_ATTEMPTS={value!r}: at least 1 attempt is needed")
    return attempts


def _s3_options() -> dict[str, Any]:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    client_kwargs: dict[str, Any] = {}
    if endpoint:
        client_kwargs["endpoint_url"] = endpoint
    if region:
        client_kwargs["region_name"] = region
    return {
        "client_kwargs": client_kwargs,
        # Fail in seconds, not minutes, when the endpoint is unreachable; retry throttling, 5xx and
        # dropped connections with backoff (see the module's notes).
        "config_kwargs": {"connect_timeout": 5, "read_timeout": 60,
                          "retries": {"total_max_attempts": s3_attempts(), "mode": "standard"}},
        "skip_instance_cache": False,
    }


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem for ``url`` and the path inside it.

    Examples
    --------
    >>> fs, path = filesystem("memory://scratch/a.txt")
    >>> path
    '/scratch/a.txt'
    """
    scheme = _scheme(url)
    if scheme in ("", "file", "local"):
        path = urlsplit(url).path if scheme else url
        return fsspec.filesystem("file"), os.path.abspath(os.path.expanduser(path))
    if scheme in ("s3", "s3a"):
        fs = fsspec.filesystem("s3", **_s3_options())
        fs.retries = 1  # botocore retries each request; s3fs' nested loop would multiply its attempts
        return fs, fs._strip_protocol(url.replace("s3a://", "s3://", 1))
    fs = fsspec.filesystem("memory")
    return fs, fs._strip_protocol(url)


def to_url(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """The URL of ``path`` on ``fs`` (a local path stays a path)."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in ("file", "local"):
        return path
    if protocol in ("s3", "s3a"):
        return f"s3://{path}"
    return f"memory://{path}"


def join(url: str, *parts: str) -> str:
    """Join path parts onto a URL with ``/`` (``join("s3://b/x", "y.mp4") == "s3://b/x/y.mp4"``)."""
    if _scheme(url) in ("", "file", "local") and "://" not in url:
        return os.path.join(url, *parts)
    return posixpath.join(url.rstrip("/"), *parts)


@contextlib.contextmanager
def errors(url: str, action: str) -> Iterator[None]:
    """Storage failures inside the block as one :class:`StorageError` naming the (redacted) URL and the action."""
    try:
        yield
    except StorageError:
        raise
    except FileNotFoundError as e:
        raise StorageError(f"{redact_url(url)}: cannot {action}: not found ({_cause(e)})") from e
    except PermissionError as e:
        raise StorageError(f"{redact_url(url)}: cannot {action}: access denied ({_cause(e)})") from e
    except (OSError, ValueError) as e:
        raise StorageError(f"{redact_url(url)}: cannot {action}: {_cause(e)}") from e
    except Exception as e:  # botocore/aiohttp errors that s3fs does not translate
        if type(e).__module__.split(".")[0] in ("botocore", "aiobotocore", "aiohttp", "s3fs", "fsspec", "http", "urllib3"):
            raise StorageError(f"{redact_url(url)}: cannot {action}: {_cause(e)}") from e
        raise


def _cause(e: BaseException) -> str:
    text = scrub(str(e) or type(e).__name__)
    if "NoSuchBucket" in text or "bucket does not exist" in text.lower():
        return "the bucket does not exist"
    if "Could not connect" in text or "Connect timeout" in text or "EndpointConnectionError" in text:
        return f"cannot reach the endpoint ({text}); check AWS_ENDPOINT_URL"
    answer = _server_answer(e)
    if answer:
        return answer
    if _is_connection_error(e):
        return f"{text} (gave up after {s3_attempts()} attempts)"
    return text


def _server_answer(e: BaseException) -> str | None:
    """``SlowDown (HTTP 503) after 5 attempts: Please reduce ...`` from a botocore error in ``e``'s causes."""
    seen: BaseException | None = e
    for _ in range(5):
        if seen is None:
            return None
        response = getattr(seen, "response", None)
        if isinstance(response, dict) and isinstance(response.get("Error"), dict):
            error, meta = response["Error"], response.get("ResponseMetadata") or {}
            code, status = error.get("Code") or "error", meta.get("HTTPStatusCode")
            attempts = int(meta.get("RetryAttempts") or 0) + 1
            where = f" (HTTP {status})" if status and str(status) != code else ""
            tries = f" after {attempts} attempts" if attempts > 1 else ""
            throttled = "throttled by the server: " if code in ("SlowDown", "Throttling", "ThrottlingException",
                                                                "RequestLimitExceeded", "TooManyRequests") else ""
            message = scrub(error.get("Message") or "")
            return f"{throttled}{code}{where}{tries}" + (f": {message}" if message else "")
        seen = seen.__cause__ or seen.__context__
    return None


def _is_connection_error(e: BaseException) -> bool:
    """A dropped connection or timeout that botocore retried before it gave up."""
    try:
        from botocore.exceptions import ConnectionError as BotoConnectionError  # noqa: PLC0415
        from botocore.exceptions import HTTPClientError  # noqa: PLC0415
    except ImportError:  # pragma: no cover (s3fs brings botocore)
        return False
    return isinstance(e, (BotoConnectionError, HTTPClientError))


def _transfer_errors() -> tuple[type[BaseException], ...]:
    """Errors of a download that broke off (or an answer that came garbled) after the request succeeded."""
    import http.client  # noqa: PLC0415

    import aiohttp  # noqa: PLC0415  (s3fs' dependencies: always installed with it)
    import botocore.exceptions  # noqa: PLC0415
    from fsspec.exceptions import FSTimeoutError  # noqa: PLC0415

    # ResponseParserError exists only in some botocore versions
    boto = [getattr(botocore.exceptions, name) for name in ("IncompleteReadError", "ResponseStreamingError",
                                                             "ResponseParserError") if hasattr(botocore.exceptions, name)]
    return (http.client.IncompleteRead, TimeoutError, aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError,
            FSTimeoutError, *boto)


def _read_retrying(url: str, read: Callable[[], _T]) -> _T:
    """``read()`` with :class:`StorageError` for failures; again (up to :data:`READ_ATTEMPTS`) when the
    download itself broke off, which the per-request retries of botocore cannot see."""
    retryable = _transfer_errors()
    for attempt in range(1, READ_ATTEMPTS + 1):
        try:
            with errors(url, "read"):
                return read()
        except StorageError as e:
            # (not the errors botocore retried already: a request that failed its attempts stays failed)
            broke = isinstance(e.__cause__, retryable) and not _is_connection_error(e.__cause__)
            if broke and attempt < READ_ATTEMPTS:
                time.sleep(random.uniform(0.5, 1.0) * 0.2 * 2**attempt)  # 0.2-0.4 s, then 0.4-0.8 s
                continue
            if attempt > 1:
                raise StorageError(f"{e} (the download broke off {attempt if broke else attempt - 1} times)") from e.__cause__
            raise
    raise AssertionError("unreachable")


def exists(url: str) -> bool:
    """Whether an object or folder exists at ``url``."""
    fs, path = filesystem(url)
    with errors(url, "check"):
        return bool(fs.exists(path))


def read_bytes(url: str) -> bytes:
    """The whole object at ``url``."""
    fs, path = filesystem(url)
    return _read_retrying(url, lambda: fs.cat_file(path))


def list_files(url: str, *, suffixes: tuple[str, ...] = (), pattern: str | None = None) -> list[str]:
    """URLs of the files under a prefix, sorted.

    Parameters
    ----------
    url : str
        A folder/prefix, or a single file (returned as a one-element list).
    suffixes : tuple of str
        Keep only names ending with one of these (case-insensitive), e.g. ``(".mp4", ".mov")``.
    pattern : str, optional
        A glob relative to ``url`` (``"**/*.mid"``) instead of the recursive listing.

    Temporary files of unfinished atomic writes (``.tmp-*``) are never listed.
    """
    fs, path = filesystem(url)
    with errors(url, "list"):
        if pattern is not None:
            found = [p for p in fs.glob(posixpath.join(path, pattern)) if not fs.isdir(p)]
        elif fs.isfile(path):
            found = [path]
        elif fs.isdir(path):
            found = list(fs.find(path))
        else:
            raise FileNotFoundError(path)
    lowered = tuple(s.lower() for s in suffixes)
    keep = [
        p for p in found
        if not posixpath.basename(p).startswith(".tmp-") and (not lowered or p.lower().endswith(lowered))
    ]
    return sorted(to_url(fs, p) for p in keep)


@contextlib.contextmanager
def atomic_write(url: str) -> Iterator[IO[bytes]]:
    """Open ``url`` for writing bytes; the object appears only if the block finishes.

    Examples
    --------
    >>> with atomic_write("memory://scratch/hello.txt") as f:
    ...     _ = f.write(b"hello")
    >>> read_bytes("memory://scratch/hello.txt")
    b'hello'
    """
    fs, path = filesystem(url)
    local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
    with errors(url, "write"):
        if local:
            folder = os.path.dirname(path)
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        else:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-upload-")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        with errors(url, "write"):
            if local:
                os.chmod(tmp, 0o644)
                os.replace(tmp, path)
            else:
                fs.put_file(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def delete(url: str) -> None:
    """Remove the file at ``url`` (gone already is fine)."""
    fs, path = filesystem(url)
    with errors(url, "delete"):
        try:
            fs.rm_file(path)
        except FileNotFoundError:
            return


def write_bytes(url: str, data: bytes) -> None:
    """Write ``data`` to ``url`` atomically."""
    with atomic_write(url) as f:
        f.write(data)


def write_table(url: str, table: pa.Table, *, row_group_size: int | None = None) -> None:
    """Write ``table`` as one Parquet file at ``url``, atomically (row groups of ``row_group_size`` rows)."""
    with atomic_write(url) as f:
        pq.write_table(table, f, row_group_size=row_group_size)


def read_table(url: str, *, row_group: int | None = None, columns: list[str] | None = None) -> pa.Table:
    """Read the Parquet file at ``url`` (only its ``row_group``-th row group, only ``columns``)."""
    fs, path = filesystem(url)

    def read() -> pa.Table:
        with fs.open(path, "rb") as f:
            if row_group is not None:
                return pq.ParquetFile(f).read_row_group(row_group, columns=columns)
            return pq.read_table(f, columns=columns)

    return _read_retrying(url, read)


def check_writable(url: str) -> None:
    """Raise :class:`StorageError` unless a file can be written (and removed) under ``url``.

    Jobs call this before starting any work, so a typo in ``--out`` fails in a second with a
    clear message rather than after an hour of compute.
    """
    probe = join(url, f".tmp-probe-{uuid.uuid4().hex}")
    try:
        write_bytes(probe, b"")
        fs, path = filesystem(probe)
        with errors(probe, "delete a probe file"):
            fs.rm(path)
    except StorageError as e:
        raise StorageError(str(e).replace(redact_url(probe), redact_url(url))) from e.__cause__


def arrow_filesystem(url: str) -> tuple[pafs.FileSystem, str]:
    """A ``pyarrow`` filesystem and path for ``url`` (Ray Data reads and Parquet writes).

    pyarrow's S3 filesystem ignores ``AWS_ENDPOINT_URL``, so it is built explicitly here from
    the same variables as :func:`filesystem`.
    """
    scheme = _scheme(url)
    fs, path = filesystem(url)
    if scheme in ("", "file", "local"):
        return pafs.LocalFileSystem(), path
    if scheme in ("s3", "s3a"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        kwargs: dict[str, Any] = {
            "access_key": os.environ.get("AWS_ACCESS_KEY_ID"),
            "secret_key": os.environ.get("AWS_SECRET_ACCESS_KEY"),
            "session_token": os.environ.get("AWS_SESSION_TOKEN"),
            "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            "connect_timeout": 5,
            "request_timeout": 60,
            # throttling, 5xx and dropped connections: retried with backoff, as botocore does for s3fs
            "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=s3_attempts()),
        }
        if endpoint:
            parts = urlsplit(endpoint)
            kwargs["endpoint_override"] = parts.netloc or parts.path
            kwargs["scheme"] = parts.scheme or "https"
        return pafs.S3FileSystem(**{k: v for k, v in kwargs.items() if v is not None}), path
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path
