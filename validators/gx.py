"""The one module that knows Great Expectations 1.x.

An ephemeral, in-memory GX context (no project folder, no analytics, no progress bars),
running a suite on a pandas DataFrame, and suites / results to JSON and back. GX takes
seconds to import, so it is imported here lazily, inside functions, never at CLI
start-up; the rest of synthpipe handles suites and results as JSON dicts."""

from __future__ import annotations

import json
import logging
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipeline.core.errors import BadInputError

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite

# SUMMARY: counts and the first 20 unexpected values, enough to say what failed
# without copying millions of rows into the result JSON.
RESULT_FORMAT = "SUMMARY"
_lock = threading.RLock()


@lru_cache(maxsize=1)
def _context():
    """One ephemeral (in-memory) context per process. GX needs an active context even to
    build a suite."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # not its temp-dir chatter
    context = gx.get_context(mode="ephemeral")
    # GX draws a "Calculating Metrics" bar per validation; synthpipe shows its own progress.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _ready():
    """The context, created once even when threads ask for it at the same time."""
    with _lock:
        return _context()


@lru_cache(maxsize=1)
def _batch_definition():
    """One pandas whole-dataframe batch definition, reused by every validation in the
    process (creating it costs more than validating a chunk)."""
    asset = _ready().data_sources.add_pandas("synthpipe").add_dataframe_asset("frame")
    return asset.add_batch_definition_whole_dataframe("whole")


def expectation(kind: str, **kwargs: Any):
    """Build a GX expectation by class name (`"ExpectColumnValuesToBeBetween"`), so that
    suite builders need not import GX at module level."""
    import great_expectations.expectations as gxe

    return getattr(gxe, kind)(**kwargs)


def new_suite(name: str, expectations: list, meta: dict | None = None) -> "ExpectationSuite":
    import great_expectations as gx

    _ready()
    # Passed whole, not added one by one: `add_expectation` compares each new expectation
    # with every one before it (938 expectations of a 300-column contract: 38 CPU s).
    return gx.ExpectationSuite(name=name, meta=meta or {}, expectations=list(expectations))


def validate(suite: "ExpectationSuite", frame: pd.DataFrame) -> dict[str, Any]:
    """Run `suite` on `frame`; return the GX validation result as a JSON-ready dict.

    An expectation on a missing column does not raise: GX records the exception and
    marks that expectation failed, which is what a contract needs."""
    with _lock:  # one shared context: validations from task-runner threads take turns
        batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(suite, result_format=RESULT_FORMAT)
    return _jsonable(result.to_json_dict())


def merge_results(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine the results of one suite run on consecutive chunks of a dataset into one
    result, as if the suite had run on the whole dataset at once.

    Row-wise checks pass only if they pass on every chunk; counts are summed; a `mostly`
    check (a bounded share of nulls) is re-decided from the summed counts, because a
    small last chunk can exceed a share that the whole dataset respects."""
    if len(results) == 1:
        return results[0]
    merged = json.loads(json.dumps(results[0]))
    by_key = [{_key(r): r for r in res["results"]} for res in results]
    for entry in merged["results"]:
        parts = [chunk[_key(entry)] for chunk in by_key]
        entry["success"] = all(p["success"] for p in parts)
        failing = next((p for p in parts if not p["success"]), parts[0])
        entry["exception_info"] = failing["exception_info"]
        entry["result"] = _merge_counts([p["result"] for p in parts], failing["result"])
        mostly = entry["expectation_config"]["kwargs"].get("mostly")
        raised = any(exception_message(p) for p in parts)
        if mostly is not None and not raised and "element_count" in entry["result"]:
            r = entry["result"]
            checked = r["element_count"] - r.get("missing_count", 0)
            entry["success"] = checked == 0 or 1 - r["unexpected_count"] / checked >= mostly
    n_ok = sum(e["success"] for e in merged["results"])
    n = len(merged["results"])
    merged["success"] = n_ok == n
    merged["statistics"] = {
        "evaluated_expectations": n,
        "successful_expectations": n_ok,
        "unsuccessful_expectations": n - n_ok,
        "success_percent": 100.0 * n_ok / n if n else None,
    }
    merged["meta"]["synthpipe_chunks"] = len(results)
    return merged


