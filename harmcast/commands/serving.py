"""harmcast commands: serving (snapshot, BentoML import, serve).

The BentoML store is the project's own, ``<root>/bentoml``, unless the user
set ``BENTOML_HOME``: ``bento import`` sets ``BENTOML_HOME`` to it while it
works and also names the store to BentoML explicitly (BentoML resolves its
home once per process, so a variable set after that is not read), and
``serve`` sets ``BENTOML_HOME`` for the server it starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from harmcast.commands._common import ParamsOption, RootOption, console, fail_clearly, get_params
from training.config import Params


def _read_frame(path: Path):
    import pandas as pd

    from training.errors import SchemaError

    if not path.is_file():
        raise SchemaError(path, "file not found (run the earlier pipeline steps first)")
    return pd.read_parquet(path)


BENTOML_HOME_ENV = "BENTOML_HOME"
BENTOML_DIR = "bentoml"
PARAMS_ENV = "HARMCAST_PARAMS"
TRACKING_URI_ENV = "HARMCAST_TRACKING_URI"


def bentoml_home(root: Path) -> Path:
    """Return the BentoML store these commands use: ``$BENTOML_HOME`` or ``<root>/bentoml``."""
    home = os.environ.get(BENTOML_HOME_ENV, "").strip()
    return Path(home) if home else (root / BENTOML_DIR).resolve()


@contextmanager
def _bentoml_home(store: Path) -> Iterator[None]:
    """Set ``BENTOML_HOME`` to ``store`` while BentoML works, then put it back.

    BentoML resolves its home on first use, once per process: set then, the
    whole store (its client id too) is the root's. Put back afterwards, so a
    later command in the same process does not take it for the user's choice.
    """
    before = os.environ.get(BENTOML_HOME_ENV)
    os.environ[BENTOML_HOME_ENV] = str(store)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(BENTOML_HOME_ENV, None)
        else:
            os.environ[BENTOML_HOME_ENV] = before


def params_path(params_file: Path | None, root: Path) -> Path | None:
    """Return the params.yaml ``get_params`` reads (``--params``, else ``<root>/params.yaml``)."""
    if params_file is None and (root / "params.yaml").is_file():
        params_file = root / "params.yaml"
    return None if params_file is None else params_file.resolve()


HostOption = Annotated[
    str | None, typer.Option("--host", help="Interface to bind (default params serving.host).")
]
PortOption = Annotated[
    int | None, typer.Option("--port", help="Port to bind (default params serving.port).")
]


def _record_import(params, approved, details: dict) -> None:
    from governance.provenance import Governance
    from governance.registry import SYSTEM_ACTOR, record_action

    gov = Governance.from_params(params)
    record_action(
        gov.client(), gov.audit_log, actor=SYSTEM_ACTOR, action="bento_import",
        model=approved.name, version=approved.version, details=details,
    )  # fmt: skip


def snapshot(root: RootOption = Path("."), params_file: ParamsOption = None) -> None:
    """Forecast every area for the next weeks with the production model (data/09_snapshot).

    Only a servable production version (``check_servable``) may make it; the
    snapshot folder's hash is recorded in the audit log (signed) and on the
    version (``harmcast.snapshot_sha256``).
    """
    snapshot_step(get_params(params_file, root))


def snapshot_step(params: Params) -> None:
    """Forecast every area for the next weeks with the servable production model."""
    from governance.policy import load_policy, project_policy_path
    from governance.provenance import Governance
    from governance.servable import record_snapshot
    from serving.snapshot import build_snapshot, snapshot_sha256, write_snapshot
    from serving.store import load_forecaster, resolve_approved
    from training.config import tracking_uri

    paths, uri = params.paths, tracking_uri(params)
    with fail_clearly():
        approved = resolve_approved(
            uri, params.tracking.registered_model, cards_root=paths.resolve("model_cards"),
            root=paths.root,
        )  # fmt: skip
        forecaster = load_forecaster(approved, tracking_uri=uri, models_dir=paths.resolve("models"))
        features = _read_frame(paths.resolve("features") / "features.parquet")
        areas = _read_frame(paths.resolve("panel") / "areas.parquet")
        components = _components(params, forecaster, features)
        built = build_snapshot(
            features,
            forecaster,
            areas,
            policy_coverage=load_policy(project_policy_path(paths)).serving.hotspot_coverage,
            model_name=approved.name,
            model_version=approved.version,
            components=components,
        )
        written = write_snapshot(built, paths.resolve("snapshot"))
        _write_briefing_inputs(written, features, forecaster, areas, paths, components)
        digest = snapshot_sha256(paths.resolve("snapshot"))
        record_snapshot(Governance.from_params(params), approved.name, approved.version, digest)
    meta = written.meta
    console.print(
        f"[green]snapshot[/] {approved.name} v{approved.version}: origin week "
        f"{meta.origin_week}, {meta.n_areas} areas x horizons {list(meta.horizons)} -> "
        f"{paths.resolve('snapshot')} (snapshot sha256 {digest[:12]}, recorded in the registry)"
    )


def _components(params, forecaster, features):
    """Return the baseline components the served forecast weighs (``stack.json``), or None."""
    if getattr(forecaster, "stack", None) is None:
        return None
    from serving.briefing.inputs import briefing_origins
    from training.panel import read_panel_layer
    from training.stacking import component_forecasts

    panel, _, adjacency = read_panel_layer(params.paths.resolve("panel"))
    return component_forecasts(
        forecaster.stack, features, panel, adjacency, params, origins=briefing_origins(features)
    )


def _write_briefing_inputs(snapshot, features, forecaster, areas, paths, components) -> None:
    from serving.briefing.inputs import build_briefing_files
    from training.atomic import write_files

    boundaries = paths.resolve("raw") / "reference" / "boundaries.geojson"
    files = build_briefing_files(
        snapshot,
        features,
        forecaster,
        areas,
        paths.resolve("snapshot"),
        boundaries=boundaries,
        components=components,
    )
    write_files(files)


def bento_import(root: RootOption = Path("."), params_file: ParamsOption = None) -> None:
    """Import the servable production model, its card and recorded snapshot into BentoML.

    The store is ``<root>/bentoml`` unless ``BENTOML_HOME`` is set. The snapshot
    must hash to what ``harmcast snapshot`` recorded; the import is recorded too.
    """
    bento_import_step(get_params(params_file, root))


def bento_import_step(params: Params) -> None:
    """Import the servable production model, its card and snapshot into the root's store."""
    from serving.snapshot import snapshot_sha256
    from serving.store import import_to_bentoml, resolve_approved, write_model_tag
    from training.config import tracking_uri

    paths, uri = params.paths, tracking_uri(params)
    store = bentoml_home(paths.root)
    with fail_clearly():
        approved = resolve_approved(
            uri, params.tracking.registered_model, cards_root=paths.resolve("model_cards"),
            root=paths.root, snapshot_dir=paths.resolve("snapshot"),
        )  # fmt: skip
        folder = paths.resolve("snapshot")
        digest = snapshot_sha256(folder)
        with _bentoml_home(store):
            tag = import_to_bentoml(
                approved,
                approved.card_dir,
                folder,
                tracking_uri=uri,
                models_dir=paths.resolve("models"),
                snapshot_digest=digest,
                store=store,
            )
        details = {
            "path": str(folder), "bento_tag": tag, "store": str(store),
            "snapshot_sha256": digest,
        }  # fmt: skip
        _record_import(params, approved, details)
    written = write_model_tag(tag)
    console.print(f"[green]imported[/] {tag} into {store} (pinned in {written})")


