"""The sequence codec: a time-series source <-> padded tensors, and the per-entity facts
a sequence model should not have to learn. `SequenceGenerator` (base.py) fits one per
source and keeps it in its checkpoint.

A sampled entity starts as a *plan*: one source entity drawn at random (restricted to
those matching the conditions) gives its static values, its length and its start time
together, so their joint distribution is the source's own. Static columns are then
exactly a real entity's (a conditional model would have to learn a joint distribution
from one row per entity, often a few hundred rows); the time column is rebuilt from
that start with the source's frequency; and the sequence model only generates the
features, conditioned on the plan (static encoding, length, start). Conditions on a
static column therefore always produce exactly that value. Entity ids are new:
`offset + i`, unique across the chunks of one request.

Scale across entities (panels): series of one panel may differ by orders of magnitude
(Produc's gsp: 4,354 to 464,550). One pooled encoding then gives the large entities a
thin upper tail that a VAE averages away. So each entity's continuous features are
divided by their own scale after subtracting their own mean, the sequence model sees
them normalised, and the plan carries each entity's (mean, std) as extra conditioning
(signed log, standardised over entities); decoding puts the scale back. A sampled
entity's scale is drawn fresh, from a Gaussian fitted to the entities' scale vectors
(signed-log means, log stds): a real entity's exact mean and std with a smooth shape
is that entity again (Produc's trending states: 94 % near copies when copied).

A private fit (`generator.privacy`) copies no real plan: its plans are drawn from the
profile alone (`SequenceCodec._public_plans`), with no entity scales and no gap pattern,
and the training sequences still carry their own plans as conditioning, inside the DP-SGD
steps (README, "Differential privacy").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from generators.tabular.encoding import TableEncoder, is_onehot
from pipeline.core.data import TimeSeriesData
from pipeline.core.errors import ConditionError
from pipeline.core.schema import ColumnProfile, TableProfile, conform
from pipeline.core.timegrid import grid_between, grid_frequency, regular_times, time_values

PLAN_CHANNELS = 2  # conditioning channels after the static and scale encodings: length and start, both in [0, 1]
SCALED_KINDS = ("integer", "numeric")  # feature kinds normalised per entity (when continuous, not one-hot)
PUBLIC_PLANS = 1024  # plans a private fit draws from the profile (statics at random, every allowed start)
MAX_GAP_SHARE = 0.5  # a panel's grid at most half gaps; sparser time indexes are laid end to end
ID_DIGITS = 9  # zero-padded text ids sort like numbers up to a billion entities


@dataclass
class SequenceBatch:
    """Training tensors of a source (not the read API's `pipeline.torch_dataset.Sequences`):
    features `x` (N, T, F) zero after each end, `mask` (N, T)
    1.0 where a step exists, and the plan encoding `cond` (N, C)."""

    x: torch.Tensor
    mask: torch.Tensor
    cond: torch.Tensor

    def to(self, device: torch.device) -> "SequenceBatch":
        return SequenceBatch(self.x.to(device), self.mask.to(device), self.cond.to(device))

    def __getitem__(self, idx: torch.Tensor) -> "SequenceBatch":
        return SequenceBatch(self.x[idx], self.mask[idx], self.cond[idx])

    def __len__(self) -> int:
        return self.x.shape[0]


# ---- helpers --------------------------------------------------------------------------


def _subprofile(profile: TableProfile, names: list[str]) -> TableProfile:
    return TableProfile(columns=[profile.column(n) for n in names], n_rows=profile.n_rows)


def _scalar(value: Any) -> Any:
    """A JSON-able condition value: numpy scalars to Python, timestamps to ISO text."""
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value.item() if isinstance(value, np.generic) else value


def signed_log(values: np.ndarray) -> np.ndarray:
    """sign(v) log(1 + |v|): magnitudes from 13 to 152,000 become numbers a network reads."""
    return np.sign(values) * np.log1p(np.abs(values))


def scale_vectors(loc: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(entities, 2 * columns): signed-log means and log stds, what the plan encodes."""
    return np.concatenate([signed_log(loc), np.log(scale)], axis=1)


def entity_scales(frame: pd.DataFrame, entity: str, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) (entities, columns) of each entity's values, nulls skipped, entities in
    order of appearance. A constant (or all-null) series has no std of its own: it gets the
    smallest positive one of its column (1.0 when none), so decoding adds noise at that scale."""
    groups = frame.groupby(entity, sort=False)[columns]
    loc = groups.mean().to_numpy(dtype="float64")
    scale = groups.std(ddof=0).to_numpy(dtype="float64")
    for j in range(len(columns)):
        positive = scale[:, j][scale[:, j] > 0]
        fallback = positive.min() if len(positive) else 1.0
        scale[:, j] = np.where(scale[:, j] > 0, scale[:, j], fallback)
    return np.nan_to_num(loc, nan=0.0), scale


def grid_positions(frame: pd.DataFrame, entity: str, time: str, freq: dict[str, Any]) -> np.ndarray:
    """Each row's step on its entity's grid from the entity's first time (0, 1, 2, 5, ...
    across a gap of two), or its row number within the entity (laid end to end, as
    before gaps were kept) when some time falls off the grid or the grid would be mostly
    gaps (`MAX_GAP_SHARE`: sparse event times would pad every entity to a huge span)."""
    groups = frame.groupby(entity, sort=False)
    rank = groups.cumcount().to_numpy()
    if "step" in freq:
        t = time_values(frame[time]).astype("float64")
        pos = (t - time_values(groups[time].transform("first")).astype("float64")) / freq["step"]
        if not np.allclose(pos, np.round(pos), atol=1e-6):
            return rank
        pos = np.round(pos).astype("int64")
    else:
        pos = np.empty(len(frame), dtype="int64")
        for idx in groups.indices.values():
            stamps = pd.DatetimeIndex(frame[time].iloc[idx])
            where = pd.date_range(stamps[0], stamps[-1], freq=freq["freq"]).get_indexer(stamps)
            if (where < 0).any():
                return rank
            pos[idx] = where
    spans = pd.Series(pos).groupby(groups.ngroup().to_numpy()).max() + 1
    return pos if spans.sum() <= len(frame) / (1 - MAX_GAP_SHARE) else rank


def entity_ids(n: int, offset: int, numeric: bool) -> np.ndarray:
    """Ids for sequences offset .. offset+n-1 of a request: unique across chunks, numbers
    when the source's are, else zero-padded text that sorts like the numbers."""
    numbers = np.arange(offset, offset + n)
    return numbers if numeric else np.array([f"synthetic-{i:0{ID_DIGITS}d}" for i in numbers], dtype=object)


