"""What every SDV-backed generator shares: SDV metadata built from our profile, seeded
sampling, and a pickle checkpoint loaded through `generators.safe_pickle`.

SDV (BUSL-1.1) is imported only inside functions, so the rest of synthpipe runs without it.
"""

from __future__ import annotations

import contextlib
import io
import threading
import warnings
from pathlib import Path
from typing import Any, Iterator


from generators import safe_pickle
from generators.base import Generator, resolve_device
from pipeline.core.plan import Chunk
from pipeline.core.schema import ColumnKind, TableProfile

TABLE = "table"  # SDV 2.0 takes and returns a dict of tables; ours has one
SYNTHESIZER_FILE = "synthesizer.pkl"

# SDV's samplers keep their random state on the synthesizer and ctgan / deepecho swap the
# process-wide numpy / torch generators while they draw: chunks sampled concurrently (a
# threaded task runner) would interleave. One lock keeps every chunk reproducible.
_SAMPLING = threading.Lock()

# Our column kinds -> SDV sdtypes, set explicitly rather than trusting SDV's detection
# (which would e.g. call a small-cardinality integer column categorical).
SDTYPES: dict[ColumnKind, str] = {
    "numeric": "numerical",
    "integer": "numerical",
    "categorical": "categorical",
    "boolean": "boolean",
    "datetime": "datetime",
    "time": "categorical",  # SDV's own detection would too: its text values come back and conform re-snaps them
    "id": "id",
}


def sdv_metadata(profile: TableProfile, **table: Any) -> Any:
    """An SDV `Metadata` with one table whose sdtypes come from `profile`.

    `table` adds table-level keys (`sequence_key`, `sequence_index`) and may override
    a column's sdtype through `columns={name: {...}}`."""
    from sdv.metadata import Metadata

    columns = {c.name: {"sdtype": SDTYPES[c.kind]} for c in profile.columns}
    columns.update(table.pop("columns", {}))
    return Metadata.load_from_dict({"tables": {TABLE: {"columns": columns, **table}}})


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence SDV's advisory warnings (rdt's "pickle holds original data", SDV's
    "unable to enforce rounding"): synthpipe reports what matters itself."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def no_bars() -> Iterator[None]:
    """Swallow the tqdm bar SDV always draws on stderr for conditional sampling (it has
    no switch): synthpipe shows its own progress. Wrap only that call, since stderr is
    process-wide."""
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def reseed(synthesizer: Any, seed: int) -> None:
    """Put an SDV single-table synthesizer's sampling state at `seed`.

    `reset_sampling` returns rdt's transformers to their post-fit state; SDV has no public
    way to seed the model itself, so this uses its `_set_random_state` (what SDV calls
    with a fixed seed before the first sample)."""
    synthesizer.reset_sampling()
    synthesizer._set_random_state(seed)


class SDVGenerator(Generator):
    """Base of the SDV-backed generators. Subclasses build the SDV synthesizer in `_fit`
    and keep it in `synthesizer_`; the fitted source profile is `profile_`."""

    synthesizer_: Any
    profile_: TableProfile

    @property
    def enable_gpu(self) -> bool:
        return resolve_device(self.device).type == "cuda"

    def sample_chunk(self, chunk: Chunk, **kwargs: Any) -> Any:
        """As the base class, one chunk at a time per process (see `_SAMPLING`)."""
        with _SAMPLING:
            return super().sample_chunk(chunk, **kwargs)

    def canonical(self, conditions: dict[str, Any]) -> dict[str, Any]:
        """Conditions with each value replaced by the source value it names ("true" -> True,
        "2008" -> 2008), so SDV compares like with like. Run after `check_conditions`."""
        return {
            column: next(v for v in self.condition_values_[column] if v == value or str(v) == str(value))
            for column, value in conditions.items()
        }

    # ---- checkpoint: config.json (base class) + the synthesizer pickle -------------------

    def _export(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """JSON state only; the learned model is the synthesizer pickle written by `save`
        (so weights.pt holds no tensors for SDV generators)."""
        return {"profile": self.profile_.model_dump(mode="json"), **self._export_extra()}, {}

    def _restore(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        self.profile_ = TableProfile.model_validate(state["profile"])
        self._restore_extra(state)

    def _export_extra(self) -> dict[str, Any]:
        """More JSON state a subclass keeps beside the profile."""
        return {}

    def _restore_extra(self, state: dict[str, Any]) -> None:
        """Inverse of `_export_extra`."""

    def save(self, path: str | Path) -> None:
        """config.json (name, params, conditions, profile) plus `synthesizer.pkl`."""
        super().save(path)
        with quiet():  # rdt warns that pickles hold fitted mappings; we know
            safe_pickle.dump(self.synthesizer_, Path(path) / SYNTHESIZER_FILE)

    @classmethod
    def load(cls, path: str | Path) -> "SDVGenerator":
        """Rebuild from `save`; the pickle goes through the allowlisting unpickler, so a
        tampered checkpoint raises `UnsafeCheckpointError` instead of running code."""
        model = super().load(path)
        with quiet():
            model.synthesizer_ = safe_pickle.load(Path(path) / SYNTHESIZER_FILE)
        return model
