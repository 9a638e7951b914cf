"""The fairlearn ``MetricFrame`` computations behind :mod:`governance.fairness`.

Every fairness metric is a ratio of sums over area-weeks, so per-area sums are
sufficient statistics: the ``MetricFrame`` rows are areas (each carrying the
sums of its area-weeks) and a metric over any set of areas equals the same
metric over their area-weeks. Bootstrapping those rows resamples whole areas,
a cluster bootstrap that keeps an area's weeks together; resampling area-weeks
would treat correlated weeks as independent and give intervals too narrow.
It also keeps fairlearn's per-call cost (it stacks every column per metric and
group) proportional to the number of areas, not area-weeks.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame

__all__ = [
    "ADJUSTED_METRICS",
    "METRIC_FUNCTIONS",
    "PARITY_METRICS",
    "RATIO_CAP",
    "area_sums",
    "bootstrap_interval",
    "group_table",
    "ratio_table",
]


def _fpr_excess(s: dict, t: dict) -> np.ndarray:
    # Observed FPR over the FPR the model's own P(no incident) implies. A group
    # never flagged (or without a quiet week) has neither observed nor expected
    # false alarms: no evidence either way, so it counts as "as expected" (1).
    observed = s["fa"] / s["neg"]
    expected = s["p0_flag"] / s["p0"]
    return np.where((s["flag"] > 0) & (s["neg"] > 0), observed / expected, 1.0)


def _fdr_excess(s: dict, t: dict) -> np.ndarray:
    # Observed FDR (fa / flag) over the mean p0 of the flagged (p0_flag / flag).
    return np.where(s["flag"] > 0, s["fa"] / s["p0_flag"], 1.0)


# Each metric from per-group sums ``s`` and all-group totals ``t``.
METRIC_FUNCTIONS: dict[str, Callable[[dict, dict], np.ndarray]] = {
    "calibration_ratio": lambda s, t: s["mu"] / s["y"],
    "calibration_ratio_ae": lambda s, t: s["mu_ae"] / s["y_ae"],
    "selection_vs_harm": lambda s, t: (s["flag"] / t["flag"]) / (s["y"] / t["y"]),
    "fpr_top_k": lambda s, t: s["fa"] / s["neg"],
    "fdr_top_k": lambda s, t: s["fa"] / s["flag"],
    "fpr_top_k_adjusted": _fpr_excess,
    "fdr_top_k_adjusted": _fdr_excess,
    "false_alarm_share": lambda s, t: (s["fa"] / t["fa"]) / (s["n"] / t["n"]),
    "miss_share": lambda s, t: (s["miss_y"] / t["miss_y"]) / (s["y"] / t["y"]),
    "poisson_deviance": lambda s, t: s["dev"] / s["n"],
}

# Risk-adjusted false-alarm metrics: judged only where false alarms are expected.
ADJUSTED_METRICS = frozenset({"fpr_top_k_adjusted", "fdr_top_k_adjusted"})

# Metrics read against 1 (parity with harm), not against a reference group.
PARITY_METRICS = frozenset({"selection_vs_harm"})

# Floor of P(no incident): keeps the expected false alarms of near-certain
# incidents positive so an observed false alarm there is a large, finite excess.
P0_FLOOR = 1e-12

# A ratio whose reference is 0 (and numerator is not) is reported as this
# value: bootstrap quantiles cannot take infinities.
RATIO_CAP = 1e6


def area_sums(rows: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Sum each area's area-week statistics; return them and the A&E scale.

    ``rows`` needs ``area_code, mu, y, y_ae, flag`` with ``y`` observed, and may
    carry ``p_any``: the model's P(y >= 1). Its complement ``p0`` is the
    model's P(no incident); where ``p_any`` is absent it is the Poisson
    ``exp(-mu)``. The A&E scale is ``sum y_ae / sum y`` over rows where ``y_ae``
    is known; with an ``ae_stratum`` column (the area's deprivation decile) the
    forecast is scaled to A&E by the share within its stratum, so a group is not
    judged on the case mix of its deprivation (the returned scale is the
    city-wide one).
    """
    mu = rows["mu"].to_numpy(float)
    y = rows["y"].to_numpy(float)
    has_ae = rows["y_ae"].notna().to_numpy()
    y_ae = np.where(has_ae, rows["y_ae"].to_numpy(float), 0.0)
    known = y[has_ae].sum()
    ae_scale = float(y_ae.sum() / known) if known > 0 else float("nan")
    row_scale = np.full(len(rows), ae_scale)
    if "ae_stratum" in rows:
        # A&E's share of the target within each stratum (deprivation decile).
        stratum = rows["ae_stratum"].to_numpy()
        frame = pd.DataFrame({"s": stratum, "ae": y_ae, "y": np.where(has_ae, y, 0.0)})
        shares = frame.groupby("s")[["ae", "y"]].sum()
        by_stratum = (shares["ae"] / shares["y"].where(shares["y"] > 0)).fillna(ae_scale)
        row_scale = pd.Series(stratum).map(by_stratum).to_numpy(float)
    flag = rows["flag"].to_numpy(bool)
    p0 = np.exp(-mu)
    if "p_any" in rows:
        p_any = rows["p_any"].to_numpy(float)
        p0 = np.where(np.isfinite(p_any), 1.0 - p_any, p0)
    p0 = np.clip(p0, P0_FLOOR, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ylogy = np.where(y > 0, y * np.log(y / np.maximum(mu, 1e-12)), 0.0)
    stats = pd.DataFrame(
        {
            "area_code": rows["area_code"].astype(str).to_numpy(),
            "n": 1.0,
            "mu": mu,
            "y": y,
            "mu_ae": np.where(has_ae, mu * row_scale, 0.0),
            "y_ae": y_ae,
            "flag": flag.astype(float),
            "fa": (flag & (y == 0)).astype(float),
            "neg": (y == 0).astype(float),
            "p0": p0,
            "p0_flag": np.where(flag, p0, 0.0),
            "miss_y": np.where(flag, 0.0, y),
            "dev": 2.0 * (ylogy - (y - mu)),
        }
    )
    return stats.groupby("area_code", sort=True).sum().reset_index(), ae_scale


# Counts behind the top-k and A&E metrics, reported per group.
_COUNT_COLUMNS = {
    "flags": "flag",
    "false_alarms": "fa",
    "expected_false_alarms": "p0_flag",
    "negatives": "neg",
    "expected_negatives": "p0",
    "ae_count": "y_ae",
}


class _Sums:
    """Per-group sums over a (resampled) set of areas, memoised per sample.

    fairlearn calls every metric function on the same bootstrap sample in turn;
    the sample is identified by its area indices so the sums are computed once.
    """

    def __init__(self, sums: pd.DataFrame, codes: np.ndarray, n_groups: int) -> None:
        self.columns = {c: sums[c].to_numpy(float) for c in sums.columns if c != "area_code"}
        self.codes, self.n_groups = codes, n_groups
        self._key: int | None = None
        self._value: dict[str, np.ndarray] = {}

    def by_group(self, index: np.ndarray) -> dict[str, np.ndarray]:
        index = np.asarray(index, dtype=np.int64)
        key = hash(index.tobytes())
        if key != self._key:
            codes = self.codes[index]
            self._value = {
                name: np.bincount(codes, weights=col[index], minlength=self.n_groups)
                for name, col in self.columns.items()
            }
            self._key = key
        return self._value


def _metrics(sums: dict[str, np.ndarray], totals: dict[str, float]) -> dict[str, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return {name: np.asarray(fn(sums, totals), float) for name, fn in METRIC_FUNCTIONS.items()}


def group_table(sums: pd.DataFrame, labels: np.ndarray, grouping: str) -> pd.DataFrame:
    """Each metric per group of ``grouping`` (``MetricFrame.by_group``), with sizes.

    Metrics that compare a group's share with the city's use city totals.
    """
    totals = {c: float(sums[c].sum()) for c in sums.columns if c != "area_code"}
    single = _Sums(sums, np.zeros(len(sums), dtype=np.int64), 1)

    def metric(name: str) -> Callable:
        def fn(y_true: np.ndarray, y_pred: np.ndarray) -> float:
            return float(_metrics(single.by_group(y_true), totals)[name][0])

        return fn

    index = np.arange(len(sums))
    frame = MetricFrame(
        metrics={name: metric(name) for name in METRIC_FUNCTIONS},
        y_true=index,
        y_pred=index,
        sensitive_features=pd.Series(labels, name=grouping),
    )
    table = frame.by_group.reset_index().rename(columns={grouping: "group"})
    table["group"] = table["group"].astype(str)
    counts = sums.drop(columns="area_code").groupby(labels)
    totals_by_group = counts.sum()
    table.insert(0, "grouping", grouping)
    table.insert(2, "n_areas", table["group"].map(counts.size()).astype(int))
    table.insert(3, "n_rows", table["group"].map(totals_by_group["n"]).astype(int))
    for name, column in _COUNT_COLUMNS.items():
        table[name] = table["group"].map(totals_by_group[column]).astype(float)
    table["recording_gap"] = table["calibration_ratio"] - table["calibration_ratio_ae"]
    return table


def bootstrap_interval(
    functions: dict[str, Callable],
    n: int,
    *,
    n_boot: int,
    seed: int,
    quantiles: tuple[float, float],
) -> tuple[pd.Series, pd.Series]:
    """Bootstrap quantiles of each ``function(index, index)`` over resamples of ``n`` rows.

    The resamples are exactly those of ``MetricFrame(n_boot=..., random_state=seed)``
    (one seed per resample drawn from ``default_rng(seed)``, rows drawn as
    ``DataFrame.sample(frac=1, replace=True)`` draws them), so the intervals
    are fairlearn's; what is skipped is fairlearn building a full result frame
    for every resample, which cost most of the audit's time.
    """
    generator = np.random.default_rng(seed=int(seed))
    seeds = generator.integers(0, np.iinfo(np.uint32).max, size=n_boot, dtype=np.uint32)
    samples = np.empty((n_boot, len(functions)))
    for i, resample_seed in enumerate(seeds):
        rows = np.random.RandomState(resample_seed).choice(n, size=n, replace=True)
        samples[i] = [fn(rows, rows) for fn in functions.values()]
    low, high = np.quantile(samples, q=list(quantiles), axis=0)
    names = list(functions)
    return pd.Series(low, index=names), pd.Series(high, index=names)


def ratio_table(
    sums: pd.DataFrame,
    labels: np.ndarray,
    groups: list[str],
    reference: str,
    *,
    metrics: list[str],
    boot_metrics: list[str],
    n_boot: int,
    ci_level: float,
    seed: int,
    city_metrics: frozenset[str] = frozenset(),
) -> pd.DataFrame:
    """Each group's metric over the reference group's, with bootstrap intervals.

    One ``MetricFrame`` whose metrics are the ratios (``metric|group``); its
    ``overall`` is the point ratio and ``overall_ci`` the interval from
    ``n_boot`` resamples of areas (only for ``boot_metrics``). Undefined metrics
    (0/0, e.g. the false-discovery rate of a group never flagged) count as 0,
    two zeros as parity (1), and ``x/0`` as :data:`RATIO_CAP`. Metrics in
    :data:`PARITY_METRICS` are already read against 1: every group (the
    reference too) gets a row whose ``ratio`` is the metric itself and whose
    ``reference`` is ``"parity"``. Metrics in ``city_metrics`` are compared
    with their value over all areas pooled (``reference`` ``"city"``), every
    group included.
    """
    codes = pd.Categorical(labels, categories=groups).codes.astype(np.int64)
    cache = _Sums(sums, codes, len(groups))
    ref = groups.index(reference)

    def ratio(name: str, g: int) -> Callable:
        def fn(y_true: np.ndarray, y_pred: np.ndarray) -> float:
            by_group = cache.by_group(y_true)
            totals = {k: float(v.sum()) for k, v in by_group.items()}
            values = np.nan_to_num(_metrics(by_group, totals)[name], nan=0.0)
            num, den = values[g], values[ref]
            if name in PARITY_METRICS:
                den = 1.0
            elif name in city_metrics:
                pooled = {k: np.array([v]) for k, v in totals.items()}
                den = float(np.nan_to_num(_metrics(pooled, totals)[name], nan=0.0)[0])
            if den == 0:
                return 1.0 if num == 0 else RATIO_CAP
            return float(min(num / den, RATIO_CAP))

        return fn

    pairs = {
        f"{m}|{g}": (m, gi)
        for m in metrics
        for gi, g in enumerate(groups)
        if gi != ref or m in PARITY_METRICS or m in city_metrics
    }
    index = np.arange(len(sums))
    alpha = (1 - ci_level) / 2
    frames = []
    for subset in (
        [k for k, (m, _) in pairs.items() if m in boot_metrics],
        [k for k, (m, _) in pairs.items() if m not in boot_metrics],
    ):
        if not subset:
            continue
        boot = subset[0].split("|")[0] in boot_metrics and n_boot > 0
        functions = {k: ratio(*pairs[k]) for k in subset}
        frame = MetricFrame(
            metrics=functions,
            y_true=index,
            y_pred=index,
            sensitive_features=pd.Series(np.full(len(sums), "all"), name="all"),
        )
        low, high = (
            bootstrap_interval(
                functions, len(sums), n_boot=n_boot, seed=seed, quantiles=(alpha, 1 - alpha)
            )  # fmt: skip
            if boot
            else (frame.overall * np.nan,) * 2
        )
        frames.append(pd.DataFrame({"ratio": frame.overall, "ci_low": low, "ci_high": high}))
    if not frames:
        return pd.DataFrame(columns=["metric", "group", "reference", "ratio", "ci_low", "ci_high"])
    out = pd.concat(frames).astype(float)
    out.insert(0, "metric", [pairs[k][0] for k in out.index])
    out.insert(1, "group", [groups[pairs[k][1]] for k in out.index])
    labels_of = {m: "parity" for m in PARITY_METRICS} | {m: "city" for m in city_metrics}
    out.insert(2, "reference", [labels_of.get(m, reference) for m in out["metric"]])
    return out.reset_index(drop=True)