def exception_message(entry: dict[str, Any]) -> str | None:
    """The error GX recorded instead of evaluating an expectation (a missing column, say).
    GX nests it under one key per failed metric, or puts it at the top level."""
    info = entry.get("exception_info") or {}
    for item in [info, *[v for v in info.values() if isinstance(v, dict)]]:
        if item.get("raised_exception"):
            return str(item.get("exception_message") or "an exception was raised")
    return None


def _key(entry: dict[str, Any]) -> str:
    """Identify an expectation across runs: its type and arguments (GX leaves the id of an
    unsaved suite's expectations empty; the batch id differs per chunk)."""
    config = entry["expectation_config"]
    kwargs = {k: v for k, v in config["kwargs"].items() if k != "batch_id"}
    return json.dumps([config["type"], kwargs], sort_keys=True, default=str)


def _merge_counts(parts: list[dict[str, Any]], failing: dict[str, Any]) -> dict[str, Any]:
    """Sum element / unexpected / missing counts and recompute their percentages; keep the
    observed value and unexpected examples of the first failing chunk."""
    out = dict(failing)
    if "element_count" not in failing:
        return out
    for field in ("element_count", "unexpected_count", "missing_count"):
        if field in failing:
            out[field] = sum(p.get(field, 0) for p in parts)
    total, missing = out["element_count"], out.get("missing_count", 0)
    unexpected = out["unexpected_count"]
    out["unexpected_percent_total"] = 100.0 * unexpected / total if total else None
    nonmissing = total - missing
    out["unexpected_percent"] = 100.0 * unexpected / nonmissing if nonmissing else None
    if "missing_count" in out:
        out["missing_percent"] = 100.0 * missing / total if total else None
        out["unexpected_percent_nonmissing"] = out["unexpected_percent"]
    examples = [v for p in parts for v in p.get("partial_unexpected_list", [])]
    out["partial_unexpected_list"] = examples[:20]
    out.pop("partial_unexpected_index_list", None)  # indices are per chunk, meaningless merged
    out.pop("partial_unexpected_counts", None)
    return out


def _jsonable(obj: Any) -> Any:
    """Round trip through JSON with numpy scalars made plain: some GX results carry numpy
    bools and ints that `json.dumps` refuses."""
    return json.loads(json.dumps(obj, default=_plain))


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def suite_to_json(suite: "ExpectationSuite") -> dict[str, Any]:
    return _jsonable(suite.to_json_dict())


def suite_from_json(data: dict[str, Any]) -> "ExpectationSuite":
    """Rebuild a suite and check no expectation was lost: GX silently drops expectation
    types it does not know, and a suite with fewer expectations passes vacuously."""
    import great_expectations as gx

    _ready()
    expected = len(data.get("expectations", []))
    try:
        suite = gx.ExpectationSuite(**data)
    except Exception as err:  # GX raises many types for a malformed suite
        raise BadInputError(f"cannot load expectation suite {data.get('name')!r}: {err}") from None
    if len(suite.expectations) != expected:
        raise BadInputError(
            f"expectation suite {suite.name!r} lists {expected} expectations but "
            f"{len(suite.expectations)} loaded: an expectation type is unknown to this GX version"
        )
    return suite


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write via a temporary file and rename, so a reader never sees half a JSON file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_plain))
    os.replace(tmp, path)
    return path


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BadInputError(f"{path} not found: validate the run first (`synth validate RUN_DIR`)") from None
    except json.JSONDecodeError as err:
        raise BadInputError(f"{path} is not valid JSON ({err}): re-run `synth validate RUN_DIR`") from None
