"""Plain words for what the reports name by key: metrics, baselines, checks, groupings.

A person reading a card or the review desk never meets a dotted key such as
``h1.margin_best.pai_area_10.ci_high`` or a check name such as
``fairness.fpr_top_k_adjusted.district.North``: these functions name them.
"""

from __future__ import annotations

from training.feature_groups import FEATURE_GROUPS, group_words
from training.features import describe_feature

__all__ = [
    "METRIC_WORDS",
    "BASELINE_WORDS",
    "GROUPING_WORDS",
    "FAIRNESS_METRIC_WORDS",
    "SOURCE_GROUPS",
    "metric_words",
    "baseline_words",
    "grouping_words",
    "headline_words",
    "check_words",
    "feature_source",
    "group_features",
    "ablation_sentences",
]

METRIC_WORDS = {
    "poisson_deviance": "forecast error (Poisson deviance, lower is better)",
    "pai_area_5": (
        "share of violence found in the top 5% of areas, against their share of the city (PAI)"
    ),
    "pai_area_10": (
        "share of violence found in the top 10% of areas, against their share of the city (PAI)"
    ),
    "mae": "mean absolute error per area and week",
    "hit_rate_10": "share of violence in the top 10% of areas",
    "interval_coverage": "share of outcomes inside the forecast interval",
    "calibration_gap": "worst calibration gap between groups",
    "oracle_capture": "share of the best possible ranking achieved",
}
BASELINE_WORDS = {
    "last_week": "last week's count",
    "mean_4": "the mean of the last 4 weeks",
    "mean_13": "the mean of the last 13 weeks",
    "prior_52": "the mean of the last 52 weeks",
    "seasonal_naive": "the same week last year",
    "prospective_hotspot": "prospective hotspot mapping",
    "hawkes": "a self-exciting (Hawkes) hotspot model",
    "poisson_glm": "a Poisson regression",
    "ablation_police_only": "the same model on police records alone",
    "ablation_no_spatial": "the same model without neighbouring areas",
    "oracle": "the true expected counts (synthetic data only)",
    "model": "this model",
    "stacked": "the combination of this model and the fitted baselines",
}
GROUPING_WORDS = {
    "imd_quintile": "deprivation quintile",
    "ethnic_band": "ethnic composition of the area",
    "district": "district",
}
FAIRNESS_METRIC_WORDS = {
    "calibration_ratio": "forecast against recorded violence",
    "calibration_ratio_ae": "forecast against A&E assault attendances",
    "fpr_top_k": "false alarms among areas without violence",
    "fdr_top_k": "share of flags that were false alarms",
    "fpr_top_k_adjusted": "false alarms against those the forecast expects",
    "fdr_top_k_adjusted": "share of false-alarm flags against those the forecast expects",
    "selection_vs_harm": "share of flags against share of harm",
    "false_alarm_share": "share of all false alarms",
    "miss_share": "share of all missed violence",
    "poisson_deviance": "forecast error",
}
_SHAP_WORDS = {
    "sensitive_features": "no audit-only column is an input",
    "additivity": "explanations add up to the forecasts",
    "crosscheck": "explanations agree with LightGBM's own",
    "proxy_share": "share of attribution to possible stand-ins for protected characteristics",
    "monotone": "more recent violence never lowers the forecast",
    "rank_stability": "the most important inputs stay the same across backtest folds",
}
#: Feature sources, in the order a card lists them.
SOURCE_GROUPS = {
    "violence": "Violence (police plus A&E)",
    "police": "Police records",
    "ae": "A&E (emergency department) attendances",
    "ambulance": "Ambulance call-outs",
    "council": "Council records (school exclusions, evictions)",
    "area": "Area characteristics (census, deprivation, licensed premises)",
    "calendar": "Calendar and forecast horizon",
    "near_repeat": "Near-repeat (day-dated violent records: police, A&E, ambulance)",
    "night_time": "Night-time economy (late premises by season and bank holiday)",
    "other": "Other",
}
_HORIZON = {"h1": "one week ahead"}


def metric_words(metric: str) -> str:
    """Words for a backtest or champion metric name."""
    return METRIC_WORDS.get(metric, metric.replace("_", " "))


def baseline_words(method: str) -> str:
    """Words for a forecasting method (a baseline, an ablation or the model)."""
    group = method.removeprefix("ablation_no_")
    if method not in BASELINE_WORDS and group != method and group in FEATURE_GROUPS:
        return f"the same model without {group_words(group)}"
    return BASELINE_WORDS.get(method, method.replace("_", " "))


def grouping_words(grouping: str) -> str:
    """Words for an audit grouping."""
    return GROUPING_WORDS.get(grouping, grouping.replace("_", " "))