def serve(
    root: RootOption = Path("."),
    params_file: ParamsOption = None,
    model: Annotated[
        str | None, typer.Option("--model", help="BentoML tag (default: serving/model_tag.txt).")
    ] = None,
    host: HostOption = None,
    port: PortOption = None,
) -> None:
    """Run the BentoML service (checks the snapshot and the registry at start).

    The service reads the same params file as this command (its ``serving:``
    section: token variable names, ``public_cards``) and the same BentoML
    store as ``harmcast bento import``.
    """
    serve_step(get_params(params_file, root), params_file=params_file, model=model, host=host,
               port=port)  # fmt: skip


def serve_step(
    params: Params,
    *,
    params_file: Path | None = None,
    model: str | None = None,
    host: str | None = None,
    port: int | None = None,
) -> None:
    """Run ``bentoml serve`` on the root's store and params until it stops."""
    from training.config import tracking_uri

    root = params.paths.root
    env = {
        **os.environ,
        TRACKING_URI_ENV: tracking_uri(params),
        "HARMCAST_ROOT": str(params.paths.root.resolve()),
        BENTOML_HOME_ENV: str(bentoml_home(params.paths.root)),
    }
    if model:
        env["HARMCAST_BENTO_MODEL"] = model
    resolved = params_path(params_file, root)
    if resolved is not None:
        env[PARAMS_ENV] = str(resolved)
    else:
        env.pop(PARAMS_ENV, None)
    host, port = host or params.serving.host, port or params.serving.port
    project = Path(__file__).resolve().parents[2]
    command = [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        "serving.service:HarmcastForecast",
        "--host",
        host,
        "--port",
        str(port),
        "--working-dir",
        str(project),
    ]
    url = f"http://{host}:{port}"
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
