"""Code-aware tokens, shared by the index (documents) and the ranker (queries).

An identifier yields itself, lower-cased, and, when it is compound, its snake_case
and camelCase parts: `prepare_content_length` gives `prepare_content_length`,
`prepare`, `content`, `length`; `HTTPDigestAuth` gives `httpdigestauth`, `http`,
`digest`, `auth`. The whole form keeps exact mentions precise (it is rare, so BM25
weighs it high); the parts let prose ("content length") meet code. A light plural
fold (`arrays` -> `array`) is applied to parts and words alike, the same on both
sides, so it only has to be consistent, not linguistically right.
"""

from __future__ import annotations

import re
from functools import lru_cache


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PARTS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

# English glue words and Python keywords: present in every file and every issue, so
# they only add noise and cost to postings.
STOPWORDS = words(
    """
    a an the and or not no nor but if then else elif for while in on of to from by with
    as at is are was were be been being it its this that these those there here we you i
    me my our your he she they them their his her do does did doing done have has had
    can could should would will shall may might must so than too very just also only def
    class return import self cls none true false pass lambda try except finally raise
    yield global nonlocal assert del async await with what which who when where why how
    all any each some such into out up down over under again further once about above
    below after before between both same other more most own off s t
    """
)


def _fold(word: str) -> str:
    # "arrays" -> "array", "classes" -> "class"; "axis", "class", "status" stay.
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-2] if word.endswith(("sses", "xes")) else word[:-1]
    return word


@lru_cache(maxsize=200_000)
def ident_tokens(ident: str) -> tuple[str, ...]:
    """Tokens of one identifier: its whole lower-cased form, then its parts."""
    whole = ident.strip("_").lower()
    parts = [p.lower() for p in _PARTS.findall(ident)]
    out: list[str] = []
    if len(whole) > 1 and whole not in STOPWORDS:
        out.append(_fold(whole) if len(parts) <= 1 else whole)
    if len(parts) > 1:
        for part in parts:
            if len(part) > 1 and not part.isdigit() and part not in STOPWORDS:
                out.append(_fold(part))
    return tuple(out)


def tokenize(text: str) -> list[str]:
    """All tokens of `text`, in order, repeats kept (term frequencies count)."""
    out: list[str] = []
    for ident in IDENT.findall(text):
        out.extend(ident_tokens(ident))
    return out


@lru_cache(maxsize=100_000)
def split_words(ident: str) -> list[str]:
    """The lower-cased parts of an identifier, without the whole form or folding."""
    return [p.lower() for p in _PARTS.findall(ident)]


_SUFFIXES = (
    "izations", "ization", "ations", "ation", "ances", "ance", "ences", "ence", "ments",
    "ment", "izing", "ized", "izes", "ize", "ings", "ing", "ed", "es", "ers", "er", "s", "e",
)  # fmt: skip


@lru_cache(maxsize=50_000)
def stem(token: str) -> str:
    """A crude suffix stripper for matching prose against names: `mocked`, `mocking`
    and `mock` meet, as do `serialization` and `serialize`. Both sides go through it,
    so it only has to be consistent."""
    if len(token) <= 4 or "_" in token:
        return token
    for suffix in _SUFFIXES:
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            token = token[: -len(suffix)]
            break
    if len(token) > 3 and token[-1] == token[-2] and token[-1] not in "lsz":
        token = token[:-1]  # mapped -> mapp -> map
    return token
