"""Storage URLs: round trips on local, memory and S3 (moto over HTTP), atomic writes, clear errors."""

from __future__ import annotations

import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs import storage


@pytest.fixture(params=["local", "file", "memory", "s3"])
def root(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "local":
        return str(tmp_path / "store")
    if request.param == "file":
        return (tmp_path / "store").as_uri()
    if request.param == "memory":
        return f"memory://test-{uuid.uuid4().hex}"
    return f"s3://{request.getfixturevalue('bucket')}/prefix"


def test_round_trip_and_listing(root: str) -> None:
    storage.write_bytes(storage.join(root, "a", "x.mp4"), b"video")
    storage.write_bytes(storage.join(root, "a", "y.MOV"), b"other")
    storage.write_bytes(storage.join(root, "b.txt"), b"text")
    assert storage.read_bytes(storage.join(root, "a", "x.mp4")) == b"video"
    assert storage.exists(storage.join(root, "b.txt"))
    assert not storage.exists(storage.join(root, "missing.txt"))
    listed = storage.list_files(root, suffixes=(".mp4", ".mov"))
    assert [u.rsplit("/", 1)[-1] for u in listed] == ["x.mp4", "y.MOV"]
    assert len(storage.list_files(root)) == 3
    assert [u.rsplit("/", 1)[-1] for u in storage.list_files(root, pattern="**/*.txt")] == ["b.txt"]
    # every listed URL reads back
    assert [storage.read_bytes(u) for u in listed] == [b"video", b"other"]


def test_failed_write_leaves_no_object(root: str) -> None:
    url = storage.join(root, "partial.bin")
    with pytest.raises(RuntimeError, match="boom"):
        with storage.atomic_write(url) as f:
            f.write(b"x" * 100_000)
            raise RuntimeError("boom")
    assert not storage.exists(url)
    storage.write_bytes(storage.join(root, "other.bin"), b"1")
    assert [u.rsplit("/", 1)[-1] for u in storage.list_files(root)] == ["other.bin"]


def test_overwrite_replaces_whole_object(root: str) -> None:
    url = storage.join(root, "obj.bin")
    storage.write_bytes(url, b"long old content " * 1000)
    with pytest.raises(KeyError):
        with storage.atomic_write(url) as f:
            f.write(b"new")
            raise KeyError("fail before commit")
    assert storage.read_bytes(url) == b"long old content " * 1000  # the old object is intact
    storage.write_bytes(url, b"new")
    assert storage.read_bytes(url) == b"new"


def test_parquet_through_arrow_filesystem(root: str) -> None:
    table = pa.table({"id": ["a", "b"], "x": [1.5, 2.5]})
    url = storage.join(root, "t.parquet")
    storage.write_table(url, table)
    assert storage.read_table(url).equals(table)
    fs, path = storage.arrow_filesystem(url)
    assert pq.read_table(path, filesystem=fs).equals(table)


def test_s3_errors_name_url_and_cause(s3_server: str) -> None:
    missing = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/x"
    with pytest.raises(storage.StorageError, match=r"no-such-bucket.*(bucket does not exist|not found)"):
        storage.read_bytes(missing + "/a.bin")
    with pytest.raises(storage.StorageError, match="no-such-bucket"):
        storage.check_writable(missing)


def test_local_errors(tmp_path) -> None:
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(storage.StorageError, match="file.txt"):
        storage.check_writable(str(afile / "sub"))
    with pytest.raises(storage.StorageError, match="not found"):
        storage.read_bytes(str(tmp_path / "nope.bin"))
    with pytest.raises(storage.StorageError, match="unsupported URL scheme 'ftp'"):
        storage.read_bytes("ftp://host/x")


def test_unreachable_endpoint_fails_fast(monkeypatch: pytest.MonkeyPatch, s3_server: str) -> None:
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    start = time.time()
    with pytest.raises(storage.StorageError, match="cannot"):
        storage.check_writable("s3://bucket/prefix")
    assert time.time() - start < 60


def test_redact_url() -> None:
    assert storage.redact_url("s3://AKIA:secret@bucket/x") == "s3://bucket/x"
    assert storage.redact_url("http://u:p@host:9000/a") == "http://host:9000/a"
    assert storage.redact_url("/local/path") == "/local/path"


def test_worker_env_forwards_only_set_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    env = storage.worker_env()
    assert env["AWS_REGION"] == "eu-west-1"
    assert "AWS_SESSION_TOKEN" not in env
    assert "PATH" not in env


def test_s3_from_inside_a_ray_task(ray_cluster: None, bucket: str) -> None:
    import ray

    @ray.remote
    def write_then_read(url: str) -> bytes:
        from jobs import storage as st

        st.write_bytes(url, b"from a worker")
        return st.read_bytes(url)

    url = f"s3://{bucket}/from-worker.bin"
    assert ray.get(write_then_read.remote(url)) == b"from a worker"
    assert storage.read_bytes(url) == b"from a worker"  # and the driver sees it