def headline_words(key: str) -> str:
    """Words for a headline key such as ``h1.margin_best.pai_area_10.ci_high``."""
    parts = key.split(".")
    when = _HORIZON.get(parts[0], "")
    rest = parts[1:] if parts[0] in _HORIZON else parts
    who = (
        {
            "model": "this model",
            "best_baseline": "the best analysts' method",
            "police_only": "police records alone",
            "no_spatial": "without neighbouring areas",
            "margin_best": "gain over the best analysts' method",
            "margin_police_only": "gain from the non-police sources",
            "oracle_capture": "share of the best possible ranking",
            "oracle": "true expected counts",
        }.get(rest[0], rest[0].replace("_", " "))
        if rest
        else ""
    )
    metric = metric_words(rest[1]).split(" (")[0] if len(rest) > 1 else ""
    part = {"difference": "", "ci_low": " (interval low end)", "ci_high": " (interval high end)"}
    tail = part.get(rest[2], f" ({rest[2].replace('_', ' ')})") if len(rest) > 2 else ""
    words = f"{metric}: {who}{tail}" if metric else who
    return f"{words}, {when}" if when else words


def check_words(name: str) -> str:
    """Words for a gate check name (``fairness.<metric>.<grouping>.<group>``, ``shap.*``...)."""
    parts = name.split(".", 3)
    old = name.split(":", 2)
    if len(old) == 3:  # the gate's first naming, <metric>:<grouping>:<group>
        parts = ["fairness", *old]
    if parts[0] == "fairness" and len(parts) == 4:
        _, metric, grouping, group = parts
        what = FAIRNESS_METRIC_WORDS.get(metric, metric.replace("_", " "))
        return f"{what}, {grouping_words(grouping)} {group}"
    if parts[0] == "shap" and len(parts) >= 2:
        words = _SHAP_WORDS.get(parts[1], parts[1].replace("_", " "))
        return f"{words} ({describe_feature(parts[2])})" if len(parts) > 2 else words
    if parts[0] == "champion" and len(parts) >= 2:
        if parts[1] == "comparison":
            return "compared with the version in production"
        return f"no worse than production on {metric_words(parts[1]).split(' (')[0]}"
    return name.replace("_", " ").replace(".", ", ")


def feature_source(name: str) -> str:
    """Return the source group (a key of :data:`SOURCE_GROUPS`) a feature comes from."""
    base = name.removeprefix("nb_")
    for prefix, group in (
        ("violence", "violence"), ("police_", "police"), ("ae_", "ae"),
        ("ambulance_", "ambulance"), ("exclusions", "council"), ("evictions", "council"),
        ("nr_", "near_repeat"), ("nte_", "night_time"),
    ):  # fmt: skip
        if base.startswith(prefix):
            return group
    if base in ("population", "area_km2", "density", "imd_decile", "premises", "late_premises"):
        return "area"
    if base in ("horizon", "woy_sin", "woy_cos", "holiday"):
        return "calendar"
    return "other"


def group_features(names: list[str]) -> list[tuple[str, list[str]]]:
    """Group feature names by source: ``[(source words, [feature words...]), ...]``."""
    groups: dict[str, list[str]] = {key: [] for key in SOURCE_GROUPS}
    for name in names:
        groups[feature_source(name)].append(describe_feature(name))
    return [(SOURCE_GROUPS[k], v) for k, v in groups.items() if v]


_ABLATION_METRICS = {
    "poisson_deviance": "deviance",
    "pai_area_5": "PAI 5%",
    "pai_area_10": "PAI 10%",
}


def ablation_sentences(rows) -> list[str]:
    """One line per ablated feature group: its words, then each metric's margin and interval.

    ``rows`` are the card's ``AblationRow`` (one per group and metric), e.g.
    "council indicators (evictions, exclusions) 3-8 weeks back ...: deviance
    -0.004 [-0.007, -0.001]; PAI 5% +0.02 [-0.01, +0.05]; ..." (horizon 1).
    """
    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    lines = []
    for mine in groups.values():
        parts = []
        for row in mine:
            name = _ABLATION_METRICS.get(row.metric, row.metric)
            parts.append(f"{name} {_signed(row.difference)} [{_signed(row.ci_low)}, "
                         f"{_signed(row.ci_high)}]")  # fmt: skip
        helps = [_ABLATION_METRICS.get(r.metric, r.metric) for r in mine if r.group_helps]
        verdict = f"helps on {', '.join(helps)}" if helps else "no clear gain"
        lines.append(f"{mine[0].words}: {'; '.join(parts)} (horizon {mine[0].horizon}; {verdict})")
    return lines


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.4f}"
