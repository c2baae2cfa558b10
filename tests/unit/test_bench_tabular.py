"""bench/tabular.py's own logic: the cache key tracks params and code per generator,
the contract's failures are sorted by what failed, the SDV wrappers keep SDV's own
defaults; and the std-ratio metric it reports."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

from bench import tabular as bench
from generators import get
from validators.metrics.tabular import std_ratios


def _files(name: str) -> set[str]:
    return {p.relative_to(bench.ROOT).as_posix() for p in bench.imported_files(Path(inspect.getsourcefile(get(name))))}


def test_code_version_follows_each_generators_own_modules():
    ours, gan = _files("tabular/diffusion"), _files("tabular/gan")
    assert {"generators/tabular/diffusion.py", "generators/tabular/encoding.py", "generators/diffusion.py"} <= ours
    assert "generators/tabular/sdv.py" not in ours and "generators/sdv_base.py" not in ours
    assert {"generators/tabular/sdv.py", "generators/sdv_base.py", "generators/safe_pickle.py"} <= gan
    assert "generators/tabular/diffusion.py" not in gan  # a change to ours leaves the peers' entries valid


def test_cache_key_changes_with_table_params_and_code():
    key = bench.cache_key("AER/HMDA", "tabular/vae", {"epochs": 300}, "abc")
    assert key == bench.cache_key("AER/HMDA", "tabular/vae", {"epochs": 300}, "abc")
    assert len({key, bench.cache_key("ISLR/Wage", "tabular/vae", {"epochs": 300}, "abc"),
                bench.cache_key("AER/HMDA", "tabular/vae", {"epochs": 30}, "abc"),
                bench.cache_key("AER/HMDA", "tabular/vae", {"epochs": 300}, "abd")}) == 4


def test_store_keeps_other_entries(tmp_path):
    path = tmp_path / "tabular.json"
    bench.store("a", {"x": 1}, path)
    bench.store("b", {"x": 2}, path)
    assert bench.read_cache(path) == {"a": {"x": 1}, "b": {"x": 2}}


@pytest.mark.parametrize("name", sorted(bench.SDV_CLASSES))
def test_sdv_wrappers_run_at_sdvs_own_defaults(name):
    assert bench.sdv_default_mismatches(name) == {}


def test_contract_failures_sorted_by_what_failed(penguins):
    real = penguins.frame
    assert not any(bench.contract_columns(penguins, real).values())
    bad = real.copy()
    bad.loc[0, "bill_depth_mm"] = 100.0  # beyond the source's range
    bad.loc[1, "island"] = "Atlantis"  # a category the source never has
    bad["year"] = bad["year"].astype("float64")  # the same whole years, another dtype
    got = bench.contract_columns(penguins, bad)
    assert got["support"] == ["bill_depth_mm", "island"] and got["dtype"] == ["year"]
    bad.loc[2, "year"] = 2006.0  # a year the source never has
    assert bench.contract_columns(penguins, bad)["support"] == ["bill_depth_mm", "island", "year"]


def test_std_ratios(penguins):
    real = penguins.frame
    assert all(np.isclose(r, 1.0) for r in std_ratios(real, real, penguins.profile).values())
    shrunk = real.assign(body_mass_g=real["body_mass_g"].mean() + 0.5 * (real["body_mass_g"] - real["body_mass_g"].mean()))
    assert np.isclose(std_ratios(real, shrunk, penguins.profile)["body_mass_g"], 0.5)
