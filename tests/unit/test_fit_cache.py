"""The fit cache key: a scheduled run reuses a model only when nothing that shaped it changed."""

from __future__ import annotations

from pathlib import Path

from generators import get
from pipeline.fitting import cache_key, configured
from pipeline.jobs import load_job

DEMO = Path(__file__).resolve().parents[2] / "data" / "jobs" / "penguins-demo.yaml"


def test_a_new_model_version_refits_instead_of_loading_an_old_model(monkeypatch):
    spec = load_job(DEMO)
    params = configured(spec).params.model_dump(mode="json")
    before = cache_key(spec, "fingerprint", params)
    assert cache_key(spec, "fingerprint", params) == before  # stable: the same settings reuse the fit
    generator = get(spec.generator_name)
    monkeypatch.setattr(generator, "model_version", generator.model_version + 1)
    assert cache_key(spec, "fingerprint", params) != before
