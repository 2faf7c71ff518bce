"""Running on a cluster: a Ray Job submitted to a Ray head started here, incremental scheduled runs,
``--max-error-rate``, and the configs in ``cluster/`` (YAML that parses, KubeRay fields, one Ray version)."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from jobs import incremental, storage
from jobs.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
JOBS = ("score", "generate", "preprocess", "train", "words")


# ---------------------------------------------------------------- configs in cluster/


def _pinned_ray() -> str:
    """The Ray version pyproject.toml pins (``ray[...]==X.Y.Z``): the one source of truth."""
    text = (ROOT / "pyproject.toml").read_text()
    found = re.findall(r'^\s*"ray\[[^\]]*\]\s*==\s*([0-9.]+)"', text, re.M)
    assert len(found) == 1, f"pyproject.toml must pin ray exactly once (ray[...]==X.Y.Z), found {found}"
    return found[0]


def _docs() -> dict[str, list[dict[str, Any]]]:
    """Every YAML document under cluster/, and the YAML files that ConfigMaps carry (``name.yaml#key``)."""
    out = {}
    for path in sorted(CLUSTER.rglob("*.y*ml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert docs, f"{path} is empty"
        out[str(path.relative_to(CLUSTER))] = docs
        for d in docs:
            if d.get("kind") == "ConfigMap":
                for key, text in d.get("data", {}).items():
                    if key.endswith((".yaml", ".yml")):
                        out[f"{path.relative_to(CLUSTER)}#{key}"] = [x for x in yaml.safe_load_all(text) if x is not None]
    return out


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield str(k), v
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _containers(pod_template: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pod_template["spec"]["containers"])


def test_ray_version_is_one_pin() -> None:
    import ray

    pinned = _pinned_ray()
    assert ray.__version__ == pinned, f"installed ray {ray.__version__} != pyproject pin {pinned}: rerun make setup"
    dockerfile = (CLUSTER / "Dockerfile").read_text()
    arg = re.search(r"^ARG RAY_VERSION=(\S+)$", dockerfile, re.M)
    assert arg and arg.group(1) == pinned, "cluster/Dockerfile ARG RAY_VERSION must equal the pin in pyproject.toml"
    assert re.search(r"^FROM rayproject/ray:\$\{RAY_VERSION\}-py311-gpu", dockerfile, re.M), "a CUDA (gpu) rayproject base"
    # every image and rayVersion in the YAML files names the same version
    images, versions = [], []
    for name, docs in _docs().items():
        for key, value in _walk(docs):
            if key == "image" and isinstance(value, str):
                images.append((name, value))
            if key in ("rayVersion",):
                versions.append((name, str(value)))
    assert versions and not [x for x in versions if x[1] != pinned], f"rayVersion other than {pinned}: {versions}"
    ours = [(n, i) for n, i in images if "vem-musicwords" in i or "rayproject/ray" in i]
    assert len(ours) >= 8, ours
    bad = [(n, i) for n, i in ours if not (i.rsplit(":", 1)[1] == pinned or i.rsplit(":", 1)[1].startswith(f"{pinned}-"))]
    assert not bad, f"image tags that do not start with the Ray version {pinned}: {bad}"


def test_the_image_installs_the_tested_versions_of_every_runtime_dependency() -> None:
    """cluster/constraints.txt pins each runtime dependency of pyproject.toml (torch aside: the
    image chooses its build) to a version its range allows, Ray to the one pin, and the Dockerfile
    installs with it."""
    import tomllib
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    for line in (CLUSTER / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not name==version"
            pins[canonicalize_name(name)] = version.strip()
    deps = [Requirement(d) for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    for req in deps:
        name = canonicalize_name(req.name)
        if name == "torch":
            assert name not in pins  # a CPU build's +cpu pin would not install on the GPU image
            continue
        assert name in pins, f"constraints.txt does not pin {req.name} (rerun cluster/constraints.py)"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req.name}=={pins[name]} is not in {req.specifier}"
    assert pins["ray"] == _pinned_ray()
    assert not any(n.startswith("nvidia-") or n in ("pytest", "moto") for n in pins)  # the image's, or the tests'
    assert re.search(r"pip install[^\n]*-c constraints\.txt \.", (CLUSTER / "Dockerfile").read_text())


K8S_VERSION = "1.30"  # the manifests keep to the fields of Kubernetes 1.30 (2024) and later


def _pod_templates(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The pod templates inside a KubeRay object, with where they sit."""
    spec = doc["spec"]
    cluster = spec.get("rayClusterSpec", spec) if doc["kind"] == "RayJob" else spec
    if "headGroupSpec" in cluster:
        yield "headGroupSpec.template", cluster["headGroupSpec"]["template"]
        for i, group in enumerate(cluster.get("workerGroupSpecs", [])):
            yield f"workerGroupSpecs[{i}].template", group["template"]
    if "submitterPodTemplate" in spec:
        yield "submitterPodTemplate", spec["submitterPodTemplate"]


def test_manifests_validate_against_the_kubernetes_schemas() -> None:
    """Every core object (Deployment, CronJob, ConfigMap, ...) against the Kubernetes JSON schema in
    strict mode (unknown fields are errors), and every pod template inside a RayCluster or RayJob
    as a core PodTemplate: the pods are where most of a KubeRay manifest's fields are. KubeRay's own
    fields are not checked against its CRDs (no package the registries serve carries them); the
    test below checks the ones the jobs rely on."""
    import kubernetes_validate  # noqa: PLC0415

    checked: dict[str, int] = {}
    for name, docs in _docs().items():
        for doc in docs:
            kind = doc.get("kind")
            if kind is None:
                continue  # the Ray cluster launcher's YAML (not a Kubernetes object)
            if kind in ("RayCluster", "RayJob"):
                assert doc["apiVersion"] == "ray.io/v1", f"{name}: {kind} {doc['apiVersion']}"
                for where, template in _pod_templates(doc):
                    pod = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": template}
                    try:
                        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
                    except kubernetes_validate.ValidationError as e:
                        raise AssertionError(f"{name}: {kind} {where}: {'.'.join(map(str, e.path))}: {e.message}") from None
                    checked[f"{kind} pod template"] = checked.get(f"{kind} pod template", 0) + 1
                continue
            try:
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as e:
                raise AssertionError(f"{name}: {kind}: {'.'.join(map(str, e.path))}: {e.message}") from None
            checked[kind] = checked.get(kind, 0) + 1
    assert {"Deployment", "CronJob", "ConfigMap", "RayCluster pod template", "RayJob pod template"} <= set(checked), checked


def test_schema_check_catches_a_misspelt_field() -> None:
    """The check above can fail: a pod template with a misspelt field does not validate."""
    import kubernetes_validate  # noqa: PLC0415

    (cluster,) = [d for ds in _docs().values() for d in ds if d.get("kind") == "RayCluster"]
    template = cluster["spec"]["headGroupSpec"]["template"]
    template["spec"]["containers"][0]["resorces"] = template["spec"]["containers"][0].pop("resources")
    pod = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": template}
    with pytest.raises(kubernetes_validate.ValidationError, match="resorces"):
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


def test_cluster_yaml_parses_and_has_the_kuberay_fields() -> None:
    docs = _docs()
    kinds: dict[str, list[dict[str, Any]]] = {}
    for d in (d for ds in docs.values() for d in ds):
        kinds.setdefault(d.get("kind", "launcher" if "available_node_types" in d else "?"), []).append(d)
    # the RayCluster: a CPU head, an autoscaling GPU worker group with /dev/shm for the object store
    (cluster,) = kinds["RayCluster"]
    spec = cluster["spec"]
    assert spec["enableInTreeAutoscaling"] is True
    head = _containers(spec["headGroupSpec"]["template"])[0]
    assert "nvidia.com/gpu" not in head["resources"].get("limits", {})
    (gpu,) = [g for g in spec["workerGroupSpecs"] if "nvidia.com/gpu" in _containers(g["template"])[0]["resources"]["limits"]]
    assert gpu["minReplicas"] < gpu["maxReplicas"]
    volumes = {v["name"]: v for v in gpu["template"]["spec"]["volumes"]}
    shm = [m for m in _containers(gpu["template"])[0]["volumeMounts"] if m["mountPath"] == "/dev/shm"]
    assert shm and volumes[shm[0]["name"]]["emptyDir"]["medium"] == "Memory" and volumes[shm[0]["name"]]["emptyDir"]["sizeLimit"]
    # one RayJob per job, each cleaning up after itself, running python -m jobs <job>
    by_job = {}
    for rj in kinds["RayJob"]:
        s = rj["spec"]
        assert s["shutdownAfterJobFinishes"] is True and int(s["ttlSecondsAfterFinished"]) > 0
        entry = shlex.split(s["entrypoint"])
        assert entry[:3] == ["python", "-m", "jobs"], s["entrypoint"]
        by_job.setdefault(entry[3], rj)
        assert "rayClusterSpec" in s or "clusterSelector" in s
    assert set(JOBS) <= set(by_job), sorted(by_job)
    from jobs.__main__ import build_parser

    parser = build_parser()
    for job, rj in by_job.items():  # the options are the real command line's (argparse exits on an unknown one)
        args = parser.parse_args(shlex.split(rj["spec"]["entrypoint"])[3:])
        assert args.job == job
    # the CronJob creates the nightly incremental scoring RayJob, kept in a ConfigMap it mounts
    (cron,) = kinds["CronJob"]
    assert cron["spec"]["schedule"] and cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (mounted,) = [v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v]
    (template_name,) = [n for n, ds in docs.items() if "#" in n and any(
        d.get("kind") == "ConfigMap" and d["metadata"]["name"] == mounted for d in docs[n.split("#")[0]])]
    (nightly,) = docs[template_name]
    assert nightly["kind"] == "RayJob" and nightly["metadata"]["generateName"]
    assert "--incremental" in shlex.split(nightly["spec"]["entrypoint"])
    assert "kubectl create -f" in " ".join(pod["containers"][0]["args"])
    # the cluster launcher: a CPU head and a GPU worker type
    (launcher,) = kinds["launcher"]
    types = launcher["available_node_types"]
    assert types[launcher["head_node_type"]]["resources"].get("GPU", 0) == 0
    assert any(t["resources"].get("GPU", 0) >= 1 and t["max_workers"] >= 1 for t in types.values())
    # an MLflow server with an SQL backend and s3 artifacts
    mlflow = [d for d in kinds["Deployment"] if "mlflow" in d["metadata"]["name"]]
    assert mlflow and re.search(r"--backend-store-uri|MLFLOW_BACKEND_STORE_URI", yaml.safe_dump(mlflow))
    assert "s3://" in yaml.safe_dump(mlflow)


_SECRET_VALUE = re.compile(  # a key id, or a secret / password written out (not $(VAR), ${VAR}, "$(...)" or "...")
    r"(AKIA[0-9A-Z]{16}|aws_secret_access_key\s*[:=]\s*[^\s.$]{20,}|password\s*[:=]\s*[\"']?[^$\s{(\"']\S+)", re.I)


def test_no_credentials_in_cluster_configs() -> None:
    secret_names = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
    for name, docs in _docs().items():
        assert not _SECRET_VALUE.search((CLUSTER / name.split("#")[0]).read_text()), name
        for d in docs:
            if d.get("kind") == "Secret":
                pytest.fail(f"{name}: a Secret belongs in the cluster, not in the repository")
        for key, value in _walk(docs):  # env entries with credentials must come from a Secret
            if key == "env" and isinstance(value, list):
                for e in value:
                    if e.get("name") in secret_names:
                        assert "valueFrom" in e and "secretKeyRef" in e["valueFrom"], (name, e)


# ---------------------------------------------------------------- incremental runs


def _copy_videos(catalog: Path, folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        shutil.copyfile(catalog / "videos" / f"{n}.mp4", folder / f"{n}.mp4")


def _all_rows(out: Path) -> list[dict[str, Any]]:
    return [r for p in sorted((out / "scores").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]


def test_incremental_scores_only_new_and_changed(ray_cluster: None, workdir: str, catalog: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    videos, out = tmp_path / "videos", tmp_path / "out"
    argv = ["score", "--input", str(videos), "--output", str(out), "--workdir", workdir, "--incremental"]
    _copy_videos(catalog, videos, ["ad00000", "ad00001"])
    assert main(argv) == 0
    first = _all_rows(out)
    assert sorted(r["id"] for r in first) == ["ad00000", "ad00001"]
    assert all(r["version"] and r["version"].startswith("mtime_ns=") for r in first)

    _copy_videos(catalog, videos, ["ad00002", "ad00003"])  # M = 2 new deliveries
    capsys.readouterr()
    assert main(argv) == 0
    assert "4 inputs: 2 new, 0 changed, 2 skipped; 2 processed, 0 failed" in capsys.readouterr().err
    second = _all_rows(out)
    assert len(second) == 4 and sorted(r["id"] for r in second) == ["ad00000", "ad00001", "ad00002", "ad00003"]
    assert [r for r in second if r["id"] in ("ad00000", "ad00001")] == first  # not reprocessed

    # a changed file (another ad's bytes under the same name) alone is redone, once
    old = {r["id"]: r for r in second}
    shutil.copyfile(catalog / "videos" / "ad00004.mp4", videos / "ad00001.mp4")
    assert main(argv) == 0
    third = _all_rows(out)
    assert len(third) == 5 and [r["id"] for r in third[4:]] == ["ad00001"]
    latest = {r["id"]: r for r in incremental.read_latest(str(out / "scores")).to_pylist()}
    assert sorted(latest) == sorted(old)
    assert latest["ad00001"]["version"] != old["ad00001"]["version"]
    assert latest["ad00001"]["transitions"] != old["ad00001"]["transitions"]  # the new content's row is the current one
    assert all(latest[k] == old[k] for k in ("ad00000", "ad00002", "ad00003"))
    capsys.readouterr()
    assert main(argv) == 0  # nothing new: nothing done
    assert "4 inputs: 0 new, 0 changed, 4 skipped" in capsys.readouterr().err
    assert len(_all_rows(out)) == 5


def test_read_latest_prefers_the_later_part(tmp_path: Path) -> None:
    import pyarrow as pa

    folder = str(tmp_path / "rows")
    first, second = incremental.part_url(folder), incremental.part_url(folder)
    assert os.path.basename(first) < os.path.basename(second)
    # written in the other order on purpose: the name, not the write time of the file, decides
    storage.write_table(second, pa.table({"id": ["a", "b"], "x": [2, 20], "version": ["v2", "v2"]}))
    storage.write_table(first, pa.table({"id": ["a", "c"], "x": [1, 3]}))  # an old part without versions
    got = {r["id"]: r for r in incremental.read_latest(folder).to_pylist()}
    assert {k: v["x"] for k, v in got.items()} == {"a": 2, "b": 20, "c": 3}
    assert incremental.done_versions(folder) == {"a": "v2", "b": "v2", "c": None}


def test_s3_versions_follow_the_content(s3_server: str, bucket: str) -> None:
    url = f"s3://{bucket}/in/a.mp4"
    storage.write_bytes(url, b"one")
    v1 = incremental.list_versions(f"s3://{bucket}/in", suffixes=(".mp4",))[url]
    assert v1.startswith("etag=") and v1.endswith(";size=3")
    storage.write_bytes(url, b"one")  # re-delivered, same bytes: same version
    assert incremental.list_versions(f"s3://{bucket}/in")[url] == v1
    storage.write_bytes(url, b"two")  # changed
    v3 = incremental.versions_of([url])[url]
    assert v3 != v1 and v3 == incremental.list_versions(f"s3://{bucket}/in")[url]
    assert incremental.versions_of([f"s3://{bucket}/in/missing.mp4"]) == {f"s3://{bucket}/in/missing.mp4": None}


def test_a_manifests_crowded_folder_is_listed_once_with_the_same_versions(
        s3_server: str, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    urls = [f"s3://{bucket}/crowded/f{k}.mp4" for k in range(4)]
    for k, url in enumerate(urls):
        storage.write_bytes(url, b"x" * (k + 1))
    wanted = [*urls, f"s3://{bucket}/crowded/missing.mp4", f"s3://{bucket}/alone/a.mp4"]
    one_by_one = incremental.versions_of(wanted)  # 6 files in 2 folders: each asked about alone
    assert one_by_one[wanted[-2]] is None and one_by_one[wanted[-1]] is None
    assert all(one_by_one[u] for u in urls)
    asked: list[str] = []
    fs = storage.filesystem(urls[0])[0]
    assert fs is storage.filesystem(wanted[-1])[0]  # one cached filesystem: watching its info() sees every question
    real_info = fs.info
    monkeypatch.setattr(fs, "info", lambda path, **kw: asked.append(path) or real_info(path, **kw))
    monkeypatch.setattr(incremental, "LIST_FOLDER_MIN", 3)
    assert incremental.versions_of(wanted) == one_by_one  # the crowded folder listed: the same versions
    assert sorted(asked) == sorted(u.removeprefix("s3://") for u in wanted[-2:])  # only the ones no listing named


# ---------------------------------------------------------------- --max-error-rate


def _failed_runs(workdir: str) -> list[Any]:
    from mlflow.tracking import MlflowClient

    from jobs.tracking import tracking_uri

    client = MlflowClient(tracking_uri(workdir))
    exp = client.get_experiment_by_name("jobs/score")
    return client.search_runs([exp.experiment_id], order_by=["attribute.start_time DESC"], max_results=1)


def test_max_error_rate(ray_cluster: None, workdir: str, catalog: Path, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    videos = tmp_path / "videos"
    _copy_videos(catalog, videos, ["ad00000"])
    (videos / "empty.mp4").write_bytes(b"")
    (videos / "noise.mp4").write_bytes(os.urandom(4096))
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["score", "--input", str(videos), "--output", str(out), "--workdir", workdir]) == 1  # default 0.05
    err = capsys.readouterr().err
    assert "2 of 3 inputs failed: error rate 0.667 is above --max-error-rate 0.05" in err
    rows = {r["id"]: r["status"] for r in _all_rows(out)}
    assert rows == {"ad00000": "ok", "empty": "error", "noise": "error"}  # the rows are written anyway
    assert _failed_runs(workdir)[0].info.status == "FAILED"

    out2 = tmp_path / "out2"
    assert main(["score", "--input", str(videos), "--output", str(out2), "--workdir", workdir, "--max-error-rate", "0.7"]) == 0
    assert sorted(r["status"] for r in _all_rows(out2)) == ["error", "error", "ok"]
    assert _failed_runs(workdir)[0].info.status == "FINISHED"
    with pytest.raises(SystemExit):
        main(["score", "--input", str(videos), "--output", str(out2), "--max-error-rate", "1.5"])


# ---------------------------------------------------------------- a Ray Job on a Ray head


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _processes_of(temp: str, session: int) -> list[int]:
    """Pids of the processes a test's Ray head started: its session, or its temp dir in their command line."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = (Path("/proc") / entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            sid = os.getsid(int(entry))
            state = (Path("/proc") / entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ProcessLookupError, IndexError):
            continue
        if state in ("Z", "X"):  # gone, waiting to be reaped
            continue
        if sid == session or temp in cmdline:
            found.append(int(entry))
    return found


def _describe(pid: int) -> str:
    try:
        cmdline = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        return f"{pid} {cmdline[:200]}"
    except OSError:
        return str(pid)


def _stop(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass  # already gone: that is what stopping wanted


@pytest.fixture
def ray_head() -> Iterator[tuple[str, str]]:
    """A separate Ray head (``ray start --head --block``, 2 CPUs, its own ports, temp dir and auth token).

    Yields the dashboard URL and the token (Ray 2.5x+ clusters require one: ``RAY_AUTH_MODE=token``).

    It is stopped afterwards by signalling, by pid, the processes it started (never ``ray stop``,
    which would also stop the test session's own Ray).
    """
    import requests

    if not Path("/proc").is_dir():
        pytest.fail("this test finds the Ray head's processes in /proc (Linux)")
    temp = tempfile.mkdtemp(prefix="rayh", dir="/tmp")  # short: Ray's socket paths must stay under 108 chars
    dash = _free_port()
    token = secrets.token_hex(32)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RAY_", "MLFLOW_"))}  # only runtime_env carries them
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    cmd = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--disable-usage-stats",
           f"--port={_free_port()}", "--num-cpus=2", "--num-gpus=0", f"--temp-dir={temp}",
           "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
           f"--dashboard-agent-listen-port={_free_port()}", f"--dashboard-agent-grpc-port={_free_port()}",
           f"--runtime-env-agent-port={_free_port()}", f"--metrics-export-port={_free_port()}",
           f"--ray-client-server-port={_free_port()}", "--min-worker-port=20100", "--max-worker-port=20399",
           "--object-store-memory=200000000"]
    log_path = Path(temp) / "ray-start.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, f"ray start exited: {log_path.read_text()[-3000:]}"
            try:
                if requests.get(f"{url}/api/version", timeout=2, headers={"Authorization": f"Bearer {token}"}).ok:
                    break
            except requests.RequestException:
                pass  # the dashboard is not up yet: poll again until the deadline
            assert time.time() < deadline, "the Ray head did not come up in 120 s"
            time.sleep(1)
        yield url, token
    finally:
        ours = _processes_of(temp, proc.pid)
        proc.send_signal(signal.SIGTERM)  # ray start --block shuts down what it started
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # Ray's runtime-env agent sometimes outlives the head: end what is left of ours, by pid
        for sig in (signal.SIGTERM, signal.SIGKILL):
            deadline = time.time() + 5
            while (left := [p for p in ours if p in _processes_of(temp, proc.pid)]) and time.time() < deadline:
                _stop(left, sig)
                time.sleep(0.5)
        shutil.rmtree(temp, ignore_errors=True)
        assert not left, f"processes of the test's Ray head survive SIGKILL: {[_describe(p) for p in left]}"


@pytest.mark.slow
def test_ray_job_submission(ray_head: tuple[str, str], s3_server: str, bucket: str, catalog: Path, tmp_path: Path) -> None:
    from ray.job_submission import JobStatus, JobSubmissionClient

    for p in sorted((catalog / "videos").glob("*.mp4"))[:2]:
        storage.write_bytes(f"s3://{bucket}/ads/{p.name}", p.read_bytes())
    out = f"s3://{bucket}/scores"
    env_vars = {k: os.environ[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                           "AWS_DEFAULT_REGION")}
    # on a cluster the entrypoint is `python -m jobs ...` (the image's python); here: this venv's
    entrypoint = shlex.join([sys.executable, "-m", "jobs", "score", "--input", f"s3://{bucket}/ads", "--output", out,
                             "--workers", "1", "--incremental", "--workdir", str(tmp_path / "work")])
    url, token = ray_head
    client = JobSubmissionClient(url, headers={"Authorization": f"Bearer {token}"})
    job = client.submit_job(
        entrypoint=entrypoint,
        runtime_env={"working_dir": str(ROOT), "env_vars": env_vars,
                     "excludes": [".venv", "work", ".git", "*.egg-info", ".mypy_cache", ".pytest_cache", ".ruff_cache",
                                  "__pycache__"]},
    )
    deadline = time.time() + 300
    while (status := client.get_job_status(job)) not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
        assert time.time() < deadline, f"job still {status} after 300 s:\n{client.get_job_logs(job)[-3000:]}"
        time.sleep(2)
    logs = client.get_job_logs(job)
    assert status == JobStatus.SUCCEEDED, logs[-4000:]
    assert f"scores         {out}/scores" in logs  # the job reports where its outputs are
    assert "2 inputs: 2 new, 0 changed, 0 skipped; 2 processed, 0 failed" in logs
    # the job ran the uploaded copy of the repository, not this checkout
    info = client.get_job_info(job)
    assert info.runtime_env["working_dir"].startswith(("gcs://", "_ray_pkg_"))
    rows = [r for p in storage.list_files(f"{out}/scores", suffixes=(".parquet",)) for r in storage.read_table(p).to_pylist()]
    assert sorted(r["id"] for r in rows) == ["ad00000", "ad00001"] and all(r["status"] == "ok" for r in rows)
    assert all(r["version"].startswith("etag=") for r in rows)
    assert "testing-secret" not in logs
