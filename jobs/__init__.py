"""Ray entry points: ``python -m jobs <job> [options]`` (``python -m jobs --help`` lists them).

Each job is a module with ``DESCRIPTION``, ``EXAMPLES``, ``add_arguments(parser)``,
``check(args)`` (validation, before anything starts) and ``run(args) -> summary``. The shared
driver in :mod:`jobs.__main__` parses the command line, calls ``check``, starts or joins Ray,
opens the MLflow run, calls ``run`` and prints where the outputs went.
Nothing runs at import time.
"""

#: job name -> module; the one-line descriptions live in the modules.
JOBS = {
    "sample": "jobs.sample",
    "paired": "jobs.paired",
    "score": "jobs.score",
    "preprocess": "jobs.preprocess",
    "train": "jobs.train",
    "generate": "jobs.generate",
    "report": "jobs.report",
    "words": "jobs.words",
    "compact": "jobs.compact",
}
