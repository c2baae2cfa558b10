"""Real-vs-synthetic figures for report.html, each returned as base64 PNG so the report
is one self-contained file. Real is drawn in blue, synthetic in orange, everywhere."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import pandas as pd

from pipeline.core.data import ImageData, TabularData, TimeSeriesData
from pipeline.core.schema import TableProfile
from validators.metrics.representation import numeric_values

REAL, SYNTHETIC, HOLDOUT = "#1f77b4", "#ff7f0e", "#2ca02c"
MAX_PANELS = 24  # marginal panels per report: wide tables show the columns whose marginals differ most
MAX_HEATMAP = 20  # heatmap columns: the ones whose correlations differ most (a 300-column map is unreadable)
MAX_LABELLED_CELLS = 15  # heatmaps up to this many columns print each cell's value
MAX_DISTANCE_RECORDS = 2000  # records per side in the distance histogram
MAX_CATEGORIES = 15  # bars per categorical panel (the most frequent real categories)
SERIES_SHOWN = 5  # sequences per side in the overlay plots
MAX_FEATURES_SHOWN = 4
GRID_SIDE = 8  # images per side of each image grid


def _figure(rows: int, cols: int, size: tuple[float, float] = (3.2, 2.4)):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False)
    return fig, axes


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _numbers(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(series):
        series = (series - pd.Timestamp(0, tz=series.dt.tz)).dt.total_seconds() / 86400  # days since 1970 (zone kept)
    values = numeric_values(series)  # clock text as seconds of the day
    return values[~np.isnan(values)]


def _shares(values: pd.Series) -> pd.Series:
    """Category shares, nulls shown as their own "(missing)" bar."""
    labels = values.astype(object).where(values.notna(), "(missing)").astype(str)
    return labels.value_counts(normalize=True)


def _marginal(ax, name: str, kind: str, real: pd.Series, synthetic: pd.Series) -> None:
    if kind in ("categorical", "boolean") or (kind == "integer" and real.nunique() <= MAX_CATEGORIES):
        if kind == "integer":  # few distinct integers: bars, in numeric order ("2007", not "2007.0")
            real, synthetic = (pd.to_numeric(v, errors="coerce").round().astype("Int64") for v in (real, synthetic))
        p, q = _shares(real), _shares(synthetic)
        cats = list(p.index[:MAX_CATEGORIES])
        if kind == "integer":
            cats.sort(key=lambda c: math.inf if c == "(missing)" else float(c))
        x = np.arange(len(cats))
        ax.bar(x - 0.2, p.reindex(cats).fillna(0), 0.4, color=REAL, label="real")
        ax.bar(x + 0.2, q.reindex(cats).fillna(0), 0.4, color=SYNTHETIC, label="synthetic")
        ax.set_xticks(x, [c[:12] for c in cats], rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("share", fontsize=7)
    else:
        a, b = _numbers(real), _numbers(synthetic)
        both = np.concatenate([a, b])
        if len(both):
            bins = np.histogram_bin_edges(both, bins=30)
            if kind == "integer":  # whole-number bins: no empty bins between integers
                step = max(1.0, math.ceil((both.max() - both.min() + 1) / 30))
                bins = np.arange(both.min() - 0.5, both.max() + step, step)
            ax.hist(a, bins=bins, density=True, alpha=0.55, color=REAL, label="real")
            ax.hist(b, bins=bins, density=True, alpha=0.55, color=SYNTHETIC, label="synthetic")
        ax.tick_params(labelsize=7)
        if kind in ("datetime", "time"):
            ax.set_xlabel("days since 1970" if kind == "datetime" else "seconds of the day", fontsize=7)
    ax.set_title(f"{name} ({kind})", fontsize=9)


def _marginal_gap(kind: str, real: pd.Series, synthetic: pd.Series) -> float:
    """How far apart two marginals are, 0..1: KS statistic for numbers, TVD for categories."""
    if kind in ("categorical", "boolean"):
        p, q = _shares(real), _shares(synthetic)
        return float(0.5 * p.sub(q, fill_value=0).abs().sum())
    a, b = np.sort(_numbers(real)), np.sort(_numbers(synthetic))
    if not len(a) or not len(b):
        return 1.0
    grid = np.concatenate([a, b])
    return float(np.max(np.abs(np.searchsorted(a, grid, "right") / len(a) - np.searchsorted(b, grid, "right") / len(b))))


def marginal_columns(real: pd.DataFrame, synthetic: pd.DataFrame, profile: TableProfile,
                     skip: set[str] = frozenset()) -> list:
    """The columns shown: all of them up to MAX_PANELS, else those whose marginals
    differ most, in table order."""
    cols = [c for c in profile.columns if c.name not in skip and c.name in synthetic]
    if len(cols) <= MAX_PANELS:
        return cols
    gaps = [_marginal_gap(c.kind, real[c.name], synthetic[c.name]) for c in cols]
    keep = set(np.argsort(gaps, kind="stable")[::-1][:MAX_PANELS].tolist())
    return [c for i, c in enumerate(cols) if i in keep]


def marginals(real: pd.DataFrame, synthetic: pd.DataFrame, profile: TableProfile, skip: set[str] = frozenset()) -> str:
    """Histograms (numbers, dates) and bar charts (categories) of each column in
    `marginal_columns`."""
    cols = marginal_columns(real, synthetic, profile, skip)
    ncols = min(4, max(1, len(cols)))
    fig, axes = _figure(max(1, math.ceil(len(cols) / ncols)), ncols)
    for ax in axes.flat[len(cols):]:
        ax.axis("off")
    for ax, col in zip(axes.flat, cols):
        _marginal(ax, col.name, col.kind, real[col.name], synthetic[col.name])
    if cols:
        axes.flat[0].legend(fontsize=7)
    return _png(fig)


def correlation_difference(real: pd.DataFrame, synthetic: pd.DataFrame, profile: TableProfile) -> str | None:
    """Heatmap of corr(real) - corr(synthetic) over numeric columns (Pearson); None when
    fewer than two numeric columns."""
    names = [c.name for c in profile.of_kind("numeric", "integer") if c.name in synthetic]
    if len(names) < 2:
        return None
    to_num = lambda f: f[names].apply(pd.to_numeric, errors="coerce").astype(float)  # noqa: E731
    diff = (to_num(real).corr() - to_num(synthetic).corr()).fillna(0).to_numpy()
    if len(names) > MAX_HEATMAP:  # the columns with the largest differences, in table order
        keep = np.sort(np.argsort(np.abs(diff).max(axis=0), kind="stable")[::-1][:MAX_HEATMAP])
        names, diff = [names[i] for i in keep], diff[np.ix_(keep, keep)]
    size = 1.2 + 0.45 * len(names)
    fig, axes = _figure(1, 1, (size + 1.5, size))
    ax = axes[0, 0]
    image = ax.imshow(diff, cmap="coolwarm", vmin=-1, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    if len(names) <= MAX_LABELLED_CELLS:
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(j, i, f"{diff[i, j]:.2f}", ha="center", va="center", fontsize=6)
    ax.set_title("correlation real − synthetic", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046)
    return _png(fig)


def series_overlay(real: TimeSeriesData, synthetic: TimeSeriesData, *, seed: int = 0) -> str:
    """A few real and synthetic sequences of each numeric feature against the step index."""
    numeric = {c.name for c in real.profile.of_kind("numeric", "integer")}
    features = [f for f in real.features if f in numeric and f in synthetic.frame][:MAX_FEATURES_SHOWN]
    fig, axes = _figure(1, max(1, len(features)), (4.2, 2.8))
    rng = np.random.default_rng(seed)
    for ax, feature in zip(axes.flat, features):
        for data, colour, label in ((real, REAL, "real"), (synthetic, SYNTHETIC, "synthetic")):
            ids = data.frame[data.entity].drop_duplicates().to_numpy()
            chosen = rng.choice(ids, size=min(SERIES_SHOWN, len(ids)), replace=False) if len(ids) else []
            for k, entity in enumerate(chosen):
                values = pd.to_numeric(data.frame.loc[data.frame[data.entity] == entity, feature], errors="coerce")
                ax.plot(np.arange(len(values)), values.to_numpy(), color=colour, alpha=0.7, lw=1,
                        label=label if k == 0 else None)
        ax.set_title(feature, fontsize=9)
        ax.set_xlabel("step", fontsize=7)
        ax.tick_params(labelsize=7)
    if features:
        axes.flat[0].legend(fontsize=7)
    else:
        axes.flat[0].axis("off")
    return _png(fig)


def image_grid(real: ImageData, synthetic: ImageData, *, seed: int = 0) -> str:
    """GRID_SIDE x GRID_SIDE real images beside as many synthetic ones (label as title)."""
    rng = np.random.default_rng(seed)
    fig, axes = _figure(1, 2, (5.0, 5.2))
    for ax, data, title in ((axes[0, 0], real, "real"), (axes[0, 1], synthetic, "synthetic")):
        n = min(GRID_SIDE * GRID_SIDE, len(data))
        idx = np.sort(rng.choice(len(data), size=n, replace=False)) if n else np.array([], int)
        h, w, c = data.images.shape[1:] if len(data) else (1, 1, 1)
        canvas = np.full(((h + 1) * GRID_SIDE, (w + 1) * GRID_SIDE, c), 255, np.uint8)
        for k, i in enumerate(idx):
            r, q = divmod(k, GRID_SIDE)
            canvas[r * (h + 1): r * (h + 1) + h, q * (w + 1): q * (w + 1) + w] = data.images[i]
        ax.imshow(canvas[:, :, 0] if c == 1 else canvas, cmap="gray" if c == 1 else None, interpolation="nearest")
        labels = "" if data.labels is None else f" (labels: {', '.join(map(str, data.labels[idx][:GRID_SIDE]))}, …)"
        ax.set_title(f"{title}{labels}", fontsize=8)
        ax.axis("off")
    return _png(fig)


def closest_record_distances(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *,
                             seed: int = 0) -> dict[str, np.ndarray]:
    """Distance from each record to its closest training record (another one, for train
    itself), at most MAX_DISTANCE_RECORDS per side: the holdout is the yardstick a
    generator that leaks nothing matches; copies sit at 0."""
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(seed)
    pick = lambda x: x if len(x) <= MAX_DISTANCE_RECORDS else x[rng.choice(len(x), MAX_DISTANCE_RECORDS, replace=False)]  # noqa: E731
    index = NearestNeighbors(n_neighbors=2).fit(train)
    return {"train (to another training record)": index.kneighbors(pick(train))[0][:, 1],
            "holdout (real, unseen)": index.kneighbors(pick(holdout), n_neighbors=1)[0][:, 0],
            "synthetic": index.kneighbors(pick(synthetic), n_neighbors=1)[0][:, 0]}


def distance_histogram(distances: dict[str, np.ndarray]) -> str:
    """Histograms of distance to the closest training record, one per set, on one axis."""
    fig, axes = _figure(1, 1, (7.5, 3.2))
    ax = axes[0, 0]
    both = np.concatenate(list(distances.values()))
    bins = np.histogram_bin_edges(both[np.isfinite(both)], bins=40)
    for (label, d), colour in zip(distances.items(), (REAL, HOLDOUT, SYNTHETIC)):
        ax.hist(d, bins=bins, density=True, histtype="step", lw=1.8, color=colour,
                label=f"{label}: median {np.median(d):.3g}")
    ax.set_xlabel("distance to the closest training record (privacy feature space)", fontsize=8)
    ax.set_ylabel("density", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    return _png(fig)


def figures(real, synthetic, *, seed: int = 0) -> list[tuple[str, str]]:
    """(caption, base64 PNG) of every figure for this modality."""
    if isinstance(real, ImageData):
        return [("Real (left) vs synthetic (right) images", image_grid(real, synthetic, seed=seed))]
    out = []
    if isinstance(real, TimeSeriesData):
        out.append(("Sampled sequences: real in blue, synthetic in orange",
                    series_overlay(real, synthetic, seed=seed)))
        skip = {real.entity}
    else:
        skip = set()
    n = sum(c.name not in skip and c.name in synthetic.frame for c in real.profile.columns)
    shown = f" ({MAX_PANELS} of {n} columns: those whose marginals differ most)" if n > MAX_PANELS else ""
    out.append((f"Marginal distributions: real in blue, synthetic in orange{shown}",
                marginals(real.frame, synthetic.frame, real.profile, skip)))
    if isinstance(real, TabularData):
        heat = correlation_difference(real.frame, synthetic.frame, real.profile)
        if heat is not None:
            numeric = len(real.profile.of_kind("numeric", "integer"))
            top = f"; the {MAX_HEATMAP} of {numeric} whose correlations differ most" if numeric > MAX_HEATMAP else ""
            out.append((f"Correlation of real minus correlation of synthetic, numeric columns (0 = same){top}", heat))
    return out
