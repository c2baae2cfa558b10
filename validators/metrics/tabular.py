"""Tabular fidelity: does the synthetic table look and behave like the real one?

Real = the training split (what the generator learned from). Every function takes
DataFrames with the source's columns and the source profile. Sample sizes are capped
(constants below) so a million-row table validates in about the time of 100k rows."""

from __future__ import annotations

import logging
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import f1_score, r2_score
from sklearn.model_selection import StratifiedKFold, cross_val_score

from pipeline.core.schema import TableProfile
from validators.metrics.representation import CATEGORICAL_KINDS, NUMERIC_KINDS, category_values, numeric_values
from pipeline.core.threads import limited_threads

log = logging.getLogger(__name__)

MAX_CORRELATION_ROWS = 200_000  # rows per side for correlation matrices and Cramér's V
MAX_DETECTION_ROWS = 10_000  # rows per side in the real-vs-synthetic classifier (C2ST)
MAX_UTILITY_ROWS = 20_000  # training rows (synthetic, or real) and test rows for utility
MAX_NATIVE_CATEGORIES = 250  # HistGradientBoosting's native categorical limit (255 bins, minus NaN)
MAX_PAIR_CATEGORIES = 100  # categorical columns with more values are left out of Cramér's V
DETECTION_FOLDS = 3
BOOSTING_ITERATIONS = 100  # HistGradientBoosting default; early stopping is off for determinism


def _sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= n else frame.sample(n, random_state=seed)


def column_similarity(real: pd.DataFrame, synthetic: pd.DataFrame, profile: TableProfile) -> dict[str, float]:
    """Per column, 1 - distance of the two marginals (1 = identical), missing values left out:
    numeric / integer / datetime: 1 - Kolmogorov-Smirnov statistic;
    categorical / boolean: 1 - total variation distance of the category frequencies."""
    out = {}
    for col in profile.columns:
        if col.kind in NUMERIC_KINDS:
            a, b = numeric_values(real[col.name]), numeric_values(synthetic[col.name])
            a, b = a[~np.isnan(a)], b[~np.isnan(b)]
            if len(a) and len(b):
                out[col.name] = 1.0 - float(ks_2samp(a, b).statistic)
        else:
            p = real[col.name].dropna().astype(str).value_counts(normalize=True)
            q = synthetic[col.name].dropna().astype(str).value_counts(normalize=True)
            if len(p) and len(q):
                out[col.name] = 1.0 - 0.5 * float(p.sub(q, fill_value=0.0).abs().sum())
    return out


def missing_rate_diff(real: pd.DataFrame, synthetic: pd.DataFrame) -> float:
    """Largest absolute difference, over columns, of the fraction of missing values."""
    return float((real.isna().mean() - synthetic[real.columns].isna().mean()).abs().max())


def correlation_diff(real: pd.DataFrame, synthetic: pd.DataFrame, profile: TableProfile) -> float:
    """Mean absolute difference of the Pearson correlation matrices of the numeric columns
    (upper triangle, pairwise-complete). NaN with fewer than two usable numeric columns."""
    cols = [c.name for c in profile.of_kind(*NUMERIC_KINDS)]

    def corr(frame: pd.DataFrame) -> np.ndarray:
        values = pd.DataFrame({c: numeric_values(frame[c]) for c in cols})
        return values.corr().to_numpy()

    if len(cols) < 2:
        return float("nan")
    upper = np.triu_indices(len(cols), k=1)
    diff = np.abs(corr(real)[upper] - corr(synthetic)[upper])
    return float(np.nanmean(diff)) if np.isfinite(diff).any() else float("nan")


