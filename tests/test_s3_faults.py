"""Storage faults: transient S3 errors are survived, permanent ones fail fast and clearly, nothing is lost.

The faults are real: a reverse proxy (tests/faulty_s3.py) sits between the clients (s3fs/botocore,
pyarrow's S3 filesystem) and the moto server and answers chosen requests with ``503 SlowDown``,
``500 InternalError``, a connection closed mid-request, a response lost after the server acted,
or a download cut off halfway. Every test asserts the proxy's counters, so a test cannot pass
because no fault happened.
"""

from __future__ import annotations

import gc
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs import storage
from tests.faulty_s3 import Fault, FaultyS3Proxy

ATTEMPTS = storage.DEFAULT_S3_ATTEMPTS


@pytest.fixture(scope="module")
def proxy(s3_server: str) -> Iterator[FaultyS3Proxy]:
    with FaultyS3Proxy(s3_server) as p:
        yield p


@pytest.fixture
def faulty(proxy: FaultyS3Proxy, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyS3Proxy]:
    """The proxy without rules, and this process's S3 clients pointed at it."""
    proxy.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    yield proxy
    proxy.reset()


def _all_injected(*faults: Fault) -> None:
    for f in faults:
        assert f.injected == f.times, f"{f.kind} on {f.pattern}: injected {f.injected} of {f.times} ({f.seen})"


# -- the storage layer ---------------------------------------------------------------------------


def test_the_proxy_passes_requests_on_unchanged(faulty: FaultyS3Proxy, bucket: str) -> None:
    """Without rules the proxy is invisible, for the ways clients send bodies: ``Expect: 100-continue``
    (boto3, over 1 MB), ``Transfer-Encoding: chunked`` with an ``aws-chunked`` body (pyarrow's parts)."""
    import boto3

    data = os.urandom(3_000_000)
    client = boto3.client("s3", endpoint_url=faulty.endpoint)
    client.put_object(Bucket=bucket, Key="plain.bin", Body=data)
    fs, path = storage.arrow_filesystem(f"s3://{bucket}/arrow.bin")
    with fs.open_output_stream(path) as f:
        f.write(data)
    direct = boto3.client("s3", endpoint_url=faulty.upstream_url)
    assert direct.get_object(Bucket=bucket, Key="plain.bin")["Body"].read() == data
    assert direct.get_object(Bucket=bucket, Key="arrow.bin")["Body"].read() == data
    assert client.get_object(Bucket=bucket, Key="arrow.bin", Range="bytes=10-19")["Body"].read() == data[10:20]
    sent = {(m, t.split("?")[0].rsplit("/", 1)[-1]): h for (m, t, _), h in zip(faulty.log, faulty.headers, strict=True)}
    assert sent[("PUT", "plain.bin")].get("expect") == "100-continue"
    assert "chunked" in sent[("PUT", "arrow.bin")].get("transfer-encoding", "")
    assert all(outcome.startswith("2") for _, _, outcome in faulty.log), faulty.log


def test_reads_writes_and_listings_survive_transient_faults(faulty: FaultyS3Proxy, bucket: str) -> None:
    root = f"s3://{bucket}/data"
    key = f"/{bucket}/data/clip.mp4"
    payload = os.urandom(200_000)
    faults = [
        faulty.add("slowdown", f"PUT {key}", times=2),  # throttled twice, then stored
        faulty.add("drop", f"PUT /{bucket}/data/other.bin", times=1),  # cut off mid-body
        faulty.add("lost", f"PUT /{bucket}/data/third.bin", times=1),  # stored, but the answer never came
    ]
    storage.write_bytes(f"{root}/clip.mp4", payload)
    storage.write_bytes(f"{root}/other.bin", b"other")
    storage.write_bytes(f"{root}/third.bin", b"third")
    faults += [
        faulty.add("drop", f"GET {key}", times=1),  # then the download is cut off halfway, then it works
        faulty.add("truncate", f"GET {key}", times=1),
        faulty.add("internal", rf"GET /{bucket}\?list-type", times=2),
        faulty.add("slowdown", f"HEAD /{bucket}/data/other.bin", times=1),
    ]
    assert storage.read_bytes(f"{root}/clip.mp4") == payload
    assert storage.exists(f"{root}/other.bin")
    assert [u.rsplit("/", 1)[-1] for u in storage.list_files(root)] == ["clip.mp4", "other.bin", "third.bin"]
    _all_injected(*faults)
    assert faulty.requests(f"GET {key}")[-1][2] == "200"  # the read that counted went through
    assert storage.read_bytes(f"{root}/third.bin") == b"third"


