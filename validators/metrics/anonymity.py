"""anonymeter's three attacks (Giomi et al., PETS 2023): singling out, linkability and
inference, each with the holdout as control, as risks with 95 % confidence intervals.

Each attack is run twice: on train (the records the generator saw) and on the holdout
(records it never saw), both with the synthetic data as the attacker's knowledge. The
risk is the main attack's success beyond the control's, scaled to [0, 1]: 0 means the
synthetic data helps an attacker no more against training records than against anyone.

- singling out: predicates on up to 3 attributes, drawn from synthetic rows, that match
  exactly one training record (misses leaks of continuous values, PITFALLS);
- linkability: the attacker holds two halves of a record's columns and links them
  through their nearest synthetic rows;
- inference: the attacker knows every column but one secret and guesses it from the
  nearest synthetic row; run for up to INFERENCE_SECRETS columns, the worst reported.

Tables are attacked as they are; a time series as one row per entity (its static
columns, its length, and each feature at SERIES_POINTS evenly spaced steps). High-
cardinality columns (leaks.py) are left out here: their reuse is checked exactly there,
and unique text makes every predicate single out. Tables wider than MAX_ATTACK_COLUMNS are
attacked on a seeded random subset of that many columns. Images do not apply.

Sizes: anonymeter compares each target with every synthetic row (linkability,
inference) and runs one query over the original per singling-out guess, so its cost
grows with attacks x rows. N_ATTACKS targets from ATTACK_ROWS train / holdout rows,
searched in up to SYNTHETIC_ROWS synthetic rows, keep the three attacks within the
validation budget (bench/validation.py)."""

from __future__ import annotations

import functools
import logging
import warnings

import numpy as np
import pandas as pd

from pipeline.core.data import SourceData, TimeSeriesData
from pipeline.core.seeding import seeded
from validators.metrics.leaks import high_cardinality_columns
from validators.metrics.representation import category_values, numeric_values

log = logging.getLogger(__name__)

ATTACK_ROWS = 2_000  # train / holdout rows given to anonymeter (targets are drawn from these)
# synthetic rows the attacker searches: every synthetic row left out is a copy the attacker
# cannot find (with 2,000 of 11,765 copied rwm5yr rows, linkability of a copy read 0.09);
# cost is linear in it: 50,000 took 49 CPU s at 100k x 20, 10,000 about 10
SYNTHETIC_ROWS = 10_000
N_ATTACKS = 300  # targets per attack: 95 % CI half-width of a success rate <= 0.06
SINGLING_OUT_COLS = 3  # attributes per singling-out predicate (anonymeter's default)
INFERENCE_SECRETS = 3  # columns tried as the secret; each costs a nearest-neighbour pass
# Columns the attacks see on wide tables (a seeded random subset beyond it): anonymeter's
# Gower distances cost linearly in columns, 57 CPU s at 150 columns x 10k rows. Copies over
# all columns are still caught by the exact-copy, DCR and membership metrics.
MAX_ATTACK_COLUMNS = 40
SERIES_POINTS = 4  # steps per feature kept when a sequence is flattened to one row
CONFIDENCE = 0.95


def _attack_frame(data: SourceData, source: SourceData, columns: list[str]) -> pd.DataFrame:
    """Plain numeric / text columns anonymeter can compare: numbers (datetimes as ns) as
    float, categories as text with missing values as their own value."""
    frame = data.frame
    kinds = {c.name: c.kind for c in source.profile.columns}
    if isinstance(data, TimeSeriesData):
        frame = _flatten(data)
        kinds |= {"length": "numeric"} | {f"{f}@{i}": kinds[f] for f in data.features for i in range(SERIES_POINTS)}
    out = {}
    for c in columns:
        num = kinds[c] in ("numeric", "integer", "datetime")
        out[c] = numeric_values(frame[c]) if num else category_values(frame[c])
    return pd.DataFrame(out)


def _flatten(data: TimeSeriesData) -> pd.DataFrame:
    """One row per entity: static columns, length, each feature at SERIES_POINTS steps."""
    frame = data.frame.sort_values([data.entity, data.time], kind="stable")
    rows = []
    for _, seq in frame.groupby(data.entity, sort=False):
        at = np.round(np.linspace(0, len(seq) - 1, SERIES_POINTS)).astype(int)
        row = {c: seq[c].iloc[0] for c in data.static}
        row["length"] = float(len(seq))
        for f in data.features:
            row.update({f"{f}@{i}": seq[f].iloc[j] for i, j in enumerate(at)})
        rows.append(row)
    return pd.DataFrame(rows)


