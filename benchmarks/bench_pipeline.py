"""Time and peak memory of each training step at a given preset.

Each step runs as its own ``harmcast`` process so its peak resident memory is
its own (``os.wait4`` returns the child's rusage). A floor is measured in the
same run: the interpreter start plus importing the stack (``import_floor``)
and reading every raw CSV with pandas (``read_raw_floor``), so that a step's
cost can be read against what merely loading its inputs costs on this machine.

Usage::

    uv run python benchmarks/bench_pipeline.py --preset default
    uv run python benchmarks/bench_pipeline.py --preset london --max-train-rows 1000000
    uv run python benchmarks/bench_pipeline.py --preset london --root R --only backtest train

``--only`` reruns some steps in an existing ``--root`` and keeps the other steps'
figures of the previous results file. Writes
``benchmarks/results/pipeline_<preset>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
STEPS = ["synth", "ingest", "panel", "features", "backtest", "train"]

IMPORT_FLOOR = "import pandas, numpy, lightgbm, mlflow, pyarrow"
READ_RAW_FLOOR = """
import sys, pathlib, pandas as pd
root = pathlib.Path(sys.argv[1])
n = sum(len(pd.read_csv(p, dtype=str)) for p in root.rglob('*.csv'))
print(n)
"""


def _run(cmd: list[str], cwd: Path) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.stderr.write(out.decode(errors="replace")[-4000:])
        raise SystemExit(f"{' '.join(cmd)} exited {code}")
    # ru_maxrss is in kilobytes on Linux.
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--skip", nargs="*", default=[], help="steps to leave out")
    parser.add_argument("--root", type=Path, default=None, help="work folder (temp by default)")
    parser.add_argument("--only", nargs="*", default=None, help="run just these steps")
    parser.add_argument(
        "--max-train-rows", type=int, default=None, help="rows sampled to fit one booster"
    )
    parser.add_argument("--threads", type=int, default=None, help="LightGBM threads per fit")
    args = parser.parse_args()

    root = args.root or Path(tempfile.mkdtemp(prefix=f"harmcast-bench-{args.preset}-"))
    root.mkdir(parents=True, exist_ok=True)
    params = f"synth:\n  preset: {args.preset}\n"
    model = {"max_train_rows": args.max_train_rows, "num_threads": args.threads}
    model = {k: v for k, v in model.items() if v}
    if model:
        params += "model:\n" + "".join(f"  {k}: {v}\n" for k, v in model.items())
    (root / "params.yaml").write_text(params)
    harmcast = [sys.executable, "-m", "harmcast.cli"]
    previous = RESULTS / f"pipeline_{args.preset}.json"
    rows = json.loads(previous.read_text())["steps"] if args.only and previous.exists() else {}

    rows["import_floor"] = _run([sys.executable, "-c", IMPORT_FLOOR], root)
    for step in STEPS:
        if step in args.skip or (args.only is not None and step not in args.only):
            continue
        rows[step] = _run([*harmcast, step, "--root", str(root)], root)
        print(step, rows[step], flush=True)
        if step == "synth":
            raw = root / "data" / "01_raw"
            rows["read_raw_floor"] = _run([sys.executable, "-c", READ_RAW_FLOOR, str(raw)], root)

    result = {
        "preset": args.preset,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "model": model,
        "steps": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"pipeline_{args.preset}.json").write_text(json.dumps(result, indent=2))
    cap = f"{args.max_train_rows:,} sampled rows" if args.max_train_rows else "all rows"
    threads = args.threads or "the default (2)"
    lines = [f"# Pipeline steps, preset `{args.preset}`", ""]
    lines += [f"Each booster fit on {cap}, LightGBM threads: {threads}.", ""]
    lines.append("| step | seconds | peak RSS (MB) |")
    lines.append("|---|---:|---:|")
    lines += [f"| {k} | {v['seconds']} | {v['peak_rss_mb']} |" for k, v in rows.items()]
    (RESULTS / f"pipeline_{args.preset}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