def std_ratios(real: pd.DataFrame, synthetic: pd.DataFrame, profile: TableProfile) -> dict[str, float]:
    """Per numeric / integer column, synthetic over real standard deviation (missing left
    out; 1 = same spread). Shrunk tails show as ratios well below 1 on skewed columns,
    which the KS-based similarity barely sees. Columns constant in `real` are left out."""
    out = {}
    for col in profile.of_kind("numeric", "integer"):
        a, b = numeric_values(real[col.name]), numeric_values(synthetic[col.name])
        sd_real, sd_syn = np.nanstd(a), np.nanstd(b)
        if np.isfinite(sd_real) and sd_real > 0 and np.isfinite(sd_syn):
            out[col.name] = float(sd_syn / sd_real)
    return out


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes of a column's values and how many there are."""
    codes, uniques = pd.factorize(values)
    return codes, len(uniques)


def _cramers_v(x: tuple[np.ndarray, int], y: tuple[np.ndarray, int]) -> float:
    """Cramér's V of two coded columns. The contingency table is counted with one
    bincount (pd.crosstab and scipy's association took 27 ms a pair: 5 min for the 12k pairs of a
    300-column table)."""
    (a, ka), (b, kb) = x, y
    table = np.bincount(a * kb + b, minlength=ka * kb).reshape(ka, kb)
    table = table[table.any(axis=1)][:, table.any(axis=0)]
    if min(table.shape) < 2:
        return 0.0
    # chi2 / n = sum(O^2 / (row * col)) - 1: scipy's association without its per-call checks
    rows, cols = table.sum(axis=1), table.sum(axis=0)
    phi2 = float((table**2 / np.outer(rows, cols)).sum()) - 1.0
    return float(np.sqrt(max(phi2, 0.0) / (min(table.shape) - 1)))


def cramers_v_diff(real: pd.DataFrame, synthetic: pd.DataFrame, profile: TableProfile) -> float:
    """Mean absolute difference of Cramér's V over pairs of categorical / boolean columns
    (missing counted as a category). NaN with fewer than two such columns."""
    cols = [
        c.name for c in profile.of_kind(*CATEGORICAL_KINDS) if len(c.categories or []) <= MAX_PAIR_CATEGORIES
    ]
    if len(cols) < 2:
        return float("nan")
    r = {c: _codes(category_values(real[c])) for c in cols}
    s = {c: _codes(category_values(synthetic[c])) for c in cols}
    diffs = [abs(_cramers_v(r[a], r[b]) - _cramers_v(s[a], s[b])) for a, b in combinations(cols, 2)]
    return float(np.mean(diffs))


def _model_frame(frame: pd.DataFrame, profile: TableProfile, columns: list[str]) -> pd.DataFrame:
    """Columns as HistGradientBoosting reads them: numbers as floats, categories as pandas
    categoricals over the source's category set (native categorical splits, NaN kept)."""
    out = {}
    for name in columns:
        col = profile.column(name)
        if col.kind in NUMERIC_KINDS:
            out[name] = numeric_values(frame[name])
        else:
            cats = [str(v) for v in col.categories or []]
            values = pd.Categorical(frame[name].astype(str).where(frame[name].notna()), categories=cats)
            # HistGradientBoosting splits natively on at most 255 categories; beyond, use codes.
            out[name] = values if len(cats) <= MAX_NATIVE_CATEGORIES else np.where(values.codes < 0, np.nan, values.codes)
    return pd.DataFrame(out)


def detection_auc(real: pd.DataFrame, synthetic: pd.DataFrame, profile: TableProfile, *, seed: int = 0) -> float:
    """Classifier two-sample test: cross-validated ROC AUC of a gradient-boosted classifier
    told to separate real from synthetic rows on a balanced sample. 0.5 = indistinguishable,
    1.0 = every synthetic row is recognisable; well below 0.5 happens when synthetic rows
    duplicate real ones (the same row under both labels), which privacy catches."""
    n = min(len(real), len(synthetic), MAX_DETECTION_ROWS)
    both = pd.concat([_sample(real, n, seed), _sample(synthetic, n, seed + 1)], ignore_index=True)
    x = _model_frame(both, profile, profile.names)
    y = np.r_[np.ones(n), np.zeros(n)]
    clf = HistGradientBoostingClassifier(
        max_iter=BOOSTING_ITERATIONS, categorical_features="from_dtype", early_stopping=False, random_state=seed
    )
    folds = StratifiedKFold(DETECTION_FOLDS, shuffle=True, random_state=seed)
    return float(np.mean(cross_val_score(clf, x, y, cv=folds, scoring="roc_auc")))


