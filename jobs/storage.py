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
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import tempfile
import uuid
from collections.abc import Iterator
from typing import IO, Any
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
    "exists",
    "filesystem",
    "join",
    "list_files",
    "read_bytes",
    "read_table",
    "redact_url",
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
    "MLFLOW_TRACKING_URI",
)

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
        # Fail in seconds, not minutes, when the endpoint is unreachable; retry throttling and 5xx.
        "config_kwargs": {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 4, "mode": "standard"}},
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
        return fs, fs._strip_protocol(url.replace("s3a://", "s3://", 1))
    fs = fsspec.filesystem("memory")
    return fs, fs._strip_protocol(url)


def _to_url(fs: fsspec.AbstractFileSystem, path: str) -> str:
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
def _errors(url: str, action: str) -> Iterator[None]:
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
        if type(e).__module__.split(".")[0] in ("botocore", "aiobotocore", "aiohttp", "s3fs"):
            raise StorageError(f"{redact_url(url)}: cannot {action}: {_cause(e)}") from e
        raise


def _cause(e: BaseException) -> str:
    text = scrub(str(e) or type(e).__name__)
    if "NoSuchBucket" in text or "bucket does not exist" in text.lower():
        return "the bucket does not exist"
    if "Could not connect" in text or "Connect timeout" in text or "EndpointConnectionError" in text:
        return f"cannot reach the endpoint ({text}); check AWS_ENDPOINT_URL"
    return text


def exists(url: str) -> bool:
    """Whether an object or folder exists at ``url``."""
    fs, path = filesystem(url)
    with _errors(url, "check"):
        return bool(fs.exists(path))


def read_bytes(url: str) -> bytes:
    """The whole object at ``url``."""
    fs, path = filesystem(url)
    with _errors(url, "read"):
        return fs.cat_file(path)


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
    with _errors(url, "list"):
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
    return sorted(_to_url(fs, p) for p in keep)


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
    with _errors(url, "write"):
        if local:
            folder = os.path.dirname(path)
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        else:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-upload-")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        with _errors(url, "write"):
            if local:
                os.chmod(tmp, 0o644)
                os.replace(tmp, path)
            else:
                fs.put_file(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_bytes(url: str, data: bytes) -> None:
    """Write ``data`` to ``url`` atomically."""
    with atomic_write(url) as f:
        f.write(data)


def write_table(url: str, table: pa.Table) -> None:
    """Write ``table`` as one Parquet file at ``url``, atomically."""
    with atomic_write(url) as f:
        pq.write_table(table, f)


def read_table(url: str) -> pa.Table:
    """Read the Parquet file at ``url``."""
    fs, path = filesystem(url)
    with _errors(url, "read"), fs.open(path, "rb") as f:
        return pq.read_table(f)


def check_writable(url: str) -> None:
    """Raise :class:`StorageError` unless a file can be written (and removed) under ``url``.

    Jobs call this before starting any work, so a typo in ``--out`` fails in a second with a
    clear message rather than after an hour of compute.
    """
    probe = join(url, f".tmp-probe-{uuid.uuid4().hex}")
    try:
        write_bytes(probe, b"")
        fs, path = filesystem(probe)
        with _errors(probe, "delete a probe file"):
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
        }
        if endpoint:
            parts = urlsplit(endpoint)
            kwargs["endpoint_override"] = parts.netloc or parts.path
            kwargs["scheme"] = parts.scheme or "https"
        return pafs.S3FileSystem(**{k: v for k, v in kwargs.items() if v is not None}), path
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path
