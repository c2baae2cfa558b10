"""PII-like identifier columns (e-mails, person names, phone numbers): detect them from
the data, then make realistic fake values that are unique and never a real one.

Detection rule (`detect`): a kind is chosen only when at least PII_SHARE of the column's
values match its pattern; the column name is a hint that never decides alone. E-mails
and formatted phone numbers are recognised from the values only (bare digit strings need a
phone-like name: they are as often account numbers); person names also need a hint in
the column name (free capitalised text such as city or product names looks like names),
which also tells first, last and full names apart.

Generation: each kind is a fixed space of values built from Faker's en_US word lists
(first and last names) and reserved parts (RFC 2606 `example.*` e-mail domains, NANP
phone numbers), enumerated as a mixed-radix number. Row j takes the j-th index of a
seeded affine bijection of that space, skipping the indices of the source's own values
(kept in the profile as indices, `taken`): fresh values are thereby unique (a bijection
of the row index), the same for the same seed and row, and never a source value.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from functools import cache
from typing import Literal

import pandas as pd
from faker.providers.person.en_US import Provider as _Person

from pipeline.core import codespace
from pipeline.core.errors import BadInputError

PiiKind = Literal["email", "name", "first_name", "last_name", "phone"]
# Share of a column's values that must match a kind's pattern: a few malformed entries
# (typos, placeholders) do not hide an e-mail column, a mixed column is not taken for one.
PII_SHARE = 0.95
EMAIL = re.compile(r"^[\w.+'-]+@[\w-]+(\.[\w-]+)+$")
PHONE = re.compile(r"^(\+?\d{1,3}[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}(\s*(x|ext\.?)\s*\d+)?$")
PHONE_HINT = re.compile(r"phone|tel|mobile|cell|fax", re.IGNORECASE)
NAME_WORD = r"[A-Z][a-zA-Z'’-]+\.?"
FULL_NAME = re.compile(rf"^({NAME_WORD} ){{1,3}}{NAME_WORD}$")
ONE_NAME = re.compile(rf"^{NAME_WORD}$")
# Column names that say "a person's name" (after lower-casing, spaces and dashes as "_"):
# `name`, `full_name`, `customer_name`, `FirstName`, `surname`; not `city_name`.
NAME_HINT = re.compile(
    r"^((full|person|customer|client|contact|patient|employee|user|author|first|last|given|family|middle)_?)?name$"
    r"|^(first|last|surname|forename)$"
)
FIRST_HINT = re.compile(r"first|given|fore")
LAST_HINT = re.compile(r"last|sur|family")
_DIGITS = tuple("0123456789")
_LEAD = tuple("23456789")  # NANP area codes and exchanges never start with 0 or 1


@cache
def _words(kind: str) -> tuple[str, ...]:
    names = _Person.first_names if kind == "first" else _Person.last_names
    return tuple(sorted({n for n in names if n.isalpha()}))


@cache
def _components(kind: PiiKind) -> tuple[tuple[str, ...], ...]:
    """The value space of a kind: per position the options (one option = a literal)."""
    first, last = _words("first"), _words("last")
    if kind == "email":
        suffix = ("",) + tuple(str(k) for k in range(1, 100))  # "" first: jane.doe, then jane.doe1 ..
        return (tuple(w.lower() for w in first), (".",), tuple(w.lower() for w in last), suffix, ("@",), ("example.com", "example.org", "example.net"))
    if kind == "name":
        return (first, (" ",), last)
    if kind == "first_name":
        return (first,)
    if kind == "last_name":
        return (last,)
    if kind == "phone":
        return (("(",), _LEAD, _DIGITS, _DIGITS, (") ",), _LEAD, _DIGITS, _DIGITS, ("-",)) + (_DIGITS,) * 4
    raise ValueError(f"unknown PII kind {kind!r}")


@cache
def _pattern(kind: PiiKind) -> re.Pattern[str]:
    """A pattern with one group per varying position, matching the kind's values in any case."""
    parts = [
        re.escape(o[0]) if len(o) == 1 else "(" + "|".join(map(re.escape, sorted(o, key=len, reverse=True))) + ")"
        for o in _components(kind)
    ]
    return re.compile("".join(parts), re.IGNORECASE)


@cache
def _lookup(kind: PiiKind) -> tuple[dict[str, int], ...]:
    return tuple({o.lower(): i for i, o in enumerate(options)} for options in _components(kind))


