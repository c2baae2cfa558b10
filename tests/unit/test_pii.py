"""PII-like id columns (e-mails, person names, phone numbers) come back as realistic fake
values: detected from the data, seeded, unique, never a source value; other text ids
keep their shape-based generator."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from faker import Faker

from generators import get
from pipeline.core.data import TabularData
from pipeline.core.identifiers import fresh_ids, learn_format
from pipeline.core.pii import detect
from pipeline.core.schema import profile_table
from validators import gx
from validators.contract import build_contract_suite, contract_table
from validators.outcome import failures

ROWS = 400
# Stricter than the detector's patterns: what a user would accept as the real thing.
REAL_EMAIL = re.compile(r"^[a-z]+\.[a-z]+\d{0,2}@example\.(com|org|net)$")
REAL_NAME = re.compile(r"^[A-Z][a-z]+ [A-Z][a-z]+$")
REAL_PHONE = re.compile(r"^\([2-9]\d\d\) [2-9]\d\d-\d{4}$")


@pytest.fixture(scope="module")
def source() -> pd.DataFrame:
    """A customer table as Faker (its own seed) writes one: unique e-mails, names and
    phone numbers in Faker's mixed formats, and two text ids that are not PII."""
    fake = Faker("en_US")
    fake.seed_instance(20261202)
    return pd.DataFrame({
        "email": [fake.unique.email() for _ in range(ROWS)],
        "customer_name": [fake.unique.name() for _ in range(ROWS)],
        "first_name": [fake.unique.first_name() for _ in range(ROWS)],
        "phone": [fake.unique.phone_number() for _ in range(ROWS)],
        "order_ref": [f"ORD-{fake.unique.random_int(1000000, 9999999)}" for _ in range(ROWS)],
        "city_name": [f"{fake.unique.city()} {i}" for i in range(ROWS)],
    })


def digits(phone: str) -> str:
    return re.sub(r"\D", "", re.split(r"x", phone)[0])[-10:]


def test_profile_detects_pii_kinds_from_the_data(source):
    profile = profile_table(source, detect_ids=True)
    kinds = {c.name: c.id_format.pii for c in profile.columns}
    assert kinds == {"email": "email", "customer_name": "name", "first_name": "first_name",
                     "phone": "phone", "order_ref": None, "city_name": None}


def test_column_name_is_only_a_hint():
    codes = pd.Series([f"A{i:05d}" for i in range(ROWS)], name="email")  # named like e-mails, are not
    assert detect(codes) is None
    bare = pd.Series([f"{5550000000 + 7919 * i}" for i in range(ROWS)], name="account")
    assert detect(bare) is None  # ten digits: an account number unless the name says phone
    assert detect(bare.rename("mobile")) == "phone"
    mixed = pd.Series([f"user{i}@example.com" if i % 10 else f"user {i}" for i in range(ROWS)], name="x")
    assert detect(mixed) is None  # 90 % e-mails is below the 95 % share


@pytest.mark.parametrize(("column", "pattern"), [
    ("email", REAL_EMAIL), ("customer_name", REAL_NAME), ("phone", REAL_PHONE),
])
def test_fresh_values_are_realistic_unique_and_never_real(source, column, pattern):
    fmt = learn_format(source[column])
    out = pd.Series(fresh_ids(fmt, 0, 3 * ROWS, seed=7))
    assert out.map(lambda v: bool(pattern.match(v))).all(), out[~out.map(lambda v: bool(pattern.match(v)))].head()
    assert out.is_unique
    if column == "phone":  # the same number in another format is still the real one
        assert not set(out.map(digits)) & set(source[column].map(digits))
    else:
        assert not set(out.str.lower()) & set(source[column].str.lower())


def test_fresh_values_are_seeded_and_stable_per_row(source):
    fmt = learn_format(source["email"])
    a = fresh_ids(fmt, 0, 200, seed=1)
    assert list(a) == list(fresh_ids(fmt, 0, 200, seed=1))
    assert list(a[50:]) == list(fresh_ids(fmt, 50, 150, seed=1))  # chunked sampling gives the same rows
    other = fresh_ids(fmt, 0, 200, seed=2)
    assert len(set(a) & set(other)) < 10


def test_values_the_generator_would_make_are_skipped_when_real(source):
    """A source holding exactly the values seed 0 would make first: every one is redrawn
    (and without the skip list the same values would come back)."""
    first = pd.Series(fresh_ids(learn_format(source["email"]), 0, ROWS), name="email")
    fmt = learn_format(first)
    assert fmt.pii == "email" and len(fmt.taken) == ROWS
    out = fresh_ids(fmt, 0, ROWS)
    assert not set(out) & set(first) and len(set(out)) == ROWS
    assert list(fresh_ids(fmt.model_copy(update={"taken": []}), 0, ROWS)) == list(first)