def test_parquet_survives_transient_faults_through_s3fs_and_pyarrow(faulty: FaultyS3Proxy, bucket: str) -> None:
    table = pa.table({"id": [f"v{i}" for i in range(1000)], "x": [i / 7 for i in range(1000)]})
    via_fsspec = f"s3://{bucket}/t/fsspec.parquet"
    faults = [
        faulty.add("internal", f"PUT /{bucket}/t/fsspec.parquet", times=1),
        faulty.add("truncate", f"GET /{bucket}/t/fsspec.parquet", times=1),
        faulty.add("slowdown", f"GET /{bucket}/t/fsspec.parquet", times=1),
    ]
    storage.write_table(via_fsspec, table)
    assert storage.read_table(via_fsspec).equals(table)
    # pyarrow's own S3 client (Ray Data, Ray Train): a multipart upload, every step failing once
    fs, path = storage.arrow_filesystem(f"s3://{bucket}/t/arrow.parquet")
    key = f"/{bucket}/t/arrow.parquet"
    faults += [
        faulty.add("slowdown", rf"POST {key}\?uploads", times=1),
        faulty.add("drop", rf"PUT {key}\?partNumber=", times=1),
        faulty.add("internal", rf"POST {key}\?uploadId=", times=1),
    ]
    pq.write_table(table, path, filesystem=fs)
    faults += [faulty.add("drop", f"HEAD {key}", times=1), faulty.add("truncate", f"GET {key}", times=1)]
    assert pq.read_table(path, filesystem=fs).equals(table)
    _all_injected(*faults)


def test_permanent_faults_fail_fast_with_an_error_naming_the_key(faulty: FaultyS3Proxy, bucket: str) -> None:
    for name in ("throttled", "failing", "dropping", "cut", "arrow"):
        storage.write_bytes(f"s3://{bucket}/p/{name}.bin", b"x" * 10_000)
    faults = {name: faulty.add(kind, f"{method} /{bucket}/p/{name}.bin") for name, kind, method in [
        ("throttled", "slowdown", "GET"), ("failing", "internal", "PUT"), ("dropping", "drop", "GET"),
        ("cut", "truncate", "GET"), ("arrow", "slowdown", "GET")]}
    arrow_fs, arrow_path = storage.arrow_filesystem(f"s3://{bucket}/p/arrow.bin")  # pyarrow's own S3 client
    calls = {
        "throttled": lambda: storage.read_bytes(f"s3://{bucket}/p/throttled.bin"),
        "failing": lambda: storage.write_bytes(f"s3://{bucket}/p/failing.bin", b"new"),
        "dropping": lambda: storage.read_bytes(f"s3://{bucket}/p/dropping.bin"),
        "cut": lambda: storage.read_bytes(f"s3://{bucket}/p/cut.bin"),
        "arrow": lambda: arrow_fs.open_input_file(arrow_path).read(),
    }
    errors: dict[str, BaseException | None] = {}
    seconds: dict[str, float] = {}

    def call(name: str) -> None:
        start = time.monotonic()
        try:
            calls[name]()
            errors[name] = None
        except BaseException as e:  # noqa: BLE001  (the assertions below say what was expected)
            errors[name] = e
        seconds[name] = time.monotonic() - start

    threads = [threading.Thread(target=call, args=(name,)) for name in calls]  # at once: the backoffs overlap
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    expected = {
        "throttled": rf"p/throttled\.bin: cannot read: throttled by the server: SlowDown \(HTTP 503\) after {ATTEMPTS} attempts",
        "failing": rf"p/failing\.bin: cannot write: InternalError \(HTTP 500\) after {ATTEMPTS} attempts",
        "dropping": rf"p/dropping\.bin: cannot read: Connection was closed .* \(gave up after {ATTEMPTS} attempts\)",
        "cut": r"p/cut\.bin: cannot read: Response payload is not completed.*\(the download broke off 3 times\)",
    }
    assert max(seconds.values()) < 30, seconds  # failed, and fast: nothing hangs
    for name, pattern in expected.items():
        error = errors.get(name)
        assert isinstance(error, storage.StorageError), f"{name}: {error!r}"
        assert re.search(pattern, str(error)), f"{name}: {error}"
        assert str(error).startswith(f"s3://{bucket}/p/{name}.bin: ")
    # (pyarrow's own error for a read of an open file names no key: its callers, Ray Data and Ray Train, add theirs)
    assert isinstance(errors["arrow"], OSError) and re.search(r"SLOW_DOWN|SERVICE_UNAVAILABLE|\b503\b", str(errors["arrow"])), \
        repr(errors["arrow"])
    # bounded: exactly the configured attempts (a connection dropped on a pooled keep-alive connection is
    # tried once more by aiohttp itself), and the cut-off download as a whole READ_ATTEMPTS times
    assert faults["throttled"].injected == faults["failing"].injected == faults["arrow"].injected == ATTEMPTS
    assert ATTEMPTS <= faults["dropping"].injected <= 2 * ATTEMPTS
    assert faults["cut"].injected == storage.READ_ATTEMPTS
    faulty.clear()
    assert storage.read_bytes(f"s3://{bucket}/p/failing.bin") == b"x" * 10_000  # the old object is intact


