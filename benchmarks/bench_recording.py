"""False failures and power of the recording check (police records per A&E attendance).

For each seed, a synthetic city is generated without recording bias, with
police recording raised by 40% in one ethnic band and with it lowered by 40%;
each is linked into a panel and the gate's recording check is run with the
project policy. A seed without bias that fails a gated recording check is a
false failure; a biased seed that passes is a miss.

    python benchmarks/bench_recording.py --preset tiny --seeds 10
    python benchmarks/bench_recording.py --preset default --seeds 5 --biases 0

Writes ``benchmarks/results/recording_<preset>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from governance.policy import load_policy
from governance.recording import recording_audit
from training.config import SynthParams, load_params
from training.link.linker import link_sources
from training.panel import build_panel
from training.synth.city import generate_city

RESULTS = Path(__file__).resolve().parent / "results"
GROUP = "majority global majority"


def run_city(preset: str, seed: int, bias: float) -> dict:
    """Generate, link and audit one city; return its gated recording verdicts."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        params = load_params(root=Path(tmp))
        raw = params.paths.resolve("raw")
        generate_city(SynthParams(preset=preset, seed=seed, recording_bias=bias), raw)
        linked = link_sources(raw, params.sources, params.link)
        panel = build_panel(linked.records, linked.areas)
        areas = linked.areas
    policy = load_policy()
    audit = recording_audit(panel, areas, policy.fairness, policy.recording, references={})
    gated = [c for c in audit.checks if c.gated]
    failed = [c for c in gated if not c.passed]
    target = next((c for c in audit.checks if c.name.endswith(f"ethnic_band.{GROUP}")), None)
    return {
        "preset": preset,
        "seed": seed,
        "bias": bias,
        "n_gated": len(gated),
        "failed": [c.name for c in failed],
        "biased_group": None
        if target is None
        else {k: getattr(target, k) for k in ("value", "ci_low", "ci_high", "gated", "passed")},
        "seconds": round(time.perf_counter() - started, 1),
    }


def summarise(runs: list[dict]) -> dict:
    """False-failure rate (no bias) and detection rate (each bias) over seeds."""
    out = {}
    for bias in sorted({r["bias"] for r in runs}):
        rows = [r for r in runs if r["bias"] == bias]
        fails = sum(bool(r["failed"]) for r in rows)
        key = "false_failure_rate" if bias == 0 else "detection_rate"
        out[f"{bias:+.1f}"] = {"seeds": len(rows), "failing": fails, key: fails / len(rows)}
    return out


def write(runs: list[dict], preset: str) -> None:
    """Write ``recording_<preset>.json`` and a Markdown table."""
    RESULTS.mkdir(exist_ok=True)
    summary = summarise(runs)
    machine = f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    payload = {"preset": preset, "machine": machine, "summary": summary, "runs": runs}
    (RESULTS / f"recording_{preset}.json").write_text(json.dumps(payload, indent=2))
    lines = [
        f"# Recording check on the `{preset}` synthetic city",
        "",
        "Police recording changed by the bias in one ethnic band "
        f"(`{GROUP}`); gated recording checks of the project policy "
        "(`recording:` in governance/policy.yaml). Written by benchmarks/bench_recording.py.",
        "",
        "| bias | seeds | seeds failing the gate | rate |",
        "|---|---|---|---|",
    ]
    for bias, s in summary.items():
        rate = s.get("false_failure_rate", s.get("detection_rate"))
        label = "false-failure rate" if bias.startswith("+0.0") else "detection rate"
        lines.append(f"| {bias} | {s['seeds']} | {s['failing']} | {rate:.0%} ({label}) |")
    lines += ["", "| bias | seed | gated checks | failed | biased group ratio [95% CI] |"]
    lines.append("|---|---|---|---|---|")
    for r in runs:
        g = r["biased_group"] or {}
        ratio = (
            f"{g['value']:.2f} [{g['ci_low']:.2f}, {g['ci_high']:.2f}]"
            + ("" if g["gated"] else " (reported only)")
            if g
            else "-"
        )
        lines.append(
            f"| {r['bias']:+.1f} | {r['seed']} | {r['n_gated']} | "
            f"{', '.join(n.removeprefix('fairness.recording_ratio.') for n in r['failed']) or '-'}"
            f" | {ratio} |"
        )
    lines += ["", f"Machine: {machine}."]
    (RESULTS / f"recording_{preset}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    """Run the seeds and biases asked for and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--biases", default="0,0.4,-0.4")
    args = parser.parse_args()
    runs = []
    for seed in range(args.seeds):
        for bias in (float(b) for b in args.biases.split(",")):
            runs.append(run_city(args.preset, seed, bias))
            print(json.dumps(runs[-1]), flush=True)
            write(runs, args.preset)


if __name__ == "__main__":
    main()