def test_other_text_ids_keep_their_shape(source):
    for column, shape in [("order_ref", r"^ORD-\d{7}$"), ("city_name", r"^.+ \d+$")]:
        out = pd.Series(fresh_ids(learn_format(source[column]), 0, ROWS))
        assert out.str.match(shape).all() and not out.str.contains("@").any()
        assert not set(out) & set(source[column])


def test_a_fitted_generator_emits_fake_pii_on_a_real_table(source):
    """Palmer penguins (real measurements) keyed by customer e-mails and names: the
    output's PII columns are realistic, unique, not real, and pass the contract."""
    from palmerpenguins import load_penguins

    penguins = load_penguins().dropna().head(ROWS).reset_index(drop=True)
    frame = pd.concat([source[["email", "customer_name"]].head(len(penguins)), penguins], axis=1)
    data = TabularData(frame=frame, profile=profile_table(frame, detect_ids=True))
    model = get("tabular/diffusion")(steps=4, hidden=32, depth=1, sampling_steps=4).fit(data)
    out = pd.concat(model.sample(300, seed=1), ignore_index=True)
    assert out["email"].str.match(REAL_EMAIL).all() and out["customer_name"].str.match(REAL_NAME).all()
    assert out["email"].is_unique and out["customer_name"].is_unique
    assert not set(out["email"]) & set(frame["email"]) and not set(out["customer_name"]) & set(frame["customer_name"])
    result = gx.validate(build_contract_suite(data), contract_table(data, out))
    assert not [f for f in failures("contract", result) if "email" in f.target or "customer_name" in f.target]
    out.loc[0, "email"] = frame.loc[5, "email"]  # one real e-mail published: the contract catches it
    result = gx.validate(build_contract_suite(data), contract_table(data, out))
    assert ("__real__email", "no real id") in {(f.target, f.check) for f in failures("contract", result)}


@pytest.fixture(scope="module")
def orders(tmp_path_factory) -> tuple[pd.DataFrame, object]:
    """An orders table as a shop exports one: 60 customers (Faker, its own seed) with
    1-12 orders each, so e-mails and names repeat; a few e-mails missing."""
    fake = Faker("en_US")
    fake.seed_instance(7)
    customers = [(fake.unique.email(), fake.unique.name()) for _ in range(60)]
    rng = np.random.default_rng(7)
    rows = [c for i, c in enumerate(customers) for _ in range(1 + i % 12)]
    frame = pd.DataFrame(rows, columns=["email", "customer_name"])
    frame["amount"] = rng.gamma(2.0, 30.0, len(frame)).round(2)
    frame.loc[rng.choice(len(frame), 5, replace=False), "email"] = None
    path = tmp_path_factory.mktemp("orders") / "orders.csv"
    frame.to_csv(path, index=False)
    return frame, path


def _load(path, **columns):
    from pipeline.core.spec import SourceSpec
    from pipeline.sources import load_source

    return load_source(SourceSpec(modality="tabular", path=path, columns=columns))


def test_repeating_pii_columns_are_pseudonymised_before_the_fit(orders):
    real, path = orders
    loaded = _load(path)
    assert loaded.profile.pseudonymized == {"email": "email", "customer_name": "name"}
    for column, pattern in (("email", REAL_EMAIL), ("customer_name", REAL_NAME)):
        fakes = loaded.frame[column]
        assert not set(fakes.dropna()) & set(real[column].dropna())  # no real value reaches the model
        assert fakes.dropna().map(lambda v: bool(pattern.match(v))).all()
        assert fakes.isna().sum() == real[column].isna().sum()
        # one customer stays one customer: the same real value always has the same fake
        pairs = pd.DataFrame({"real": real[column], "fake": fakes}).dropna()
        assert (pairs.groupby("real")["fake"].nunique() == 1).all()
        assert pairs["fake"].value_counts().sort_values().tolist() == pairs["real"].value_counts().sort_values().tolist()
    assert loaded.frame["amount"].equals(real["amount"])


def test_sampled_output_holds_no_real_pii_and_a_declared_kind_keeps_real_values(orders):
    real, path = orders
    model = get("tabular/copula")().fit(_load(path))
    sampled = pd.concat(list(model.sample(500, seed=1)), ignore_index=True)
    assert not set(sampled["email"].dropna()) & set(real["email"].dropna())
    assert sampled["email"].dropna().map(lambda v: bool(REAL_EMAIL.match(v))).all()
    # the user's word wins: declared categorical, the column is learnt as it is
    kept = _load(path, email="categorical")
    assert kept.profile.pseudonymized == {"customer_name": "name"}
    assert set(kept.frame["email"].dropna()) == set(real["email"].dropna())
