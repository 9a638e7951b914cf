"""harmcast commands: serving (snapshot, BentoML import, serve)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from harmcast.commands._common import ParamsOption, RootOption, console, fail_clearly, get_params


def _read_frame(path: Path):
    import pandas as pd

    from training.errors import SchemaError

    if not path.is_file():
        raise SchemaError(path, "file not found (run the earlier pipeline steps first)")
    return pd.read_parquet(path)


def snapshot(root: RootOption = Path("."), params_file: ParamsOption = None) -> None:
    """Forecast every area for the next weeks with the production model (data/09_snapshot).

    Only a servable production version (``check_servable``) may make it; the
    snapshot's hash is recorded in the audit log (signed) and on the version.
    """
    from governance.policy import load_policy, project_policy_path
    from governance.provenance import Governance
    from governance.servable import record_snapshot
    from serving.snapshot import build_snapshot, snapshot_sha256, write_snapshot
    from serving.store import load_forecaster, resolve_approved
    from training.config import tracking_uri

    params = get_params(params_file, root)
    paths, uri = params.paths, tracking_uri(params)
    with fail_clearly():
        approved = resolve_approved(
            uri, params.tracking.registered_model, cards_root=paths.resolve("model_cards"),
            root=paths.root,
        )  # fmt: skip
        forecaster = load_forecaster(approved, tracking_uri=uri, models_dir=paths.resolve("models"))
        features = _read_frame(paths.resolve("features") / "features.parquet")
        areas = _read_frame(paths.resolve("panel") / "areas.parquet")
        built = build_snapshot(
            features,
            forecaster,
            areas,
            policy_coverage=load_policy(project_policy_path(paths)).serving.hotspot_coverage,
            model_name=approved.name,
            model_version=approved.version,
        )
        written = write_snapshot(built, paths.resolve("snapshot"))
        _write_briefing_inputs(written, features, forecaster, areas, paths)
        digest = snapshot_sha256(paths.resolve("snapshot"))
        record_snapshot(Governance.from_params(params), approved.name, approved.version, digest)
    meta = written.meta
    console.print(
        f"[green]snapshot[/] {approved.name} v{approved.version}: origin week "
        f"{meta.origin_week}, {meta.n_areas} areas x horizons {list(meta.horizons)} -> "
        f"{paths.resolve('snapshot')} (sha256 {digest[:12]}, recorded)"
    )


def _write_briefing_inputs(snapshot, features, forecaster, areas, paths) -> None:
    from serving.briefing.inputs import build_briefing_files
    from training.atomic import write_files

    boundaries = paths.resolve("raw") / "reference" / "boundaries.geojson"
    files = build_briefing_files(
        snapshot, features, forecaster, areas, paths.resolve("snapshot"), boundaries=boundaries
    )
    write_files(files)


def bento_import(root: RootOption = Path("."), params_file: ParamsOption = None) -> None:
    """Import the servable production model, its card and recorded snapshot into BentoML."""
    from serving.store import import_to_bentoml, resolve_approved, write_model_tag
    from training.config import tracking_uri

    params = get_params(params_file, root)
    paths, uri = params.paths, tracking_uri(params)
    with fail_clearly():
        approved = resolve_approved(
            uri, params.tracking.registered_model, cards_root=paths.resolve("model_cards"),
            root=paths.root, snapshot_dir=paths.resolve("snapshot"),
        )  # fmt: skip
        tag = import_to_bentoml(
            approved,
            approved.card_dir,
            paths.resolve("snapshot"),
            tracking_uri=uri,
            models_dir=paths.resolve("models"),
        )
    written = write_model_tag(tag)
    console.print(f"[green]imported[/] {tag} (pinned in {written})")


def serve(
    root: RootOption = Path("."),
    params_file: ParamsOption = None,
    model: Annotated[
        str | None, typer.Option("--model", help="BentoML tag (default: serving/model_tag.txt).")
    ] = None,
) -> None:
    """Run the BentoML service on params.serving.host:port (checks the registry at start)."""
    from training.config import tracking_uri

    params = get_params(params_file, root)
    env = {
        **os.environ,
        "HARMCAST_TRACKING_URI": tracking_uri(params),
        "HARMCAST_ROOT": str(params.paths.root.resolve()),
    }
    if model:
        env["HARMCAST_BENTO_MODEL"] = model
    if params_file is not None:
        env["HARMCAST_PARAMS"] = str(params_file.resolve())
    project = Path(__file__).resolve().parents[2]
    command = [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        "serving.service:HarmcastForecast",
        "--host",
        params.serving.host,
        "--port",
        str(params.serving.port),
        "--working-dir",
        str(project),
    ]
    url = f"http://{params.serving.host}:{params.serving.port}"
    console.print(f"serving on {url} (planners' weekly briefing: {url}/, API: {url}/docs)")
    code = subprocess.call(command, env=env)
    if code != 0:
        raise typer.Exit(code=code)


def register(app: typer.Typer) -> None:
    """Add this module's commands to app."""
    app.command("snapshot")(snapshot)
    app.command("serve")(serve)
    bento = typer.Typer(help="BentoML model store.", no_args_is_help=True)
    bento.command("import")(bento_import)
    app.add_typer(bento, name="bento")
