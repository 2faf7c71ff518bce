"""Write cluster/constraints.txt: the versions of the project's runtime dependencies (and theirs)
in the environment that passed the tests, for the Docker image (``pip install -c``).

    .venv/bin/python cluster/constraints.py > cluster/constraints.txt

torch and the CUDA libraries are left out: the image's base and its ``TORCH`` argument choose
them (a CPU build's ``+cpu`` version would not install on a GPU image). Test-only packages are
left out too.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = "vem-musicwords"
LEFT_OUT = re.compile(r"^(torch|triton|nvidia-.*|cuda-.*)$")


def closure(project: str = PROJECT) -> dict[str, str]:
    """Installed name -> version of everything ``project`` needs at run time, extras it names included."""
    found: dict[str, str] = {}
    todo: list[tuple[str, frozenset[str]]] = [(project, frozenset())]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        dist = md.distribution(name)
        for text in dist.requires or []:
            req = Requirement(text)
            env_ok = req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (extras or {""}))
            if not env_ok:
                continue
            key = canonicalize_name(req.name)
            try:
                found[key] = md.version(req.name)
            except md.PackageNotFoundError:
                continue  # a dependency of a platform or Python this environment is not
            todo.append((req.name, frozenset(req.extras)))
    found.pop(canonicalize_name(project), None)
    return {k: v for k, v in sorted(found.items()) if not LEFT_OUT.match(k)}


def main() -> None:
    sys.stdout.write("# The versions the tests passed with, for the Docker image (pip install -c); torch and CUDA: the image's.\n"
                     "# Made by: .venv/bin/python cluster/constraints.py > cluster/constraints.txt\n")
    for name, version in closure().items():
        sys.stdout.write(f"{name}=={version}\n")


if __name__ == "__main__":
    main()
