"""harmcast commands: modelling (``features``, ``backtest``, ``train``).

``harmcast backtest`` scores the model against the baselines and opens the
MLflow run; ``harmcast train`` fits the final model on every observed week and
logs it into that same run (its id is in ``data/06_backtest/results.json``), or
into a new run when no backtest was made. With ``dask.enabled``, ``features`` and
``train`` run on Dask (``training.scale``); the backtest always runs on pandas.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from harmcast.commands._common import (
    ParamsOption,
    RootOption,
    console,
    fail_clearly,
    get_params,
)
from training.config import Params

MISSING_LAYER = "{path}: not found; run `harmcast {step}` first"


def _require(path: Path, step: str) -> Path:
    from training.errors import SchemaError

    if not path.exists():
        raise SchemaError(path, MISSING_LAYER.format(path=path, step=step))
    return path


def _read_features(params):
    import pandas as pd

    path = _require(params.paths.resolve("features") / "features.parquet", "features")
    return pd.read_parquet(path)


def features(root: RootOption = Path("."), params_file: ParamsOption = None) -> None:
    """Build the features from data/03_panel/ and data/02_linked/ into data/04_features/."""
    features_step(get_params(params_file, root))


def features_step(params: Params) -> None:
    """Build the forecast features from data/03_panel/ (and data/02_linked/) into data/04_features/.

    The near-repeat features come from the linked records (day-grain violent
    records); without ``data/02_linked/records.parquet`` they are left out.
    """
    from training.features import build_features, feature_columns
    from training.near_repeat import read_daily_events
    from training.panel import COVERAGE_FILE, read_panel_layer

    with fail_clearly():
        panel_dir = _require(params.paths.resolve("panel") / "panel.parquet", "panel").parent
        start = time.perf_counter()
        out = params.paths.resolve("features")
        if params.dask.enabled:
            from training.scale import features_on_dask

            step = features_on_dask(params)
            n_rows, n_columns, engine = (
                step.summary["rows"],
                len(step.summary["columns"]),
                step.engine,
            )
        else:
            daily = read_daily_events(params.paths.resolve("linked"), panel_dir / COVERAGE_FILE)
            frame = build_features(*read_panel_layer(panel_dir), params.features, daily)
            out.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(out / "features.parquet", index=False)
            n_rows, n_columns, engine = len(frame), len(feature_columns(frame)), "pandas"
    console.print(
        f"{n_rows:,} rows x {n_columns} features in {time.perf_counter() - start:.1f}s "
        f"(engine: {engine}) -> {out / 'features.parquet'}"
    )


def backtest(root: RootOption = Path("."), params_file: ParamsOption = None) -> None:
    """Backtest the model against the baselines; write data/06_backtest/ and log to MLflow."""
    backtest_step(get_params(params_file, root))


def backtest_step(params: Params) -> None:
    """Backtest the model against the baselines; write data/06_backtest/ and log to MLflow."""
    import pandas as pd

    from harmcast.commands._progress import step_progress
    from training.backtest.run import run_backtest, write_backtest
    from training.config import tracking_uri
    from training.panel import read_panel_layer
    from training.tracking import (
        INPUTS_KEY,
        RUN_ID_KEY,
        candidate_inputs,
        log_backtest,
        sha256_file,
    )

    with fail_clearly():
        frame = _read_features(params)
        panel_dir = params.paths.resolve("panel")
        panel, areas, adjacency = read_panel_layer(_require(panel_dir, "panel"))
        oracle_path = params.paths.resolve("raw") / "oracle" / "expected_counts.parquet"
        oracle = pd.read_parquet(oracle_path) if oracle_path.is_file() else None
        start = time.perf_counter()
        with step_progress(console) as progress:
            result = run_backtest(frame, panel, areas, adjacency, oracle, params,
                                  progress=progress)  # fmt: skip
        out = params.paths.resolve("backtest")
        write_backtest(result, out)
        inputs = candidate_inputs(params, params.paths.resolve("features") / "features.parquet")
        inputs["predictions_sha256"] = sha256_file(out / "predictions.parquet")
        _add_to_summary(out / "results.json", INPUTS_KEY, inputs)
        run_id = log_backtest(
            params,
            result.summary,
            out,
            data_file=panel_dir / "panel.parquet",
            linkage_report=params.paths.resolve("linked") / "linkage_report.json",
        )
        _add_to_summary(out / "results.json", RUN_ID_KEY, run_id)
    _print_table(result.table, result.margins, result.summary)
    console.print(f"backtest took {time.perf_counter() - start:.0f}s; results in {out}")
    if params.dask.enabled:
        console.print("engine: pandas (the backtest has no Dask implementation)")
    console.print(f"MLflow run {run_id} at {tracking_uri(params)}")


def _add_to_summary(results_file: Path, key: str, value) -> None:
    results = json.loads(results_file.read_text())
    results["summary"][key] = value
    results_file.write_text(json.dumps(results, indent=2))


def train(root: RootOption = Path("."), params_file: ParamsOption = None) -> None:
    """Fit the final model on every observed week into data/05_models/ and log it to MLflow."""
    train_step(get_params(params_file, root))


def train_step(params: Params) -> None:
    """Fit the final model on every observed week into data/05_models/ and log it to MLflow."""
    from harmcast.commands._progress import step_progress
    from training.config import tracking_uri
    from training.features import feature_columns
    from training.model import fit_forecaster
    from training.tracking import INPUTS_KEY, RUN_ID_KEY, candidate_inputs, log_final_model

    with fail_clearly():
        start = time.perf_counter()
        if params.dask.enabled:
            from training.scale import train_on_dask

            _require(params.paths.resolve("features") / "features.parquet", "features")
            step = train_on_dask(params)
            forecaster, latest, engine = step.forecaster, step.latest, step.engine
        else:
            frame = _read_features(params)
            with step_progress(console, every=25) as progress:
                task = progress.add_task("train", total=params.model.num_boost_round)

                def on_round(done: int, total: int) -> None:
                    progress.update(task, advance=1, description=f"train: round {done} of {total}")

                forecaster = fit_forecaster(
                    frame, feature_columns(frame), params.model, on_round=on_round
                )
            latest = frame.loc[frame["origin_week"] == frame["origin_week"].max()]
            engine = "pandas"
        models = params.paths.resolve("models")
        forecaster.save(models)
        stack = _write_served_stack(params, models)
        inputs = candidate_inputs(params, params.paths.resolve("features") / "features.parquet")
        meta_file = models / "model_meta.json"
        meta_file.write_text(
            json.dumps({**json.loads(meta_file.read_text()), INPUTS_KEY: inputs}, indent=2)
        )
        results = params.paths.resolve("backtest") / "results.json"
        run_id = None
        if results.is_file():
            run_id = json.loads(results.read_text())["summary"].get(RUN_ID_KEY)
        meta = log_final_model(
            forecaster,
            params,
            latest,
            models,
            run_id=run_id,
            data_file=params.paths.resolve("panel") / "panel.parquet",
        )
    console.print(
        f"trained {forecaster.booster.num_trees()} trees on {len(forecaster.feature_names)} "
        f"features in {time.perf_counter() - start:.0f}s (NB dispersion "
        f"{forecaster.dispersion:.3f}; engine: {engine}) -> {models}"
    )
    if stack is not None:
        console.print(f"served: {stack.served_method} ({stack.reason})")
    console.print(
        f"MLflow run {meta['run_id']}, model {meta['model_uri']} at {tracking_uri(params)}"
    )


def _write_served_stack(params, models: Path):
    """Write ``stack.json`` from the backtest's out-of-sample forecasts (or remove a stale one)."""
    import pandas as pd

    from training.backtest.run import STACK_FORECASTS
    from training.stacking import final_stack, write_stack

    backtest = params.paths.resolve("backtest")
    if not (backtest / STACK_FORECASTS).is_file() or not (backtest / "results.json").is_file():
        write_stack(None, models)
        return None
    margins = pd.DataFrame(json.loads((backtest / "results.json").read_text())["margins"])
    stack = final_stack(pd.read_parquet(backtest / STACK_FORECASTS), margins)
    write_stack(stack, models)
    return stack