# ---- the codec ------------------------------------------------------------------------


class SequenceCodec:
    """Fitted once per source: feature and static encoders (the shared `TableEncoder`),
    every source entity's plan (static row, length, start) and the time frequency."""

    def fit(self, data: TimeSeriesData, *, entity_scale: bool = False, private: bool = False,
            seed: int = 0) -> "SequenceCodec":
        """`entity_scale`: normalise each panel entity's continuous features by its own
        mean and std (ignored for windows cut from one series and for private fits).
        `private`: encoders from the profile alone and plans drawn from it (`seed`), never
        a real entity's; the real plans then live only in `encode`'s output."""
        frame = data.frame
        self.entity_, self.time_, self.profile_ = data.entity, data.time, data.profile
        self.features_, self.static_ = list(data.features), list(data.static)
        self.private_ = private
        self.scaled_ = [c for c in self.features_
                        if entity_scale and not private and data.windows is None and self._scalable(c)]
        self.loc_, self.scale_ = entity_scales(frame, self.entity_, self.scaled_)
        normal = self.normalised(frame)
        profile = _subprofile(self.profile_, self.features_)
        for i, col in enumerate(profile.columns):
            if col.name in self.scaled_:
                v = normal[col.name]
                profile.columns[i] = ColumnProfile(name=col.name, kind="numeric", dtype="float64",
                                                   null_fraction=col.null_fraction, min=v.min(), max=v.max())
        self.feature_enc_ = TableEncoder().fit(normal, profile, private=private)
        self.freq_ = grid_frequency(frame, self.entity_, self.time_, self.profile_.column(self.time_))
        ent, pos, firsts, self.lengths_ = self._entity_grid(frame)
        self.static_enc_ = TableEncoder().fit(firsts[self.static_], _subprofile(self.profile_, self.static_),
                                              private=private) if self.static_ else None
        self.static_matrix_ = self.static_enc_.transform(firsts[self.static_]) if self.static_enc_ else np.zeros((len(firsts), 0), "float32")
        self.starts_ = time_values(firsts[self.time_])
        self.present_ = np.zeros((len(self.lengths_), self.max_len), dtype=bool)  # steps the source has
        self.present_[ent, pos] = True
        self.stride_ = data.windows[1] if data.windows else None  # steps between source windows, when cut from one series
        if private:
            self._public_plans(np.random.default_rng(seed), data.windows[0] if data.windows else None)
        self._decode_statics()
        return self

    def _entity_grid(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, np.ndarray]:
        """(entity index, grid step) of every row, each entity's first row, and each
        entity's length in grid steps, gaps included."""
        groups = frame.groupby(self.entity_, sort=False)
        ent, pos = groups.ngroup().to_numpy(), grid_positions(frame, self.entity_, self.time_, self.freq_)
        lengths = (pd.Series(pos).groupby(ent).max() + 1).to_numpy().astype("int64")
        return ent, pos, groups.head(1).reset_index(drop=True), lengths

    def _public_plans(self, rng: np.random.Generator, window: int | None) -> None:
        """Replace the real plans with PUBLIC_PLANS drawn from the profile alone: the
        length is the window (a cut series) or the profile's whole time range in steps (a
        panel), with no gaps; the starts are every grid time that leaves room for it
        (evenly thinned to PUBLIC_PLANS); each static column independently uniform over
        the profile's categories, support or [min, max]. Real lengths never exceed this
        length, so the training sequences pad to it."""
        col = self.profile_.column(self.time_)
        grid = grid_between(self.freq_, col.min, col.max, datetime=col.kind == "datetime")
        length = window or len(grid)
        starts = grid[: len(grid) - length + 1]
        starts = starts[np.unique(np.linspace(0, len(starts) - 1, PUBLIC_PLANS).round().astype(int))]
        n = max(len(starts), PUBLIC_PLANS)
        self.starts_ = starts[np.arange(n) % len(starts)].astype(self.starts_.dtype)
        self.lengths_ = np.full(n, length, dtype="int64")
        self.present_ = np.ones((n, length), dtype=bool)
        self.loc_, self.scale_ = np.zeros((n, 0)), np.ones((n, 0))  # no entity scales in a private fit
        if self.static_enc_ is not None:
            draws = {c: self._public_values(self.profile_.column(c), n, rng) for c in self.static_}
            self.static_matrix_ = self.static_enc_.transform(pd.DataFrame(draws))
        else:
            self.static_matrix_ = np.zeros((n, 0), "float32")

    @staticmethod
    def _public_values(col: Any, n: int, rng: np.random.Generator) -> np.ndarray:
        """`n` values of a static column uniform over what its profile allows."""
        if col.categories is not None:
            return np.array(col.categories, dtype=object)[rng.integers(len(col.categories), size=n)]
        if col.support is not None:
            return np.array(col.support)[rng.integers(len(col.support), size=n)]
        return rng.uniform(col.min, col.max, size=n)

    def _scalable(self, name: str) -> bool:
        col = self.profile_.column(name)
        return col.kind in SCALED_KINDS and not is_onehot(col)

    def normalised(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The feature columns of source-entity rows `frame`, each scaled column less its
        entity's mean, over its entity's std."""
        out = frame[self.features_].copy()
        if self.scaled_:
            ent = frame.groupby(self.entity_, sort=False).ngroup().to_numpy()
            values = out[self.scaled_].to_numpy(dtype="float64", na_value=np.nan)
            out[self.scaled_] = (values - self.loc_[ent]) / self.scale_[ent]
        return out

    def scale_vectors(self) -> np.ndarray:
        """(entities, 2 * scaled): each source entity's signed-log means and log stds."""
        return scale_vectors(self.loc_, self.scale_)

    def draw_scales(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """`n` fresh scale vectors from a Gaussian fitted to the source entities' (their
        correlations kept: a populous state has a large gsp and a large emp)."""
        v = self.scale_vectors()
        if not self.scaled_:
            return np.zeros((n, 0))
        if len(v) < 2:
            return np.repeat(v, n, axis=0)
        from sklearn.covariance import LedoitWolf

        cov = LedoitWolf().fit(v).covariance_  # shrunk: a full covariance of few entities fits them, not the panel
        return rng.multivariate_normal(v.mean(axis=0), cov, size=n, method="eigh")

    def scale_matrix(self, vectors: np.ndarray) -> np.ndarray:
        """The plan's scale encoding of scale vectors: standardised as the source's are."""
        v = self.scale_vectors()
        sd = v.std(axis=0) if len(v) else np.ones(0)
        return ((vectors - v.mean(axis=0)) / np.where(sd > 0, sd, 1.0)).astype("float32")

    def _decode_statics(self) -> None:
        """Static rows as they come out of the encoder: what conditions are matched against."""
        if self.static_enc_ is None:
            self.static_frame_ = pd.DataFrame(index=range(len(self.lengths_)))
        else:
            self.static_frame_ = self.static_enc_.inverse_transform(self.static_matrix_)

    # ---- shapes -----------------------------------------------------------------------

    @property
    def max_len(self) -> int:
        return int(self.lengths_.max())

    @property
    def n_features(self) -> int:
        return self.feature_enc_.dim

    @property
    def n_cond(self) -> int:
        return self.static_matrix_.shape[1] + 2 * len(self.scaled_) + PLAN_CHANNELS

    def condition_values(self) -> dict[str, list[Any]]:
        """Per static column, the values a condition may ask for."""
        return {c: [_scalar(v) for v in sorted(self.static_frame_[c].dropna().unique())] for c in self.static_}

    def column_channels(self) -> np.ndarray:
        """(feature columns, channels) 1.0 where a channel encodes that column (its value
        channel and its one-hot span): what is given together when a column is given."""
        out = np.zeros((len(self.features_), self.n_features), dtype="float32")
        for i, name in enumerate(self.features_):
            lay = self.feature_enc_.column_layout(name)
            if lay.value is not None:
                out[i, lay.value] = 1.0
            if lay.span is not None:
                out[i, lay.span[0] : lay.span[1]] = 1.0
        return out

    def value_channels(self) -> np.ndarray:
        """(channels,) 1.0 on each continuous column's value channel (not one-hot spans or
        missing flags): the channels whose level a continuation carries on."""
        out = np.zeros(self.n_features, dtype="float32")
        for name in self.features_:
            lay = self.feature_enc_.column_layout(name)
            if lay.value is not None:
                out[lay.value] = 1.0
        return out

    def known_values(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(values, given) (n, channels) of the feature columns `frame` has: encoded, and
        1.0 on their channels; the channels of absent columns are 0 and not given."""
        present = [c for c in self.features_ if c in frame.columns]
        filler = self.feature_enc_.inverse_transform(np.zeros((1, self.n_features)))  # any valid row
        full = filler.iloc[np.zeros(len(frame), dtype=int)].reset_index(drop=True)
        for c in present:
            full[c] = frame[c].to_numpy()
        rows = np.array([self.features_.index(c) for c in present], dtype=int)
        given = np.broadcast_to(self.column_channels()[rows].sum(axis=0) > 0, (len(frame), self.n_features))
        return self.feature_enc_.transform(full) * given, given.astype("float32")

    def nearest_windows(self, times: np.ndarray) -> np.ndarray:
        """The source window starting nearest each of `times` (`time_values` units): the
        plan (static values, start channel) of a long path's window at that time."""
        starts = self.starts_.astype("float64")  # windows in time order
        if len(starts) == 1:
            return np.zeros(len(times), dtype=int)
        right = np.clip(np.searchsorted(starts, times), 1, len(starts) - 1)
        left = right - 1
        return np.where(times - starts[left] <= starts[right] - times, left, right)

    # ---- source -> tensors ------------------------------------------------------------

    def plan_matrix(self, rows: np.ndarray, scales: np.ndarray | None = None,
                    lengths: np.ndarray | None = None) -> torch.Tensor:
        """The conditioning input of plans `rows`: static encoding, scale encoding (of
        `scales`, else the plans' own), length (`lengths`, else the plans' own) / max
        length, start scaled to [0, 1] over the plans' starts."""
        scale_vectors = self.scale_vectors()[rows] if scales is None else scales
        lengths = self.lengths_[rows] if lengths is None else lengths
        return self._plan(self.static_matrix_[rows], scale_vectors, lengths, self.starts_[rows])

    def _plan(self, statics: np.ndarray, scale_vectors: np.ndarray, lengths: np.ndarray,
              starts: np.ndarray) -> torch.Tensor:
        low, high = self.starts_.astype("float64").min(), self.starts_.astype("float64").max()
        start = (starts.astype("float64") - low) / (high - low) if high > low else np.zeros(len(starts))
        plan = np.column_stack([lengths / self.max_len, start]).astype("float32")
        parts = [statics, self.scale_matrix(scale_vectors), plan]
        return torch.from_numpy(np.concatenate(parts, axis=1).astype("float32"))

    def encode(self, data: TimeSeriesData) -> SequenceBatch:
        """Entities on their grids; a gap's steps are zero and masked out, like padding."""
        frame = data.frame
        ent, pos, firsts, lengths = self._entity_grid(frame)
        n = len(lengths)
        x = np.zeros((n, self.max_len, self.n_features), dtype="float32")
        mask = np.zeros((n, self.max_len), dtype="float32")
        x[ent, pos] = self.feature_enc_.transform(self.normalised(frame))
        mask[ent, pos] = 1.0
        statics = self.static_enc_.transform(firsts[self.static_]) if self.static_enc_ else np.zeros((n, 0), "float32")
        scales = scale_vectors(*entity_scales(frame, self.entity_, self.scaled_))
        cond = self._plan(statics, scales, lengths, time_values(firsts[self.time_]))  # each entity's own plan
        return SequenceBatch(torch.from_numpy(x), torch.from_numpy(mask), cond)

    # ---- plans and tensors -> output --------------------------------------------------

    def draw(self, n: int, rng: np.random.Generator, conditions: dict[str, Any] | None) -> np.ndarray:
        """`n` source entity indices, with replacement, among those matching `conditions`."""
        pool = np.ones(len(self.lengths_), dtype=bool)
        for column, value in (conditions or {}).items():
            s = self.static_frame_[column]
            pool &= ((s == value) | (s.astype(str) == str(value))).to_numpy()
        if not pool.any():
            raise ConditionError(f"no source entity has {conditions}; drop or relax the conditions")
        return rng.choice(np.flatnonzero(pool), size=n, replace=True)

    def entity_ids(self, n: int, offset: int) -> pd.Series:
        """New ids `offset .. offset + n - 1`: numbers when the source's are, else padded text."""
        col = self.profile_.column(self.entity_)
        numeric = col.kind in ("integer", "numeric")
        ids = entity_ids(n, offset, numeric)
        if numeric:
            return pd.Series(ids).astype(col.dtype)
        return pd.Series(ids, dtype="string" if col.dtype == "string" else object)

    def decode(self, x: np.ndarray, rows: np.ndarray, offset: int, *, lengths: np.ndarray | None = None,
               starts: np.ndarray | None = None, scales: np.ndarray | None = None) -> pd.DataFrame:
        """Generated features (n, T, F) of plans `rows` -> long format in the source's schema;
        `lengths` and `starts` default to the plans' own, gaps too (a long path brings its
        own length and start, and has no gaps); `scales` (`draw_scales`) default to the plans'."""
        if lengths is None:
            lengths, present = self.lengths_[rows], self.present_[rows]
        else:
            present = np.ones(x.shape[:2], dtype=bool)
        starts = self.starts_[rows] if starts is None else starts
        grid = np.arange(x.shape[1])[None, :] < lengths[:, None]
        steps = grid & present
        features = self.feature_enc_.inverse_transform(self.missing_at_rate(x[steps]))  # entity by entity, in time order
        repeat = np.repeat(np.arange(len(rows)), steps.sum(axis=1))
        if self.scaled_:  # the plan's own scale back
            v = (self.scale_vectors()[rows] if scales is None else scales)[repeat]
            k = len(self.scaled_)
            loc, scale = np.sign(v[:, :k]) * np.expm1(np.abs(v[:, :k])), np.exp(v[:, k:])
            values = features[self.scaled_].to_numpy(dtype="float64", na_value=np.nan)
            features[self.scaled_] = values * scale + loc
        times = regular_times(self.freq_, starts, lengths)[steps[grid]].reset_index(drop=True)
        tz = getattr(pd.api.types.pandas_dtype(self.profile_.column(self.time_).dtype), "tz", None)
        if tz is not None:
            times = times.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
        statics = self.static_frame_.iloc[rows[repeat]].reset_index(drop=True)
        frame = pd.concat([statics, features.reset_index(drop=True)], axis=1)
        rest = TableProfile(columns=[c for c in self.profile_.columns if c.name not in (self.entity_, self.time_)],
                            n_rows=len(frame))
        frame = conform(frame, rest)
        # the time is on the source's grid by construction; not snapped to the source's range,
        # which a long path (sample.length) runs past
        names = [n for n in self.profile_.names if n != self.entity_]
        frame.insert(names.index(self.time_), self.time_, times.astype(self.profile_.column(self.time_).dtype))
        frame.insert(self.profile_.names.index(self.entity_), self.entity_, self.entity_ids(len(rows), offset)[repeat].reset_index(drop=True))
        return frame

    def missing_at_rate(self, values: np.ndarray) -> np.ndarray:
        """Generated steps (n, channels) with each continuous column's [observed, missing]
        choice thresholded at the source's rate: the steps the model scores most likely
        missing are missing, as many as the source has (argmax alone drew Ozone 18 % or
        37 % missing for airquality's 25 %, by family). A private fit has no source rate
        (it is a count of real values): the model's own choice stands."""
        out = values.copy()
        if self.private_:
            return out
        for lay in self.feature_enc_.layout:
            if lay.value is None or not lay.has_missing or not len(out):
                continue
            lo, hi = lay.span
            score = out[:, lo + 1] - out[:, lo]
            rate = self.profile_.column(lay.name).null_fraction
            missing = np.zeros(len(out), dtype=bool)
            missing[np.argsort(-score, kind="stable")[: int(round(rate * len(out)))]] = True
            out[:, lo:hi] = np.column_stack([~missing, missing]).astype(out.dtype)
        return out

    # ---- persistence ------------------------------------------------------------------

    def state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        feat_meta, feat_tensors = self.feature_enc_.state()
        meta: dict[str, Any] = {
            "entity": self.entity_, "time": self.time_, "profile": self.profile_.model_dump(mode="json"),
            "features": self.features_, "static": self.static_, "freq": self.freq_, "feature_encoder": feat_meta,
            "stride": self.stride_, "scaled": self.scaled_, "private": self.private_,
        }
        tensors: dict[str, Any] = {
            "feature_encoder": feat_tensors,
            "static_matrix": torch.from_numpy(self.static_matrix_),
            "lengths": torch.from_numpy(self.lengths_), "present": torch.from_numpy(self.present_),
            "starts": torch.from_numpy(self.starts_),
            "loc": torch.from_numpy(self.loc_), "scale": torch.from_numpy(self.scale_),
        }
        if self.static_enc_ is not None:
            meta["static_encoder"], tensors["static_encoder"] = self.static_enc_.state()
        return meta, tensors

    @classmethod
    def from_state(cls, meta: dict[str, Any], tensors: dict[str, Any]) -> "SequenceCodec":
        codec = cls()
        codec.entity_, codec.time_ = meta["entity"], meta["time"]
        codec.profile_ = TableProfile.model_validate(meta["profile"])
        codec.features_, codec.static_, codec.freq_ = meta["features"], meta["static"], meta["freq"]
        codec.feature_enc_ = TableEncoder.from_state(meta["feature_encoder"], tensors["feature_encoder"])
        codec.static_enc_ = TableEncoder.from_state(meta["static_encoder"], tensors["static_encoder"]) if "static_encoder" in meta else None
        codec.static_matrix_ = tensors["static_matrix"].numpy()
        codec.lengths_, codec.present_ = tensors["lengths"].numpy(), tensors["present"].numpy()
        codec.starts_ = tensors["starts"].numpy()
        codec.stride_ = meta.get("stride")
        codec.scaled_, codec.private_ = meta["scaled"], meta["private"]
        codec.loc_, codec.scale_ = tensors["loc"].numpy(), tensors["scale"].numpy()
        codec._decode_statics()
        return codec