def utility_ratio(
    train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, profile: TableProfile, target: str, *, seed: int = 0
) -> float:
    """Train-synthetic-test-real over train-real-test-real, both tested on the holdout:
    macro F1 for a categorical / boolean target, R^2 for a numeric one. 1.0 = the synthetic
    data is as useful for learning `target` as the real data. NaN when the real baseline
    has no skill (score <= 0)."""
    kind = profile.column(target).kind
    features = [c for c in profile.names if c != target]

    def xy(frame: pd.DataFrame, n: int, offset: int) -> tuple[pd.DataFrame, np.ndarray]:
        frame = _sample(frame[frame[target].notna()], n, seed + offset)
        if kind in CATEGORICAL_KINDS:
            y = category_values(frame[target])
        else:
            y = numeric_values(frame[target])
        return _model_frame(frame, profile, features), y

    x_test, y_test = xy(holdout, MAX_UTILITY_ROWS, 2)  # one test set for both models

    def score(fit_on: pd.DataFrame, offset: int) -> float:
        x_fit, y_fit = xy(fit_on, MAX_UTILITY_ROWS, offset)
        # A feature with no value in the fitted rows teaches nothing, and scikit-learn's binning
        # raises on a numeric one (TVAE's Hawks sample: "window shape cannot be larger than input").
        empty = [c for c in x_fit.columns if x_fit[c].isna().all()]
        x_fit, x_eval = x_fit.drop(columns=empty), x_test.drop(columns=empty)
        common = dict(max_iter=BOOSTING_ITERATIONS, categorical_features="from_dtype", early_stopping=False)
        if kind in CATEGORICAL_KINDS:
            if len(np.unique(y_fit)) < 2:
                return 0.0
            model = HistGradientBoostingClassifier(random_state=seed, **common).fit(x_fit, y_fit)
            return float(f1_score(y_test, model.predict(x_eval), average="macro"))
        model = HistGradientBoostingRegressor(random_state=seed, **common).fit(x_fit, y_fit)
        return float(r2_score(y_test, model.predict(x_eval)))

    real_score = score(train, 0)
    if real_score <= 0:
        log.warning("utility: a model trained on real data has no skill on %r (score %.3f)", target, real_score)
        return float("nan")
    return score(synthetic, 1) / real_score


@limited_threads()
def tabular_fidelity(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    profile: TableProfile,
    *,
    target: str | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Every tabular fidelity metric, real = train. Samples: marginals and missing rates on
    all rows; correlations on MAX_CORRELATION_ROWS per side; detection on
    MAX_DETECTION_ROWS per side; utility fits on MAX_UTILITY_ROWS."""
    similarity = column_similarity(train, synthetic, profile)
    real_c, syn_c = _sample(train, MAX_CORRELATION_ROWS, seed), _sample(synthetic, MAX_CORRELATION_ROWS, seed)
    out = {
        "fidelity.column_similarity_mean": float(np.mean(list(similarity.values()))) if similarity else float("nan"),
        "fidelity.column_similarity_min": min(similarity.values()) if similarity else float("nan"),
        "fidelity.missing_rate_diff": missing_rate_diff(train, synthetic),
        "fidelity.correlation_diff": correlation_diff(real_c, syn_c, profile),
        "fidelity.cramers_v_diff": cramers_v_diff(real_c, syn_c, profile),
        "fidelity.detection_auc": detection_auc(train, synthetic, profile, seed=seed),
    }
    if target is not None:
        out["fidelity.utility_ratio"] = utility_ratio(train, holdout, synthetic, profile, target, seed=seed)
    return out
