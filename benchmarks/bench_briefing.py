"""The planner's briefing page: weight and time until the map is drawn, in headless Chromium.

One command, ``uv run python benchmarks/bench_briefing.py``: for the default
city (1,000 areas, 10 districts) and the london preset (5,000 areas, 12
districts) it builds the snapshot-level inputs synthetically (the preset's
area polygons from ``training.synth.geometry``, synthetic features and a small
LightGBM model rather than the full pipeline: training the london model takes
far longer and does not change what the page draws), imports them into a temp
BentoML store, starts ``bentoml serve`` on 127.0.0.1, signs in with Debian's
Chromium and loads the briefing ``--rounds`` times per city, interleaved.

Measured per load: bytes of every response the page fetched (HTML, CSS, JS),
time to the first byte of the HTML, and time from navigation start until every
area's shape is in the DOM and a frame has been painted after it. Medians are
written, with the ratio london / default, to benchmarks/results/briefing.{json,md}.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
CITIES = (("default", 1000, 10), ("london", 5000, 12))
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DRAWN_JS = """async (n) => {
  while (document.querySelectorAll('#map .area').length < n) {
    await new Promise(r => setTimeout(r, 5));
  }
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const nav = performance.getEntriesByType('navigation')[0];
  return {drawn_ms: performance.now(), ttfb_ms: nav.responseStart - nav.startTime};
}"""


def _helpers():
    spec = importlib.util.spec_from_file_location(
        "serving_city", REPO / "tests/serving/conftest.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["serving_city"] = module
    spec.loader.exec_module(module)
    return module


def _areas(n_areas: int, n_districts: int, boundaries: Path):
    import numpy as np
    import pandas as pd
    import shapely

    from training.synth.geometry import build_geometry, to_lonlat

    rng = np.random.default_rng(7)
    geo = build_geometry(n_areas, n_districts, rng)
    cells = shapely.transform(geo.cells, lambda xy: np.column_stack(to_lonlat(xy[:, 0], xy[:, 1])))
    codes = [f"SYN{i:05d}" for i in range(1, n_areas + 1)]
    centre = shapely.centroid(cells)
    features = [
        {"type": "Feature", "properties": {"area_code": c}, "geometry": json.loads(g)}
        for c, g in zip(codes, shapely.to_geojson(cells), strict=True)
    ]
    boundaries.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return pd.DataFrame(
        {
            "area_code": codes,
            "area_name": [f"Area {i}" for i in range(1, n_areas + 1)],
            "district": [f"District {d + 1}" for d in geo.district],
            "latitude": shapely.get_y(centre),
            "longitude": shapely.get_x(centre),
            "area_km2": shapely.area(geo.cells),
            "population": rng.integers(1200, 3000, n_areas).astype(float),
            "imd_decile": rng.integers(1, 11, n_areas).astype(float),
        }
    )


def build(h, tmp: Path, n_areas: int, n_districts: int) -> str:
    """Build and import one city; return its BentoML tag."""
    import mlflow

    from governance.servable import record_snapshot
    from serving.briefing.inputs import build_briefing_files
    from serving.snapshot import build_snapshot, snapshot_sha256, write_snapshot
    from serving.store import import_to_bentoml, resolve_approved
    from tests.governance.governed import make_project
    from training.atomic import write_files

    project = make_project(tmp)
    uri = project.uri
    areas = _areas(n_areas, n_districts, tmp / "boundaries.geojson")
    features = h.make_features(areas, n_weeks=30)
    forecaster = h.train_forecaster(features, rounds=60, seed=3)
    version = h.register_version(project, forecaster, tmp=tmp)
    client = mlflow.MlflowClient(uri, uri)
    client.set_registered_model_alias(h.MODEL_NAME, "production", str(version))
    approved = resolve_approved(uri, h.MODEL_NAME, cards_root=tmp / "model_cards")
    snapshot = build_snapshot(
        features, forecaster, areas, policy_coverage=0.1, model_version=version
    )
    written = write_snapshot(snapshot, tmp / "snapshot")
    write_files(
        build_briefing_files(
            written, features, forecaster, areas, tmp / "snapshot",
            boundaries=tmp / "boundaries.geojson",
        )
    )  # fmt: skip
    # as `harmcast snapshot` records it
    record_snapshot(project.gov, h.MODEL_NAME, version, snapshot_sha256(tmp / "snapshot"))
    return import_to_bentoml(
        approved, approved.card_dir, tmp / "snapshot", tracking_uri=uri,
        store=tmp.parent / "bentoml",
    )  # fmt: skip


def serve(h, tag: str, home: Path, token: str, log: Path) -> tuple[subprocess.Popen, str]:
    """Start ``bentoml serve`` on a free loopback port; return it once ready.

    The city's root is the log's folder: its registry and board decide at start-up.
    """
    port = h.free_port()
    root = log.parent
    env = {
        **os.environ,
        "HARMCAST_ROOT": str(root),
        "HARMCAST_TRACKING_URI": f"sqlite:///{root / 'mlruns' / 'mlflow.db'}",
        "BENTOML_HOME": str(home),
        "HARMCAST_BENTO_MODEL": tag,
        "HARMCAST_PLANNER_TOKENS": token,
        "BENTOML_DO_NOT_TRACK": "true",
    }
    command = [sys.executable, "-m", "bentoml", "serve", "serving.service:HarmcastForecast"]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("server not ready after 180 s")


def load_once(context, url: str, n_areas: int) -> dict:
    """Load the briefing once in a fresh page; return its weight and timings."""
    page = context.new_page()
    sizes: list[int] = []
    page.on("response", lambda r: sizes.append(len(r.body())) if r.ok else None)
    page.goto(url + "/", wait_until="commit")
    timing = page.evaluate(DRAWN_JS, n_areas)
    page.wait_for_load_state("load")
    html = len(page.content().encode())
    page.close()
    return {**timing, "bytes": sum(sizes), "html_bytes": html, "requests": len(sizes)}


def screenshots(browser, context, url: str, out: Path) -> None:
    """Save the sign-in page, the briefing and an area's detail as PNG files in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    anonymous = browser.new_context(viewport={"width": 1280, "height": 900})
    page = anonymous.new_page()
    page.goto(url + "/signin")
    page.screenshot(path=str(out / "briefing-signin.png"))
    anonymous.close()
    page = context.new_page()
    page.goto(url + "/")
    page.screenshot(path=str(out / "briefing.png"), full_page=False)
    first = page.get_attribute("#ranked tbody tr", "data-code")
    page.goto(url + f"/?area={first}#detail")
    page.screenshot(path=str(out / "briefing-area-detail.png"), full_page=False)
    page.close()


