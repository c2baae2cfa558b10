"""What is published is what was validated: a run finished by `pipeline.publish` records
every part file's size and sha256; `consume.load` refuses a run whose Parquet was
replaced (here by the training rows, the worst case) and `synth validate` names the file."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.consume import load
from pipeline.core.errors import IntegrityError
from pipeline.core.manifest import GeneratorRecord, Manifest, SourceRecord, read_manifest
from pipeline.publish import finish_run
from pipeline.revalidate import revalidate
from pipeline.runs import RunFolder, new_run_id
from pipeline.sink import with_provenance
from pipeline.split import split_source

JOB = "penguins-integrity"


@pytest.fixture()
def published(tmp_path, penguins):
    """A published run whose two parts hold the real holdout rows (what a leak-free
    generator could have written), finished by the pipeline's own publish step."""
    train, holdout = split_source(penguins, 0.2, seed=0)
    run = RunFolder(tmp_path / JOB, new_run_id()).create()
    half = len(holdout) // 2
    for i, part in enumerate((holdout.frame.iloc[:half], holdout.frame.iloc[half:])):
        table = with_provenance(pa.Table.from_pandas(part, preserve_index=False), {"job": JOB, "part": i})
        pq.write_table(table, run.tmp / f"part-{i:05d}.parquet")
    manifest = Manifest(
        run_id=run.run_id, status="published", job={"name": JOB, "source": {"modality": "tabular"}},
        generator=GeneratorRecord(name="tabular/copula", params={}, cache_key="-", reused_fit=False), seed=0,
        source=SourceRecord(path="data/sources/penguins.csv", fingerprint="-"), rows={"synthetic": len(holdout)},
    )
    return finish_run(run, manifest), train


def test_the_manifest_records_size_and_sha256_of_every_part(published):
    run_dir, _ = published
    files = read_manifest(run_dir).files
    assert sorted(files) == ["part-00000.parquet", "part-00001.parquet"]
    for name, record in files.items():
        data = (run_dir / name).read_bytes()
        assert record.size == len(data)
        assert record.sha256 == hashlib.sha256(data).hexdigest()
    assert len(load(JOB, root=run_dir.parent.parent, verify=True).to_pandas()) == read_manifest(run_dir).rows["synthetic"]


def test_parquet_replaced_by_training_rows_is_refused(published):
    run_dir, train = published
    pq.write_table(pa.Table.from_pandas(train.frame, preserve_index=False), run_dir / "part-00001.parquet")
    with pytest.raises(IntegrityError, match="part-00001.parquet is .* bytes, the manifest says"):
        load(JOB, root=run_dir.parent.parent)  # sizes are checked on every load
    with pytest.raises(IntegrityError, match="part-00001.parquet"):
        revalidate(run_dir)  # `synth validate` names the file, before judging the data
    assert IntegrityError.exit_code == 2


def test_same_size_tampering_is_caught_by_verify(published):
    run_dir, _ = published
    path = run_dir / "part-00000.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF  # one byte inside the data pages: same size, other contents
    path.write_bytes(bytes(data))
    root = run_dir.parent.parent
    assert load(JOB, root=root).run_dir == run_dir  # a size check cannot see it ...
    with pytest.raises(IntegrityError, match="part-00000.parquet has other contents"):
        load(JOB, root=root, verify=True)  # ... the sha256 does


def test_an_added_or_removed_part_is_refused(published):
    run_dir, train = published
    pq.write_table(pa.Table.from_pandas(train.frame, preserve_index=False), run_dir / "part-00002.parquet")
    with pytest.raises(IntegrityError, match="part-00002.parquet is not in the manifest"):
        load(JOB, root=run_dir.parent.parent)
    (run_dir / "part-00002.parquet").unlink()
    (run_dir / "part-00000.parquet").unlink()
    with pytest.raises(IntegrityError, match="part-00000.parquet is missing"):
        load(JOB, root=run_dir.parent.parent)