def _canonical(kind: PiiKind, value: str) -> str:
    """The spelling the space uses: a phone number written another way is the same
    number (its last ten digits), names and e-mails compare without case."""
    value = value.strip()
    if kind == "phone":
        digits = re.sub(r"\D", "", re.split(r"\s*(?:x|ext)", value, flags=re.IGNORECASE)[0])[-10:]
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}" if len(digits) == 10 else value
    return value


def _index(kind: PiiKind, value: str) -> int | None:
    """The index of `value` in the kind's space, None when the space cannot hold it."""
    match = _pattern(kind).fullmatch(_canonical(kind, value))
    if match is None:
        return None
    groups = iter(match.groups())
    n = 0
    for options, lookup in zip(_components(kind), _lookup(kind)):
        n = n * len(options) + (lookup[next(groups).lower()] if len(options) > 1 else 0)
    return n


def _share(values: pd.Series, pattern: re.Pattern[str]) -> float:
    return float(values.map(lambda v: bool(pattern.match(v))).mean())


def detect(values: pd.Series) -> PiiKind | None:
    """The PII kind of a text column (see the module docstring for the rule), or None."""
    text = values.dropna().astype(str).str.strip()
    if text.empty:
        return None
    if _share(text, EMAIL) >= PII_SHARE:
        return "email"
    name = str(values.name)
    # Bare 10-digit strings are as often account numbers: they count as phones only
    # under a phone-like column name.
    formatted = float(text.str.contains(r"\D").mean()) >= PII_SHARE
    if _share(text, PHONE) >= PII_SHARE and (formatted or PHONE_HINT.search(name)):
        return "phone"
    hint = re.sub(r"[\s-]+", "_", name.strip().lower())
    if not NAME_HINT.search(hint):
        return None
    if _share(text, FULL_NAME) >= PII_SHARE:
        return "name"
    if _share(text, ONE_NAME) >= PII_SHARE:
        if FIRST_HINT.search(hint):
            return "first_name"
        if LAST_HINT.search(hint):
            return "last_name"
    return None


def taken(kind: PiiKind, values: pd.Series) -> list[int]:
    """Indices of the source values the kind's space holds: generation skips them."""
    found = {_index(kind, str(v)) for v in values.dropna()}
    return sorted(i for i in found if i is not None)


def fresh(kind: PiiKind, used: list[int], start: int, n: int, seed: int = 0) -> list[str]:
    """Values for output rows `start .. start + n - 1`: row j takes the j-th index of a
    seeded bijection of the space that is not a source value's index."""
    space = codespace.size(_components(kind))
    a = codespace.multiplier(space)
    b = (seed * codespace.SPREAD + space // 3) % space
    a_inv = pow(a, -1, space)
    skipped = sorted(((i - b) * a_inv) % space for i in used)  # positions whose value is real
    out = []
    for j in range(start, start + n):
        m = j
        while (nxt := j + bisect_right(skipped, m)) != m:
            m = nxt
        if m >= space:
            raise BadInputError(
                f"a {kind} column can take only {space - len(skipped)} fresh values; "
                "sample fewer rows or declare the column categorical in source.columns"
            )
        out.append(codespace.decode((a * m + b) % space, _components(kind)))
    return out


def pseudonyms(kind: PiiKind, values: pd.Series, seed: int = 0) -> pd.Series:
    """Each distinct value replaced by one fake value of its kind (the same value by the
    same fake, nulls kept), none of them a source value: a customer's repeated e-mail
    stays one customer, and no real address reaches the model."""
    distinct = pd.unique(values.dropna())
    fakes = fresh(kind, taken(kind, values), 0, len(distinct), seed)
    return values.map(dict(zip(distinct, fakes))).astype(values.dtype)


def pseudonymize(frame: pd.DataFrame, *, keep: set[str]) -> tuple[pd.DataFrame, dict[str, PiiKind]]:
    """The table with its repeating (or partly null) PII columns pseudonymised before
    anything learns from it, and which columns those were. Unique, complete PII columns
    are ids (`pipeline.core.identifiers`) and stay as they are; so do the columns in
    `keep` (declared in the spec: the user's kind wins)."""
    found: dict[str, PiiKind] = {}
    out = frame
    for name in frame.columns:
        column = frame[name]
        if name in keep or not _is_text(column) or (column.is_unique and column.notna().all()):
            continue
        kind = detect(column)
        if kind is not None:
            out = out.assign(**{name: pseudonyms(kind, column)})  # a copy: the caller's frame is kept
            found[name] = kind
    return out, found


def _is_text(column: pd.Series) -> bool:
    return isinstance(column.dtype, pd.StringDtype) or (
        column.dtype == object and bool(column.dropna().map(type).eq(str).all())
    )