def main() -> None:
    """Measure both cities and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="page loads per city")
    parser.add_argument(
        "--screenshots", type=Path, default=None, help="save the default city's pages here (docs/)"
    )
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    h = _helpers()
    token = secrets.token_urlsafe(16)
    results: dict[str, list[dict]] = {name: [] for name, *_ in CITIES}
    servers = {}
    with tempfile.TemporaryDirectory(prefix="harmcast-bench-briefing-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["BENTOML_HOME"] = str(tmp / "bentoml")
        try:
            for name, n_areas, n_districts in CITIES:
                city = tmp / name
                city.mkdir()
                started = time.perf_counter()
                tag = build(h, city, n_areas, n_districts)
                print(f"{name}: built in {time.perf_counter() - started:.0f} s", flush=True)
                servers[name] = serve(h, tag, tmp / "bentoml", token, city / "server.log")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                contexts = {}
                for name, *_ in CITIES:
                    url = servers[name][1]
                    contexts[name] = browser.new_context(viewport={"width": 1280, "height": 900})
                    page = contexts[name].new_page()
                    page.goto(url + "/signin")
                    page.fill("#credential", token)
                    with page.expect_navigation():
                        page.click("button[type=submit]")
                    page.close()
                for _ in range(args.rounds):
                    for name, n_areas, _d in CITIES:
                        load = load_once(contexts[name], servers[name][1], n_areas)
                        results[name].append(load)
                        print(f"{name}: {load}", flush=True)
                if args.screenshots:
                    screenshots(
                        browser, contexts["default"], servers["default"][1], args.screenshots
                    )
                browser.close()
        finally:
            for process, _url in servers.values():
                process.terminate()
                process.wait(timeout=30)
    write(results, args.rounds)


def _median(rounds: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rounds)


def write(results: dict[str, list[dict]], rounds: int) -> None:
    """Write benchmarks/results/briefing.{json,md}."""
    summary = {
        name: {k: _median(r, k) for k in ("bytes", "html_bytes", "ttfb_ms", "drawn_ms")}
        for name, r in results.items()
    }
    ratio = {k: summary["london"][k] / summary["default"][k] for k in summary["default"]}
    RESULTS.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[1]
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores (5-minute load average {load:.1f} "
        f"at the end), Python {platform.python_version()}"
    )
    (RESULTS / "briefing.json").write_text(
        json.dumps(
            {
                "machine": machine,
                "rounds": rounds,
                "median": summary,
                "ratio": ratio,
                "raw": results,
            },
            indent=2,
        )  # fmt: skip
        + "\n"
    )
    lines = [
        "# Briefing page: weight and time until the map is drawn",
        "",
        f"`uv run python benchmarks/bench_briefing.py` on {machine}; headless Debian Chromium,",
        f"one signed-in page load per city per round, {rounds} rounds interleaved; medians.",
        "Snapshot-level inputs are synthetic (the presets' area polygons, synthetic features,",
        "a small LightGBM model), not the full pipeline's: the page draws the same shapes.",
        "",
        "| city | areas | page weight (KB) | HTML (KB) | first byte (ms) | map drawn (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for name, n_areas, _d in CITIES:
        s = summary[name]
        lines.append(
            f"| {name} | {n_areas:,} | {s['bytes'] / 1024:,.0f} | {s['html_bytes'] / 1024:,.0f} "
            f"| {s['ttfb_ms']:,.0f} | {s['drawn_ms']:,.0f} |"
        )
    lines += [
        f"| **london / default** | 5.0x | {ratio['bytes']:.1f}x | {ratio['html_bytes']:.1f}x "
        f"| {ratio['ttfb_ms']:.1f}x | {ratio['drawn_ms']:.1f}x |",
        "",
        "Page weight is the bytes of every response the page fetched (the HTML, two",
        "stylesheets, the script; nothing from another host). It grows in proportion",
        "to the areas: one SVG shape each, with its name, plus the flagged areas' rows",
        "(10% of areas). Map drawn: from navigation start until every area's shape is in",
        "the DOM and a frame has been painted after it. A district view draws only that",
        "district's areas. The machine was shared with other jobs: single loads vary by",
        "up to 2x, so read the medians and the ratio, not one load.",
        "",
    ]
    (RESULTS / "briefing.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
