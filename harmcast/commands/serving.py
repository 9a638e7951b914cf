"""harmcast commands: serving (snapshot, BentoML import, serve).

The BentoML store is the project's own, ``<root>/bentoml``, unless
``BENTOML_HOME`` is set: these commands set it before BentoML first reads it.
"""

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


BENTOML_HOME_ENV = "BENTOML_HOME"
BENTOML_DIR = "bentoml"
PARAMS_ENV = "HARMCAST_PARAMS"
TRACKING_URI_ENV = "HARMCAST_TRACKING_URI"


def bentoml_home(root: Path) -> Path:
    """Return the BentoML store these commands use: ``$BENTOML_HOME`` or ``<root>/bentoml``."""
    home = os.environ.get(BENTOML_HOME_ENV, "").strip()
    return Path(home) if home else (root / BENTOML_DIR).resolve()


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


def _record(params, approved, digest: str, action: str, details: dict) -> None:
    from governance.auditlog import default_log_path
    from governance.snapshots import record_snapshot
    from training.config import tracking_uri

    record_snapshot(
        tracking_uri(params),
        default_log_path(params.paths.root),
        name=approved.name,
        version=approved.version,
        snapshot_sha256=digest,
        action=action,
        details=details,
    )


def snapshot(root: RootOption = Path("."), params_file: ParamsOption = None) -> None:
    """Forecast every area for the next weeks with the production model (data/09_snapshot).

    The snapshot folder's hash is recorded on the registry version
    (``harmcast.snapshot_sha256``) and in the audit log.
    """
    from governance.policy import load_policy, project_policy_path
    from governance.snapshots import ACTION_SNAPSHOT
    from serving.snapshot import build_snapshot, snapshot_sha256, write_snapshot
    from serving.store import load_forecaster, resolve_approved
    from training.config import tracking_uri

    params = get_params(params_file, root)
    paths, uri = params.paths, tracking_uri(params)
    with fail_clearly():
        approved = resolve_approved(
            uri, params.tracking.registered_model, cards_root=paths.resolve("model_cards")
        )
        forecaster = load_forecaster(approved, tracking_uri=uri, models_dir=paths.resolve("models"))
        built = build_snapshot(
            _read_frame(paths.resolve("features") / "features.parquet"),
            forecaster,
            _read_frame(paths.resolve("panel") / "areas.parquet"),
            policy_coverage=load_policy(project_policy_path(paths)).serving.hotspot_coverage,
            model_name=approved.name,
            model_version=approved.version,
        )
        written = write_snapshot(built, paths.resolve("snapshot"))
        digest = snapshot_sha256(paths.resolve("snapshot"))
        folder = str(paths.resolve("snapshot"))
        _record(params, approved, digest, ACTION_SNAPSHOT, {"path": folder})
    meta = written.meta
    console.print(
        f"[green]snapshot[/] {approved.name} v{approved.version}: origin week "
        f"{meta.origin_week}, {meta.n_areas} areas x horizons {list(meta.horizons)} -> "
        f"{paths.resolve('snapshot')} (snapshot sha256 {digest[:12]}, recorded in the registry)"
    )


def bento_import(root: RootOption = Path("."), params_file: ParamsOption = None) -> None:
    """Import the approved production model, card and snapshot into the BentoML store.

    The store is ``<root>/bentoml`` unless ``BENTOML_HOME`` is set. The snapshot
    must hash to what ``harmcast snapshot`` recorded; the import is recorded too.
    """
    params = get_params(params_file, root)
    # before BentoML is imported: it reads BENTOML_HOME once, on first use of its store
    os.environ[BENTOML_HOME_ENV] = str(bentoml_home(params.paths.root))
    from governance.snapshots import ACTION_BENTO_IMPORT, check_recorded
    from serving.snapshot import snapshot_sha256
    from serving.store import import_to_bentoml, resolve_approved, write_model_tag
    from training.config import tracking_uri

    paths, uri = params.paths, tracking_uri(params)
    with fail_clearly():
        approved = resolve_approved(
            uri, params.tracking.registered_model, cards_root=paths.resolve("model_cards")
        )
        folder = paths.resolve("snapshot")
        digest = snapshot_sha256(folder)
        name, version = approved.name, approved.version
        check_recorded(uri, name=name, version=version, path=folder, actual=digest)
        tag = import_to_bentoml(
            approved,
            approved.card_dir,
            folder,
            tracking_uri=uri,
            models_dir=paths.resolve("models"),
            snapshot_digest=digest,
        )
        details = {"path": str(folder), "bento_tag": tag, "store": os.environ[BENTOML_HOME_ENV]}
        _record(params, approved, digest, ACTION_BENTO_IMPORT, details)
    written = write_model_tag(tag)
    console.print(
        f"[green]imported[/] {tag} into {os.environ[BENTOML_HOME_ENV]} (pinned in {written})"
    )


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
    from training.config import tracking_uri

    params = get_params(params_file, root)
    env = {
        **os.environ,
        TRACKING_URI_ENV: tracking_uri(params),
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
    console.print(f"serving on http://{host}:{port}")
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
