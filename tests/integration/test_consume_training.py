"""Downstream training through pipeline.consume, on runs written by real generators with
the pipeline's own run-folder, sink and publish steps.

- A logistic regression trained on SDV GaussianCopula output (fitted on penguins)
  through `load(...).torch()` must classify the real holdout species far better than
  chance.
- Images of a run conditioned on one digit keep the class index of the generator's
  fitted class list, so a classifier trained on it agrees with one trained on any run."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from generators import get
from pipeline.consume import load
from pipeline.core.images import table_to_images
from pipeline.core.manifest import GeneratorRecord, Manifest, SourceRecord, Status
from pipeline.core.plan import plan_parts
from pipeline.core.runfiles import count_rows
from pipeline.jobs import parse_job
from pipeline.publish import finish_run, open_run
from pipeline.sink import write_part
from pipeline.split import split_source
from pipeline.sources import fingerprint
from pipeline.torch_dataset import encode_target

ROOT = Path(__file__).resolve().parents[2]

SYNTHETIC_ROWS = 2000
EPOCHS = 15
# Three species, 44% Adelie: predicting the majority class scores about 0.44. Measured
# here: 0.73 on the real holdout (scikit-learn's LogisticRegression on the same copula
# output: 0.72; on the real training rows: 1.00, the copula's loss, not the reader's).
# A reader that paired rows with the wrong labels would score about chance.
MIN_REAL_ACCURACY = 0.6


def publish(spec, generator, source, model_dir: Path) -> None:
    """What the flow does after fitting, minus validation: run folder, parts, manifest, LATEST."""
    generator.save(model_dir)
    run = open_run(spec, model_dir, source_fingerprint=fingerprint(spec.source.path))
    for part in plan_parts(spec.sample.rows, spec.sample.batch_size, spec.source.modality,
                           seed=spec.sample.seed, conditions=spec.sample.conditions):
        write_part(generator, part, run.tmp, provenance={"job": spec.name, "run_id": run.run_id})
    schema = source.profile.model_dump(mode="json") if hasattr(source, "profile") else None
    finish_run(run, Manifest(
        run_id=run.run_id,
        status=Status.PUBLISHED,
        job=spec.model_dump(mode="json"),
        generator=GeneratorRecord(name=generator.name, params=generator.params.model_dump(mode="json"),
                                  cache_key="test", reused_fit=False),
        seed=spec.sample.seed,
        source=SourceRecord(path=str(spec.source.path), fingerprint=fingerprint(spec.source.path)),
        schema=schema,
        layout=source.layout(),
        rows={"source": len(source), "synthetic": count_rows(run.tmp)},
    ))


@pytest.fixture(scope="module")
def published(tmp_path_factory, penguins):
    """A published copula run of job `penguins` and the real holdout it never saw."""
    root = tmp_path_factory.mktemp("synthetic")
    spec = parse_job({
        "name": "penguins",
        "source": {"modality": "tabular", "path": "data/sources/penguins.csv"},
        "generator": {"family": "copula"},
        "sample": {"rows": SYNTHETIC_ROWS, "seed": 3, "batch_size": 500},
        "output": str(root),
    })
    train, holdout = split_source(penguins, 0.3, seed=0)
    generator = get("tabular/copula")(device="cpu").fit(train)
    publish(spec, generator, penguins, root / "model-cache")
    return root, holdout


def test_logistic_regression_on_synthetic_output_beats_chance_on_real_data(published):
    root, holdout = published
    data = load("penguins", root=root)
    assert data.manifest["rows"]["synthetic"] == SYNTHETIC_ROWS == data.to_pyarrow().count_rows()
    rows = data.torch(target="species", categorical="onehot", shuffle=True)

    # Standardise with the synthetic data's own statistics; a missing value becomes the mean.
    x_all = torch.stack([x for x, _ in rows])
    mean = x_all.nanmean(0)
    std = (x_all - mean).pow(2).nanmean(0).sqrt().clamp_min(1e-6)

    def prepare(x: torch.Tensor) -> torch.Tensor:
        return ((x - mean) / std).nan_to_num(0.0)

    torch.manual_seed(0)
    model = nn.Linear(len(rows.feature_names), len(rows.target_classes))
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(EPOCHS):
        for x, y in DataLoader(rows, batch_size=128):
            optimiser.zero_grad()
            loss_fn(model(prepare(x)), y).backward()
            optimiser.step()

    # Serve: the real holdout encoded by the same encoding (the profile's category order).
    real_x = torch.from_numpy(rows.encoding.encode(holdout.frame))
    real_y = encode_target(holdout.frame["species"], rows.target)
    with torch.no_grad():
        accuracy = (model(prepare(real_x)).argmax(1) == real_y).float().mean().item()
    majority = real_y.bincount().max().item() / len(real_y)
    print(f"real-holdout accuracy {accuracy:.3f} (majority class {majority:.3f})")
    assert accuracy >= MIN_REAL_ACCURACY > majority


def test_image_labels_index_the_fitted_classes_even_when_one_class_is_sampled(tmp_path):
    digits = table_to_images(pq.read_table(ROOT / "data" / "sources" / "digits.parquet").slice(0, 200), label="label")
    spec = parse_job({
        "name": "digits",
        "source": {"modality": "image", "path": "data/sources/digits.parquet", "label": "label"},
        "generator": {"family": "vae"},
        "sample": {"rows": 24, "seed": 1, "batch_size": 16, "conditions": {"label": 3}},
        "output": str(tmp_path),
    })
    generator = get("image/vae")(device="cpu", steps=20, width=8, levels=1, latent_dim=4).fit(digits)
    publish(spec, generator, digits, tmp_path / "model-cache")
    images = load("digits", root=tmp_path).torch()
    assert images.classes == list(range(10))  # the generator's classes, not just the 3s in this run
    batches = list(DataLoader(images, batch_size=10))
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    assert x.shape == (24, 1, 8, 8) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert y.tolist() == [3] * 24