def _print_table(table, margins, summary) -> None:
    from rich.table import Table

    h1 = table.loc[table["horizon"] == 1].sort_values("poisson_deviance")
    view = Table(title="Backtest, horizon 1 (lower deviance, higher PAI are better)")
    columns = ["poisson_deviance", "mae", "pai_area_5", "pai_area_10", "interval_coverage"]
    view.add_column("method")
    for column in columns:
        view.add_column(column, justify="right")
    for _, row in h1.iterrows():
        style = "bold green" if row["method"] == "model" else None
        view.add_row(str(row["method"]), *(f"{row[c]:.4f}" for c in columns), style=style)
    console.print(view)
    gaps = Table(title="Method minus comparator, 95% bootstrap CI (horizon 1 and all)")
    for column in ("method", "metric", "horizon", "comparator", "difference", "95% CI", "better"):
        gaps.add_column(column)
    for _, row in margins.loc[margins["horizon"].isin([1, "all"])].iterrows():
        gaps.add_row(row["method"], row["metric"], str(row["horizon"]), row["comparator"],
                     f"{row['difference']:+.4f}", f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]",
                     str(row["model_better"]))  # fmt: skip
    console.print(gaps)
    accepted = summary["acceptance"]["all"]
    colour = "green" if accepted else "red"
    console.print(f"[{colour}]model beats every baseline with CIs excluding zero: {accepted}[/]")


def register(app: typer.Typer) -> None:
    """Add this module's commands to app."""
    app.command("features")(features)
    app.command("backtest")(backtest)
    app.command("train")(train)
