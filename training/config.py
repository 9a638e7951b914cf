"""The one typed configuration of harmcast, loaded from ``params.yaml``.

Each pipeline step receives only its own sub-model (``SynthParams``,
``FeatureParams``...). Importing this module has no side effects: paths are
resolved relative to a root chosen by the caller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from training.errors import ConfigError

__all__ = [
    "Params",
    "SynthParams",
    "SourceParams",
    "LinkParams",
    "FeatureParams",
    "ModelParams",
    "BacktestParams",
    "BaselineParams",
    "TrackingParams",
    "ServingParams",
    "DaskParams",
    "Paths",
    "load_params",
    "tracking_uri",
    "artifact_location",
    "MIN_WORKER_MEMORY",
    "MSG_MEMORY_TOO_LOW",
    "MSG_MEMORY_NOT_A_SIZE",
]

#: The smallest ``dask.memory_limit`` per worker (bytes): 1 GiB.
MIN_WORKER_MEMORY = 2**30
MSG_MEMORY_TOO_LOW = (
    "dask.memory_limit {value!r} is below the minimum of 1GiB per worker "
    "(a worker with less restarts in a loop): use 'auto' or at least '1GiB'"
)
MSG_MEMORY_NOT_A_SIZE = "dask.memory_limit {value!r}: expected 'auto' or a size such as '4GiB'"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SynthParams(_Strict):
    """Size and seed of the synthetic city (see docs/synthetic-city.md)."""

    preset: Literal["tiny", "default", "london", "national"] = "default"
    seed: int = 20240601
    n_areas: int | None = Field(None, description="Overrides the preset's area count.")
    n_weeks: int | None = Field(None, description="Overrides the preset's week count.")
    start: str = "2022-01-03"  # a Monday
    recording_bias: float = Field(
        0.0,
        ge=-0.9,
        le=2.0,
        description=(
            "Relative change of police recording in one audit group: 0.4 records 40% "
            "more, -0.4 records 40% less (0 = none)."
        ),
    )
    recording_bias_group: str = Field(
        "majority global majority",
        description="audit_ethnic_band value whose violence police record differently.",
    )
    patrol_operations: int = Field(
        0, ge=0, description="Patrol operations sent to hotspots (the feedback loop; 0 = none)."
    )
    patrol_weeks: int = Field(16, ge=1, description="How long each patrol operation lasts.")
    patrol_recording_uplift: float = Field(
        0.5,
        ge=0.0,
        le=2.0,
        description="Relative rise of police recording in a patrolled area.",
    )


class SourceParams(_Strict):
    """What each agency's records mean for the target."""

    violent_crime_types: tuple[str, ...] = (
        "Violence and sexual offences",
        "Robbery",
        "Possession of weapons",
    )
    ambulance_assault_categories: tuple[str, ...] = (
        "assault",
        "stab/gunshot",
        "sexual assault",
    )
    month_first: tuple[Literal["police", "istv", "ambulance", "council"], ...] = Field(
        (),
        description=(
            "Sources whose slashed or dashed dates are month-first (MM/DD/YYYY); "
            "the others are read day-first. ISO dates are ISO everywhere."
        ),
    )


class LinkParams(_Strict):
    """How records without an area code are matched to an area."""

    fuzzy_min_score: float = Field(88.0, ge=0, le=100)
    nearest_max_km: float = Field(
        1.5, gt=0, description="Reach of an area without a known area_km2 (no boundaries)."
    )
    reach_factor: float = Field(
        1.5, gt=0, description="An area reaches this many times the radius of its area_km2."
    )
    reach_min_km: float = Field(0.5, gt=0, description="The least reach of any area.")


