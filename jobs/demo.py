"""``python -m jobs.demo``: the whole system on one machine, step by step (what ``make demo`` runs).

1. ``sample``: synthetic ads (with known cuts and beats) and MIDI of a few music21 composers;
2. ``score``: how well each ad's own music fits its picture;
3. ``generate``: soundtracks for a few ads with the committed ``small`` weights (``models/vem-small``;
   when they are missing, a short ``preprocess`` + ``train`` makes them first), muxed and scored;
4. ``words``: the music-words of each composer;
5. ``report``: one HTML page with all of it.

Each step is a job with its own MLflow run. ``--debug`` runs the same steps at test size.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from jobs.__main__ import main as job

MODEL = Path(__file__).resolve().parents[1] / "models" / "vem-small"


def steps(out: str, *, debug: bool, model: str) -> list[list[str]]:
    p = lambda *xs: os.path.join(out, *xs)  # noqa: E731
    sample = ["sample", "--out", p("sample"), "--videos", "3" if debug else "12", "--pieces", "1" if debug else "6",
              "--composers", "bach,palestrina" if debug else "bach,palestrina,beethoven,mozart"]
    if debug:
        sample += ["--preset", "debug"]
    return [
        sample,
        ["score", "--input", p("sample", "videos"), "--output", p("scores")],
        ["generate", "--input", p("sample", "videos"), "--model", model, "--output", p("generated"),
         "--limit", "2" if debug else "4", "--steps", "4" if debug else "25"],
        ["words", "--input", p("sample", "midi"), "--output", p("words")] + (["--preset", "debug"] if debug else []),
        ["report", "--scores", p("scores"), "--generated", p("generated"), "--words", p("words"), "--output", p("report")],
    ]


def train_steps(out: str) -> list[list[str]]:
    """A few minutes of training when the committed weights are missing."""
    return [["preprocess", "--input", os.path.join(out, "sample", "videos"), "--output", os.path.join(out, "examples")],
            ["train", "--data", os.path.join(out, "examples"), "--output", os.path.join(out, "vem-small"),
             "--preset", "small", "--steps", "60", "--workers", "1", "--holdout", "0"]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m jobs.demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="work", help="folder of everything the demo writes (default: %(default)s)")
    ap.add_argument("--workdir", default=None, help="MLflow store folder (default: --out)")
    ap.add_argument("--model", default=str(MODEL), help="the pipeline to generate with (default: the committed small weights)")
    ap.add_argument("--debug", action="store_true", help="test size: 3 short ads, 1 piece per composer, 4 sampler steps")
    ap.add_argument("--num-cpus", type=int, default=None)
    args = ap.parse_args(argv)
    common = ["--workdir", args.workdir or args.out, "--max-error-rate", "1"]
    if args.num_cpus:
        common += ["--num-cpus", str(args.num_cpus)]
    t0 = time.time()
    plan = steps(args.out, debug=args.debug, model=args.model)
    if not Path(args.model, "vem_config.json").is_file():
        print(f"demo: no model at {args.model}; training a small one for a few minutes first", file=sys.stderr)
        plan[2][plan[2].index("--model") + 1] = os.path.join(args.out, "vem-small", "model")
        plan = plan[:2] + train_steps(args.out) + plan[2:]
    for i, argv_ in enumerate(plan, 1):
        print(f"\n=== demo step {i}/{len(plan)}: python -m jobs {' '.join(argv_)}", file=sys.stderr)
        code = job([*argv_, *common])
        if code != 0:
            print(f"demo: step {argv_[0]} failed (exit {code})", file=sys.stderr)
            return code
    from jobs.tracking import tracking_uri, ui_command  # noqa: PLC0415

    print(f"\ndemo: done in {time.time() - t0:.0f} s")
    print(f"  report     {os.path.abspath(os.path.join(args.out, 'report', 'index.html'))}")
    print(f"  mlflow ui  {ui_command(tracking_uri(args.workdir or args.out))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
