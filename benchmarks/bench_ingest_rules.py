"""Ingest time with the partner-format rules against the code before them, same run.

The rules (dates read value by value in ISO and UK day-first forms, both ISTV
timestamps, receptionists' location prefixes, per-area reach, swapped
coordinates, per-rule rescue counts, coverage in the report) must cost at
most 20% more ingest time than the code before them. Both versions link the
same synthetic city (generated once with this checkout) in fresh processes,
alternating, ``--rounds`` times each; the earlier version runs from a
``git worktree`` of ``--baseline`` (removed afterwards unless ``--keep``),
imported through ``PYTHONPATH`` with this checkout's environment.

Usage::

    uv run python benchmarks/bench_ingest_rules.py                  # london, 2 rounds
    uv run python benchmarks/bench_ingest_rules.py --preset default --rounds 3

Writes ``benchmarks/results/ingest_rules.json`` and ``ingest_rules.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
LIMIT = 1.20

# Run in a fresh interpreter with PYTHONPATH set to the version under test.
_CHILD = """
import json, resource, sys, time
from pathlib import Path
from training.config import LinkParams, SourceParams
from training.link.linker import link_sources
raw = Path(sys.argv[1])
started = time.perf_counter()
result = link_sources(raw, SourceParams(), LinkParams())
seconds = time.perf_counter() - started
print(json.dumps({
    "seconds": seconds,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "linked": {s: e["linked"] for s, e in result.report.items()},
    "records_in": {s: e["records_in"] for s, e in result.report.items()},
    "rescued_by": {s: e.get("rescued_by", {}) for s, e in result.report.items()},
}))
"""


def _city(preset: str, work: Path) -> Path:
    raw = work / f"city_{preset}" / "01_raw"
    if not (raw / "city.json").is_file():
        code = (
            "import sys; from pathlib import Path; from training.config import SynthParams;"
            "from training.synth.city import generate_city;"
            "generate_city(SynthParams(preset=sys.argv[1]), Path(sys.argv[2]))"
        )
        subprocess.run([sys.executable, "-c", code, preset, str(raw)], check=True, cwd=REPO)
    return raw


def _baseline(ref: str, work: Path) -> Path:
    tree = work / f"baseline_{ref}"
    if not tree.is_dir():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), ref],
                       check=True, capture_output=True)  # fmt: skip
    return tree


def _run(source: Path, raw: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(source)}
    out = subprocess.run([sys.executable, "-c", _CHILD, str(raw)], check=True, cwd=source,
                         env=env, capture_output=True, text=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _markdown(result: dict) -> str:
    base, new = result["baseline"], result["rules"]
    lines = [
        f"# Ingest with the partner-format rules, preset `{result['preset']}`",
        "",
        f"`link_sources` on the same synthetic city, {result['rounds']} alternating rounds "
        f"per version in fresh processes; the earlier code is commit `{result['baseline_ref']}`.",
        f"Machine load during the run (1-minute load average at start): {result['load']:.1f}.",
        "",
        "| version | seconds (each round) | median | peak RSS (MB) |",
        "|---|---|---:|---:|",
    ]
    for name, runs in (("before the rules", base), ("with the rules", new)):
        seconds = ", ".join(f"{r['seconds']:.1f}" for r in runs)
        lines.append(
            f"| {name} | {seconds} | {statistics.median(r['seconds'] for r in runs):.1f} | "
            f"{max(r['peak_rss_mb'] for r in runs):.0f} |"
        )
    lines += [
        "",
        f"Ratio of medians: **{result['ratio']:.3f}** (limit {LIMIT:.2f}): "
        + ("within the limit." if result["ratio"] <= LIMIT else "**over the limit**."),
        "",
        "| source | records in | linked before | linked with the rules | rescued by |",
        "|---|---:|---:|---:|---|",
    ]
    for source, n_in in new[0]["records_in"].items():
        rescued = ", ".join(f"{k} {v}" for k, v in new[0]["rescued_by"].get(source, {}).items())
        lines.append(
            f"| {source} | {n_in} | {base[0]['linked'].get(source, '-')} | "
            f"{new[0]['linked'][source]} | {rescued or '-'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Run the benchmark and write its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="london")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline", default="4e7dc4b")
    parser.add_argument("--work", type=Path, default=None, help="Folder for the city and tree.")
    parser.add_argument("--keep", action="store_true", help="Keep the baseline worktree.")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_ingest_rules_"))
    work.mkdir(parents=True, exist_ok=True)
    raw = _city(args.preset, work)
    tree = _baseline(args.baseline, work)
    runs: dict[str, list[dict]] = {"baseline": [], "rules": []}
    load = os.getloadavg()[0]
    try:
        for i in range(args.rounds):
            order = (("baseline", tree), ("rules", REPO))
            for name, source in order if i % 2 == 0 else order[::-1]:
                runs[name].append(_run(source, raw))
                print(name, f"{runs[name][-1]['seconds']:.1f} s", flush=True)
    finally:
        if not args.keep:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                           check=False)  # fmt: skip
    ratio = statistics.median(r["seconds"] for r in runs["rules"]) / statistics.median(
        r["seconds"] for r in runs["baseline"]
    )
    result = {"preset": args.preset, "rounds": args.rounds, "baseline_ref": args.baseline,
              "load": load, "ratio": ratio, "limit": LIMIT, **runs}  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest_rules.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "ingest_rules.md").write_text(_markdown(result))
    print(_markdown(result))


if __name__ == "__main__":
    main()
