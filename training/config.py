"""The one typed configuration of harmcast, loaded from ``params.yaml``.

Each pipeline step receives only its own sub-model (``SynthParams``,
``FeatureParams``...). Importing this module has no side effects: paths are
resolved relative to a root chosen by the caller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from training.errors import ConfigError

__all__ = [
    "Params",
    "SynthParams",
    "SourceParams",
    "LinkParams",
    "FeatureParams",
    "ModelParams",
    "BacktestParams",
    "TrackingParams",
    "ServingParams",
    "Paths",
    "load_params",
    "tracking_uri",
    "artifact_location",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SynthParams(_Strict):
    """Size and seed of the synthetic city (see docs/synthetic-city.md)."""

    preset: Literal["tiny", "default", "london", "national"] = "default"
    seed: int = 20240601
    n_areas: int | None = Field(None, description="Overrides the preset's area count.")
    n_weeks: int | None = Field(None, description="Overrides the preset's week count.")
    start: str = "2022-01-03"  # a Monday


class SourceParams(_Strict):
    """What each agency's records mean for the target."""

    violent_crime_types: tuple[str, ...] = (
        "Violence and sexual offences",
        "Robbery",
        "Possession of weapons",
    )


class LinkParams(_Strict):
    """How records without an area code are matched to an area."""

    fuzzy_min_score: float = Field(88.0, ge=0, le=100)
    nearest_max_km: float = Field(1.5, gt=0)


class FeatureParams(_Strict):
    """Lags and rolling windows, in weeks."""

    lags: tuple[int, ...] = (1, 2, 3, 4)
    windows: tuple[int, ...] = (4, 13, 52)
    horizons: tuple[int, ...] = (1, 2, 3, 4)
    min_history_weeks: int = 13


class ModelParams(_Strict):
    """LightGBM settings (Poisson objective) and the prediction interval."""

    num_boost_round: int = 300
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_data_in_leaf: int = 50
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l2: float = 1.0
    num_threads: int = 2
    seed: int = 7
    interval: tuple[float, float] = (0.1, 0.9)


class BacktestParams(_Strict):
    """Rolling-origin backtest."""

    weeks: int = 26
    retrain_every: int = 4
    coverages: tuple[float, ...] = (0.01, 0.05, 0.10, 0.20)
    n_boot: int = 1000
    seed: int = 11


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
    public_cards: bool = True


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


def tracking_uri(params: "Params") -> str:
    """Return the sqlite tracking/registry URI under the project root."""
    store = params.paths.root / params.tracking.store
    return f"sqlite:///{(store / 'mlflow.db').resolve()}"


def artifact_location(params: "Params") -> str:
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
    tracking: TrackingParams = TrackingParams()
    serving: ServingParams = ServingParams()
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
