"""Shared fixtures: one local Ray cluster and one moto S3 server per test session.

The S3 server speaks the real protocol over HTTP on 127.0.0.1, so s3fs, pyarrow and boto3 all
talk to it as they would to AWS. Its endpoint and fake credentials are put in the environment
before Ray starts, so Ray workers inherit them.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """Endpoint URL of a moto S3 server, with AWS_* variables pointing at it."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    names = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing-key-id", AWS_SECRET_ACCESS_KEY="testing-secret",
        AWS_DEFAULT_REGION="us-east-1",
    )
    yield endpoint
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def bucket(s3_server: str) -> str:
    """A new empty bucket on the moto server; returns its name."""
    import boto3

    name = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def ray_cluster(s3_server: str) -> Iterator[None]:
    """The session's local Ray cluster (2 CPUs), started after the S3 variables are set."""
    import ray

    from jobs.runtime import quiet_logs

    quiet_logs()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Folder of the session's MLflow store."""
    return str(tmp_path_factory.mktemp("work"))


N_VIDEOS = 6  # debug-size ads of seed 2: cuts on and off the beat, dissolves, fades, both moods


@pytest.fixture(scope="session")
def catalog(ray_cluster: None, workdir: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample catalog of the session, written by the real job (6 debug videos, 1 piece per composer)."""
    from jobs.__main__ import main

    out = tmp_path_factory.mktemp("sample")
    argv = ["sample", "--out", str(out), "--videos", str(N_VIDEOS), "--preset", "debug", "--seed", "2", "--pieces", "1",
            "--workdir", workdir]
    assert main(argv) == 0
    return out


def _shared_candidates() -> list[Path]:
    root = Path(__file__).resolve().parents[1]
    found = [root.parent / "shared"]
    try:  # a clone of the working tree (../shared/tools/fresh-clone-check): shared/ sits beside its origin
        import subprocess

        origin = subprocess.run(["git", "-C", str(root), "config", "--get", "remote.origin.url"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        if origin and Path(origin).is_dir():
            found.append(Path(origin).resolve().parent / "shared")
    except (OSError, subprocess.SubprocessError):
        return found  # no git: only the folder beside the repository
    return found


@pytest.fixture(scope="session")
def jkupdd() -> Path:
    """The JKUPDD folder: $JKUPDD, or shared/data/jkupdd beside the repository (as in CI)."""
    if os.environ.get("JKUPDD"):
        return Path(os.environ["JKUPDD"])
    for shared in _shared_candidates():
        if (shared / "data" / "jkupdd" / "groundTruth").is_dir():
            return shared / "data" / "jkupdd"
    pytest.fail("JKUPDD not found: set JKUPDD=/path/to/jkupdd or put shared/ beside the repository")
