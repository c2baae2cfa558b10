"""What the gate decided and why, in words a data engineer can act on.

A GX validation result is precise but verbose; `failures` turns each failing
expectation into one line: suite, column or metric, what was observed, what was
expected (and, for metric thresholds, why that bound)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.core.manifest import Failure, Status
from validators.gx import exception_message

SUITES = ("contract", "fidelity", "privacy")
MAX_EXAMPLES = 5  # unexpected values quoted per failure


@dataclass
class Outcome:
    """`status` is published only when every suite passed."""

    suites: dict[str, bool]
    failures: list[Failure]
    metrics: dict[str, float]
    # the synthetic records the metrics were computed on, for the report (not stored)
    synthetic: Any = field(default=None, repr=False, compare=False)
    status: Status = field(init=False)

    def __post_init__(self) -> None:
        self.status = Status.PUBLISHED if self.suites and all(self.suites.values()) else Status.QUARANTINED

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "suites": dict(self.suites), "metrics": dict(self.metrics),
                "failures": [asdict(f) for f in self.failures]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Outcome":
        return cls(suites=data["suites"], metrics=data["metrics"], failures=[Failure(**f) for f in data["failures"]])


def _short(value: Any, limit: int = 10) -> str:
    if isinstance(value, (list, tuple)):
        items = [_short(v) for v in value[:limit]]
        more = f", … {len(value) - limit} more" if len(value) > limit else ""
        return "[" + ", ".join(items) + more + "]"
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value) if isinstance(value, str) else str(value)


def _expected(kind: str, kwargs: dict[str, Any]) -> str:
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if "value_set" in kwargs:
        return f"one of {_short(kwargs['value_set'])}"
    if "type_list" in kwargs:
        return f"a dtype in {_short(kwargs['type_list'], 4)}"
    if "column_list" in kwargs:
        return "unique combinations" if "unique" in kind else _short(kwargs["column_list"], 20)
    if lo is not None and hi is not None:
        return f"between {_short(lo)} and {_short(hi)}"
    if lo is not None:
        return f"at least {_short(lo)}"
    if hi is not None:
        return f"at most {_short(hi)}"
    if kind == "expect_column_values_to_not_be_null":
        mostly = kwargs.get("mostly")
        return "no nulls" if mostly is None else f"at most {1 - mostly:.1%} nulls"
    return kind.removeprefix("expect_").replace("_", " ")


def _observed(entry: dict[str, Any]) -> str:
    error = exception_message(entry)
    if error:
        # GX's type check looks a missing column up in a list and fails on the index
        missing = "does not exist" in error or ("type_list" in entry["expectation_config"]["kwargs"]
                                                and "index out of range" in error)
        return "column not found" if missing else f"error: {error}"
    result = entry.get("result") or {}
    if "observed_value" in result:
        value = result["observed_value"]
        return "no value (NaN)" if value is None else _short(value, 20)
    if "unexpected_count" in result:
        total = result.get("element_count", 0)
        if result["unexpected_count"] == 0:
            return f"none of {total:,} rows"
        examples = _short(result.get("partial_unexpected_list", [])[:MAX_EXAMPLES])
        share = f"{result['unexpected_count'] / total:.1%}" if total else "?"
        return f"{result['unexpected_count']:,} of {total:,} rows ({share}), e.g. {examples}"
    return "failed"


def describe(suite: str, entry: dict[str, Any]) -> Failure:
    """Any expectation result (passing ones too, for the report) in words."""
    config = entry["expectation_config"]
    kwargs, meta = config["kwargs"], config.get("meta") or {}
    target = kwargs.get("column") or ("table" if "table" in config["type"] else ", ".join(kwargs.get("column_list", [])))
    return Failure(suite=suite, target=target, check=meta.get("check", config["type"]),
                   observed=_observed(entry), expected=_expected(config["type"], kwargs), why=meta.get("why", ""))


def failures(suite: str, result: dict[str, Any]) -> list[Failure]:
    """One `Failure` per failing expectation of a GX validation result (JSON dict)."""
    return [describe(suite, entry) for entry in result["results"] if not entry["success"]]