class FeatureParams(_Strict):
    """Lags and rolling windows, in weeks."""

    lags: tuple[int, ...] = (1, 2)
    windows: tuple[int, ...] = (4, 13, 52)
    ewm_half_lives: tuple[int, ...] = Field(
        (3, 8), description="Half-lives (weeks) of exponentially weighted means."
    )
    horizons: tuple[int, ...] = (1, 2, 3, 4)
    min_history_weeks: int = 13
    council_lags: tuple[int, ...] = Field(
        (3, 4, 5, 6, 7, 8),
        description="Lags (weeks, lag 1 = the origin week) of evictions and exclusions "
        "in the council_lead group; 3 or more.",
    )
    council_baseline_weeks: int = Field(
        52, ge=1, description="Weeks before the council lags that make an area's own baseline."
    )
    council_ratio_prior: float = Field(
        0.5, gt=0, description="Added to both means of the council jump ratio (a small prior)."
    )
    near_repeat_days: tuple[int, ...] = Field(
        (7, 14),
        description="Windows (days, ending the origin week's Sunday) of near-repeat counts.",
    )
    near_repeat_cap_days: int = Field(
        365, ge=1, description="Days since the last violent record are capped at this."
    )

    @field_validator("council_lags")
    @classmethod
    def _council_lags_lead(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(lag < 3 for lag in value):
            raise ValueError("features.council_lags: every lag must be 3 or more (lead time)")
        return tuple(sorted(set(value)))


class ModelParams(_Strict):
    """LightGBM settings (Poisson objective) and the prediction interval."""

    num_boost_round: int = 150
    learning_rate: float = 0.1
    num_leaves: int = Field(31, description="Leaves per tree (per horizon with split_by_horizon).")
    min_data_in_leaf: int = 100
    feature_fraction: float = 0.5
    bagging_fraction: float = 0.5
    bagging_freq: int = 1
    lambda_l2: float = 1.0
    num_threads: int = Field(2, description="LightGBM (OpenMP) threads per booster.")
    seed: int = 7
    interval: tuple[float, float] = (0.1, 0.9)
    max_train_rows: int | None = Field(
        None, description="Rows sampled (seeded) to train one booster; None: all."
    )
    max_bin: int = Field(63, description="Histogram bins per feature (fewer is faster).")
    split_by_horizon: bool = Field(
        True, description="Force each tree to split on horizon first (one sub-model per horizon)."
    )


class BacktestParams(_Strict):
    """Rolling-origin backtest."""

    weeks: int = 26
    retrain_every: int = 4
    coverages: tuple[float, ...] = (0.01, 0.05, 0.10, 0.20)
    n_boot: int = 1000
    seed: int = 11
    n_jobs: int = Field(
        2,
        ge=1,
        description="Boosters fitted side by side in worker processes, each with "
        "model.num_threads // n_jobs threads (1: one after another, in this process).",
    )
    ablation_rounds: int | None = Field(
        150, description="Boosting rounds of the ablation models (None: as the model)."
    )
    ablation_horizons: tuple[int, ...] | None = Field(
        (1,), description="Horizons the ablations are scored on (None: all)."
    )
    stack_warmup_weeks: int = Field(
        8,
        ge=0,
        description="Target weeks before the first refit forecast only to train the stacker "
        "(training/backtest/stacked.py); never scored.",
    )
    ablation_groups: tuple[
        Literal["council_lead", "council_neighbours", "near_repeat", "night_time_economy"], ...
    ] = Field(
        ("council_lead", "council_neighbours", "near_repeat", "night_time_economy"),
        description="Feature groups each refitted without (ablation_no_<group>); "
        "each costs one ablation fit per fold.",
    )


class BaselineParams(_Strict):
    """The analysts' baselines the model is compared with (training/baselines/predict.py)."""

    hotspot_half_life_weeks: float = Field(4.0, gt=0)
    hotspot_neighbour_weight: float = Field(0.5, ge=0)
    hawkes_max_iter: int = Field(300, ge=1)
    hawkes_tol: float = Field(1e-6, gt=0)
    hawkes_season_period: int | None = Field(None, ge=2)
    glm_alpha: float = Field(1e-4, ge=0)
    glm_max_iter: int = Field(300, ge=1)
    refit_every: int = Field(4, ge=1)
    threads: int = Field(2, ge=1)  # GLM refits side by side, one BLAS thread each
    interval: tuple[float, float] = (0.1, 0.9)
    mu_floor: float = Field(1e-6, gt=0)


class TrackingParams(_Strict):
    """Where MLflow tracks runs and registers models (embedded sqlite default)."""

    store: Path = Path("mlruns")  # relative to paths.root unless absolute
    experiment: str = "harmcast"
    registered_model: str = "harmcast-violence"


class ServingParams(_Strict):
    """The BentoML service."""

    host: str = "127.0.0.1"
    port: int = 3000
    planner_token_env: str = "HARMCAST_PLANNER_TOKENS"
    board_token_env: str = "HARMCAST_BOARD_TOKENS"
    metrics_token_env: str = Field(
        "HARMCAST_METRICS_TOKENS", description="Tokens of the operator role, who may read /metrics."
    )
    public_cards: bool = True


class DaskParams(_Strict):
    """Running linking, panel, features and training on a Dask cluster (docs/scale.md)."""

    enabled: bool = Field(
        False, description="Take the Dask path where a caller offers both (scale run always does)."
    )
    scheduler_address: str | None = Field(
        None, description="A running scheduler (tcp://host:8786); None starts a LocalCluster."
    )
    n_workers: int | None = Field(
        None,
        ge=1,
        description="Workers of the LocalCluster; None: as many as fit this machine, "
        "n_workers x threads_per_worker <= os.cpu_count() (at least one worker).",
    )
    threads_per_worker: int = Field(
        2,
        ge=2,
        description="Threads per LocalCluster worker (lightgbm.dask needs two or more; "
        "a one-core machine still gets one worker of two).",
    )
    processes: bool = Field(True, description="LocalCluster workers as processes (not threads).")
    partition_areas: int = Field(
        2000, ge=1, description="Areas per partition of the panel and features."
    )
    partition_rows: int = Field(
        500_000, ge=1, description="Raw records per partition while linking."
    )
    memory_limit: str = Field(
        "auto",
        description="Memory limit per LocalCluster worker: 'auto' (the machine's memory "
        "shared by the workers) or a size of at least 1GiB, such as '4GiB'.",
    )
    dashboard_address: str = Field(
        ":0", description="LocalCluster HTTP address (':0': a free port; ':8787' is the usual)."
    )
    connect_timeout_s: float = Field(
        10.0, gt=0, description="Seconds to wait for the scheduler at scheduler_address."
    )

    @field_validator("memory_limit")
    @classmethod
    def _memory_floor(cls, value: str) -> str:
        # a worker below the floor is killed and restarted by its nanny, over and over
        if value == "auto":
            return value
        from dask.utils import parse_bytes

        try:
            size = parse_bytes(value)
        except ValueError as exc:
            raise ValueError(MSG_MEMORY_NOT_A_SIZE.format(value=value)) from exc
        if size < MIN_WORKER_MEMORY:
            raise ValueError(MSG_MEMORY_TOO_LOW.format(value=value))
        return value


class Paths(_Strict):
    """The numbered data layers, relative to the project root."""

    root: Path = Path(".")
    raw: Path = Path("data/01_raw")
    linked: Path = Path("data/02_linked")
    panel: Path = Path("data/03_panel")
    features: Path = Path("data/04_features")
    models: Path = Path("data/05_models")
    backtest: Path = Path("data/06_backtest")
    audit: Path = Path("data/07_audit")
    reporting: Path = Path("data/08_reporting")
    snapshot: Path = Path("data/09_snapshot")
    model_cards: Path = Path("model_cards")
    policy: Path = Path("governance/policy.yaml")

    def resolve(self, name: str) -> Path:
        """Return the absolute path of layer ``name`` under ``root``."""
        return (self.root / getattr(self, name)).resolve()


def tracking_uri(params: Params) -> str:
    """Return the sqlite tracking/registry URI under the project root."""
    store = params.paths.root / params.tracking.store
    return f"sqlite:///{(store / 'mlflow.db').resolve()}"


def artifact_location(params: Params) -> str:
    """Return the folder MLflow stores run artifacts in."""
    return str((params.paths.root / params.tracking.store / "artifacts").resolve())


class Params(_Strict):
    """Everything ``params.yaml`` may set."""

    synth: SynthParams = SynthParams()
    sources: SourceParams = SourceParams()
    link: LinkParams = LinkParams()
    features: FeatureParams = FeatureParams()
    model: ModelParams = ModelParams()
    backtest: BacktestParams = BacktestParams()
    baselines: BaselineParams = BaselineParams()
    tracking: TrackingParams = TrackingParams()
    serving: ServingParams = ServingParams()
    dask: DaskParams = DaskParams()
    paths: Paths = Paths()


def load_params(path: str | Path | None = None, *, root: str | Path | None = None) -> Params:
    """Load ``params.yaml`` (or defaults when ``path`` is None).

    Parameters
    ----------
    path : the YAML file; missing keys take their defaults.
    root : overrides ``paths.root`` (the folder the data layers live under).

    Raises
    ------
    ConfigError
        When the file is missing, is not YAML, or sets an unknown or invalid key.
    """
    raw: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: params file not found")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        params = Params.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path or 'params'}: {exc}") from exc
    if root is not None:
        params = params.model_copy(
            update={"paths": params.paths.model_copy(update={"root": Path(root)})}
        )
    return params