def test_a_dropped_upload_leaves_no_object_and_a_rerun_completes_it(faulty: FaultyS3Proxy, bucket: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # the retries are not the point here; keep it quick
    direct = boto3.client("s3", endpoint_url=faulty.upstream_url)
    table = pa.table({"id": ["a", "b", "c"], "score": [0.1, 0.2, 0.3]})
    audio = os.urandom(300_000)
    url = f"s3://{bucket}/out/part-0001.parquet"
    drops = [faulty.add("drop", f"PUT /{bucket}/out/part-0001.parquet"), faulty.add("drop", f"PUT /{bucket}/out/a.wav")]
    with pytest.raises(storage.StorageError, match=f"{url}: cannot write"):
        storage.write_table(url, table)
    with pytest.raises(storage.StorageError, match="out/a.wav: cannot write"):
        storage.write_bytes(f"s3://{bucket}/out/a.wav", audio)
    # pyarrow's multipart upload, its part cut off: never completed, so never visible
    fs, path = storage.arrow_filesystem(f"s3://{bucket}/out/arrow.parquet")
    drops.append(faulty.add("drop", rf"PUT /{bucket}/out/arrow\.parquet\?partNumber="))
    with pytest.raises(OSError):
        pq.write_table(table, path, filesystem=fs)
    assert all(f.injected >= 2 for f in drops), [(f.pattern, f.injected) for f in drops]
    assert "Contents" not in direct.list_objects_v2(Bucket=bucket)  # on the server itself: nothing, not half of it
    assert not storage.exists(url)
    faulty.clear()
    storage.write_table(url, table)  # the rerun
    storage.write_bytes(f"s3://{bucket}/out/a.wav", audio)
    pq.write_table(table, path, filesystem=fs)
    assert storage.read_table(url).equals(table)
    assert storage.read_bytes(f"s3://{bucket}/out/a.wav") == audio
    assert pq.read_table(path, filesystem=fs).equals(table)


def test_bad_attempt_setting_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "many")
    with pytest.raises(storage.StorageError, match="AWS_MAX_ATTEMPTS='many'"):
        storage.filesystem("s3://bucket/x")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "0")
    with pytest.raises(storage.StorageError, match="at least 1"):
        storage.arrow_filesystem("s3://bucket/x")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "7")
    assert storage.s3_attempts() == 7
    assert storage.worker_env()["AWS_MAX_ATTEMPTS"] == "7"  # workers retry as the driver does


# -- a whole job: score with its inputs and outputs on S3 ---------------------------------------


@pytest.fixture(scope="module")
def session_proxy(s3_server: str, ray_cluster: None) -> Iterator[FaultyS3Proxy]:
    """A proxy on the session's own S3 endpoint: the one the Ray workers got when Ray started.

    Ray workers keep the environment of the moment Ray started (tests/conftest.py), and a job that
    finds Ray running (as here, or in a notebook) starts no runtime_env of its own, so a new
    AWS_ENDPOINT_URL would reach the driver only. So the session's moto server moves to another
    port (buckets and objects live in this process, not in the listener) and the proxy takes over
    its address, the one every client already has; both move back afterwards.
    """
    import s3fs
    from moto.server import ThreadedMotoServer

    port = urlsplit(s3_server).port

    def listens_there(server: ThreadedMotoServer) -> bool:
        try:
            return server.get_host_and_port()[1] == port
        except AssertionError:  # never started
            return False

    found = [o for o in gc.get_objects() if isinstance(o, ThreadedMotoServer) and listens_there(o)]
    assert len(found) == 1, "the session's moto server (tests/conftest.py) was not found"
    session_server = found[0]
    _stop_listening(session_server)
    moved = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    moved.start()
    host, moved_port = moved.get_host_and_port()
    proxy = FaultyS3Proxy(f"http://{host}:{moved_port}", port=port or 0).start()
    s3fs.S3FileSystem.clear_instance_cache()  # no pooled connection of this process skips the proxy
    try:
        yield proxy
    finally:
        proxy.stop()
        _stop_listening(moved)
        session_server.start()  # on its old port again
        s3fs.S3FileSystem.clear_instance_cache()