def attack_columns(source: SourceData) -> list[str]:
    """The columns the attacks see (module docstring)."""
    leaky = set(high_cardinality_columns(source))
    if isinstance(source, TimeSeriesData):
        steps = [f"{f}@{i}" for f in source.features for i in range(SERIES_POINTS)]
        return [c for c in source.static if c not in leaky] + ["length"] + steps
    return [c for c in source.profile.names if c not in leaky]


def _sample(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= n:
        return frame.reset_index(drop=True)
    return frame.iloc[np.sort(rng.choice(len(frame), n, replace=False))].reset_index(drop=True)


def _risk(name: str, risk) -> dict[str, float]:
    return {f"privacy.{name}_risk": float(risk.value), f"privacy.{name}_risk_ci_low": float(risk.ci[0]),
            f"privacy.{name}_risk_ci_high": float(risk.ci[1])}


def _secrets(columns: list[str], rng: np.random.Generator) -> list[str]:
    if len(columns) <= INFERENCE_SECRETS:
        return list(columns)
    return [columns[i] for i in sorted(rng.choice(len(columns), INFERENCE_SECRETS, replace=False))]


def anonymeter_risks(
    source: SourceData, train: SourceData, holdout: SourceData, synthetic: SourceData, *, seed: int = 0
) -> dict[str, float]:
    """Singling-out, linkability and inference risk with CI bounds, as privacy.* floats.
    Linkability and inference need two attack columns; with fewer they are left out."""
    rng = np.random.default_rng(seed)
    cols = attack_columns(source)
    if len(cols) > MAX_ATTACK_COLUMNS:
        cols = [cols[i] for i in np.sort(rng.choice(len(cols), MAX_ATTACK_COLUMNS, replace=False))]
    ori, control, syn = (_sample(_attack_frame(d, source, cols), n, rng)
                         for d, n in ((train, ATTACK_ROWS), (holdout, ATTACK_ROWS), (synthetic, SYNTHETIC_ROWS)))
    n_attacks = min(N_ATTACKS, len(ori), len(control))
    out: dict[str, float] = {}
    with seeded(seed):  # anonymeter draws its targets from the global RNG; the caller's state comes back
        _run(out, ori, control, syn, cols, n_attacks, rng, seed)
    return out


@functools.cache
def _evaluators() -> tuple[type, type, type]:
    """anonymeter's evaluators, its numba kernels set to cache their machine code on disk:
    compiling them costs ~40 s on this 2-core machine in every new process, loading ~1 s."""
    from anonymeter.evaluators import InferenceEvaluator, LinkabilityEvaluator, SinglingOutEvaluator
    from anonymeter.neighbors import mixed_types_kneighbors as kernels

    for kernel in (kernels.gower_distance, kernels._nearest_neighbors):
        kernel.enable_caching()
    return SinglingOutEvaluator, LinkabilityEvaluator, InferenceEvaluator


def _run(out: dict[str, float], ori: pd.DataFrame, control: pd.DataFrame, syn: pd.DataFrame, cols: list[str],
         n_attacks: int, rng: np.random.Generator, seed: int) -> None:
    """The three attacks, results into `out`."""
    SinglingOutEvaluator, LinkabilityEvaluator, InferenceEvaluator = _evaluators()

    with warnings.catch_warnings():  # anonymeter warns when an attack is weak; the CI says so
        warnings.simplefilter("ignore")
        logging.getLogger("anonymeter").setLevel(logging.ERROR)
        singling = SinglingOutEvaluator(ori, syn, control=control, n_attacks=n_attacks,
                                        n_cols=min(SINGLING_OUT_COLS, len(cols)), seed=seed)
        out |= _risk("singling_out", singling.evaluate(mode="multivariate" if len(cols) > 1 else "univariate")
                     .risk(confidence_level=CONFIDENCE))
        if len(cols) < 2:
            log.info("linkability and inference need two attack columns, this data has %d", len(cols))
            return
        halves = (cols[0::2], cols[1::2])  # alternate columns: each half mixes kinds, as two real sources would
        link = LinkabilityEvaluator(ori, syn, halves, control=control, n_attacks=n_attacks).evaluate(n_jobs=1)
        out |= _risk("linkability", link.risk(confidence_level=CONFIDENCE))
        worst = None
        for secret in _secrets(cols, rng):
            aux = [c for c in cols if c != secret]
            inference = InferenceEvaluator(ori, syn, aux, secret, regression=ori[secret].dtype.kind == "f",
                                           control=control, n_attacks=n_attacks).evaluate(n_jobs=1)
            risk = inference.risk(confidence_level=CONFIDENCE)
            if worst is None or risk.value > worst.value:
                worst = risk
        out |= _risk("inference", worst)
    return out
