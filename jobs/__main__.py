"""The one command line of all jobs: ``python -m jobs <job> [options]``."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from types import ModuleType
from typing import Any

from jobs import JOBS


def _module(name: str) -> ModuleType:
    return importlib.import_module(JOBS[name])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jobs",
        description="Batch jobs of the VeM and music-words system, on a local Ray cluster or an existing one.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="run 'python -m jobs <job> --help' for a job's options",
    )
    sub = parser.add_subparsers(dest="job", metavar="<job>", title="jobs")
    for name in JOBS:
        module = _module(name)
        job = sub.add_parser(
            name, help=module.DESCRIPTION, description=module.DESCRIPTION, epilog=module.EXAMPLES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(job)
        common = job.add_argument_group("runtime")
        common.add_argument(
            "--address", default=None,
            help="Ray cluster to join (e.g. ray://head:10001 or auto); default: RAY_ADDRESS, else start a local one",
        )
        common.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray cluster (default: all)")
        common.add_argument("--dry-run", action="store_true",
                            help="list what would be processed and where the outputs would go, then stop "
                                 "(no Ray, no MLflow run, nothing written)")
        common.add_argument(
            "--workdir", default=os.environ.get("JOBS_WORKDIR", "work"),
            help="folder of the local MLflow store (mlflow.db, mlartifacts) unless MLFLOW_TRACKING_URI is set "
            "(default: %(default)s)",
        )
        common.add_argument(
            "--max-error-rate", type=float, default=0.05, metavar="RATE",
            help="exit with status 1 (and mark the MLflow run failed) when more than this share of the inputs "
            "processed gave error rows; the rows are written either way (default: %(default)s)",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    from jobs.runtime import ErrorRateExceeded, JobError, check_error_rate, quiet_logs, start_ray, stop_ray  # noqa: PLC0415
    from jobs.storage import StorageError, scrub  # noqa: PLC0415

    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.job:
        parser.print_help()
        return 2
    if args.num_cpus is not None and args.num_cpus < 1:
        parser.error(f"--num-cpus must be at least 1, got {args.num_cpus}")
    if not 0.0 <= args.max_error_rate <= 1.0:
        parser.error(f"--max-error-rate must be between 0 and 1, got {args.max_error_rate}")
    quiet_logs()
    module = _module(args.job)
    started = False
    failure: ErrorRateExceeded | None = None
    try:
        module.check(args)
        if args.dry_run:
            print(json.dumps(module.dry_run(args), indent=2, default=str))
            return 0
        from jobs.tracking import job_run, tracking_uri, ui_command  # noqa: PLC0415

        os.makedirs(args.workdir, exist_ok=True)
        started = start_ray(address=args.address, num_cpus=args.num_cpus)
        params = {k: v for k, v in vars(args).items() if k not in ("job",)}
        with job_run(args.job, workdir=args.workdir, params=params) as run:
            t0 = time.time()
            summary = module.run(args)
            _log_summary(summary, time.time() - t0)
            check_error_rate(summary, args.max_error_rate)  # raising here marks the MLflow run FAILED
    except (JobError, StorageError) as e:
        print(f"error: {scrub(e)}", file=sys.stderr)
        return 2
    except ErrorRateExceeded as e:
        failure = e
    finally:
        stop_ray(started)
    state = "failed" if failure else "done"
    print(f"\n{args.job}: {state} in {summary.get('seconds', round(time.time() - t0, 1))} s", file=sys.stderr)
    for key, url in (summary.get("outputs") or {}).items():
        if url:
            print(f"  {key:<14} {url}")
    uri = tracking_uri(args.workdir)
    print(f"  {'mlflow run':<14} {run.info.run_id} (experiment jobs/{args.job}) in {uri}")
    print(f"  {'mlflow ui':<14} {ui_command(uri)}")
    if failure:
        print(f"error: {failure}", file=sys.stderr)
        return 1
    return 0


def _log_summary(summary: dict[str, Any], seconds: float) -> None:
    import mlflow  # noqa: PLC0415

    metrics = {k: float(v) for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    metrics.setdefault("seconds", seconds)
    mlflow.log_metrics(metrics)
    mlflow.log_dict(summary, "summary.json")
    print(json.dumps({k: v for k, v in summary.items() if k != "outputs"}), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