def _stop_listening(server: Any) -> None:
    server.stop()
    server._server.server_close()  # release the port (ThreadedMotoServer.stop leaves it bound)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def job_faults(session_proxy: FaultyS3Proxy, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyS3Proxy]:
    session_proxy.reset()
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    yield session_proxy
    session_proxy.reset()


N_JOB_VIDEOS = 4  # three read through a transient fault each, one never


def _upload_inputs(catalog: Path, proxy: FaultyS3Proxy, bucket: str) -> list[str]:
    """Upload videos straight to the server (not through the proxy); their ids."""
    import boto3

    direct = boto3.client("s3", endpoint_url=proxy.upstream_url)
    ids = []
    for p in sorted((catalog / "videos").glob("*.mp4"))[:N_JOB_VIDEOS]:
        direct.upload_file(str(p), bucket, f"in/{p.name}")
        ids.append(p.stem)
    return ids


def _score(bucket: str, workdir: str, *extra: str) -> int:
    from jobs.__main__ import main

    return main(["score", "--input", f"s3://{bucket}/in", "--output", f"s3://{bucket}/out", "--workdir", workdir,
                 *extra])


def _rows(bucket: str) -> list[dict[str, Any]]:
    parts = storage.list_files(f"s3://{bucket}/out/scores", suffixes=(".parquet",))
    return [r for p in parts for r in storage.read_table(p).to_pylist()]


@pytest.mark.slow  # ~40 s: run by make test-slow; the storage-level fault tests above run in make test
def test_score_loses_nothing_under_storage_faults(job_faults: FaultyS3Proxy, bucket: str, catalog: Path, workdir: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    ids = _upload_inputs(catalog, job_faults, bucket)
    direct = boto3.client("s3", endpoint_url=job_faults.upstream_url)
    # 1. every upload of the results has its connection dropped: the job fails, and nothing half-written is left
    upload = job_faults.add("drop", rf"PUT /{bucket}/out/scores/part-")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # (the driver's: how often it retries is not the point here)
    assert _score(bucket, workdir) == 2
    monkeypatch.delenv("AWS_MAX_ATTEMPTS")
    assert upload.injected >= 2
    assert [o["Key"] for o in direct.list_objects_v2(Bucket=bucket, Prefix="out/").get("Contents", [])] == []
    # 2. the rerun, with a transient fault on every kind of request and one input that never reads
    job_faults.remove(upload)
    *good, bad = ids
    transient = [job_faults.add(kind, f"GET /{bucket}/in/{id_}.mp4", times=1)  # the scoring actors' reads
                 for kind, id_ in zip(["slowdown", "drop", "truncate"], good, strict=True)]
    transient += [
        job_faults.add("internal", rf"GET /{bucket}\?list-type=2&prefix=in", times=1),  # listing the inputs
        job_faults.add("slowdown", rf"PUT /{bucket}/out/\.tmp-probe-", times=1),  # the writability check
        job_faults.add("drop", rf"PUT /{bucket}/out/scores/part-", times=1),  # the results
        job_faults.add("lost", rf"PUT /{bucket}/out/scores/part-", times=1),
    ]
    broken = job_faults.add("internal", f"GET /{bucket}/in/{bad}.mp4")  # every time
    assert _score(bucket, workdir, "--max-error-rate", "0.5") == 0
    _all_injected(*transient)
    assert broken.injected == ATTEMPTS  # the worker gave up after the configured attempts: not sooner, not never
    job_faults.clear()
    rows = _rows(bucket)
    assert sorted(r["id"] for r in rows) == sorted(ids)  # every input exactly once
    by_id = {r["id"]: r for r in rows}
    assert all(by_id[i]["status"] == "ok" for i in good), [(r["id"], r["error"]) for r in rows]
    error = by_id[bad]["error"]
    assert by_id[bad]["status"] == "error" and f"s3://{bucket}/in/{bad}.mp4" in error, error
    assert f"InternalError (HTTP 500) after {ATTEMPTS} attempts" in error, error
    # the videos were read by the scoring actors (the driver only lists them), and through the proxy
    for id_ in good:
        assert job_faults.requests(f"GET /{bucket}/in/{id_}.mp4")[-1][2] == "200"
