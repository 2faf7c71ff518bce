"""This test session's Ray worker processes, found by their process title and killed for real.

Ray names a worker process after what it runs (``ray::ShardActor`` when idle,
``ray::ShardActor.expected_counts`` inside a call, ``ray::MapWorker(MapBatches(Generator))`` for
a Ray Data actor). Only the children of this session's raylet are looked at, so the processes
of other Ray clusters on the machine (other test sessions) are never touched.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def raylet_pid() -> int:
    """Pid of the raylet of the Ray cluster this process is connected to (a local one)."""
    import ray

    return int(ray._private.worker._global_node.all_processes["raylet"][0].process.pid)


def title(pid: int) -> str:
    """The process title (``/proc/<pid>/cmdline``), or ``""`` when the process is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def workers(parent: int, name: str) -> list[int]:
    """Pids of the worker processes of ``parent`` (a raylet) whose title contains ``name``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit():
                continue
            stat = (proc / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == parent and name in title(int(proc.name)):
                found.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return sorted(found)


@dataclass
class Kill:
    """What :func:`run_and_kill` did: the job's exit code, and the process it killed (with its title then)."""

    code: int | None = None
    pid: int | None = None
    title: str = ""
    at: float = 0.0  # seconds after the job started
    seen: dict[str, Any] = field(default_factory=dict)  # what ``ready`` returned when the kill was made


def run_and_kill(job: Callable[[], int], name: str, *, ready: Callable[[], Any] = lambda: True, delay: float = 0.0,
                 timeout: float = 600.0) -> Kill:
    """Run ``job`` in a thread; SIGKILL the first worker process whose title contains ``name``
    once ``ready()`` returns something true (``delay`` seconds after it is seen); wait for the job.

    The kill is ``os.kill(pid, SIGKILL)``: the process dies at once, with no Python cleanup, as
    on an OOM kill or a lost node.
    """
    raylet = raylet_pid()
    out = Kill()
    started = time.time()

    def target() -> None:
        out.code = job()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    deadline = started + timeout
    while out.pid is None and thread.is_alive() and time.time() < deadline:
        seen = ready()
        if seen:
            for pid in workers(raylet, name):
                if delay:
                    time.sleep(delay)
                text = title(pid)
                if name not in text:  # it moved on (or is gone) while we waited
                    continue
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                out.pid, out.title, out.at = pid, text, round(time.time() - started, 2)
                out.seen = seen if isinstance(seen, dict) else {"ready": seen}
                break
        time.sleep(0.05)
    thread.join(timeout=max(1.0, deadline - time.time()))
    assert not thread.is_alive(), f"the job did not finish within {timeout:.0f} s"
    return out


def cpus_free_within(seconds: float) -> bool:
    """Whether every CPU of the cluster is free again within ``seconds`` (a job's actors let go of theirs)."""
    import ray

    deadline = time.monotonic() + seconds
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources()["CPU"]:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
