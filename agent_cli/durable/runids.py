"""Run ids a person can type: `20261207-7k3mq`.

The day (`YYYYMMDD`), then five letters: four that count tenths of a second since
midnight UTC in a base-32 alphabet whose letters sort as their values do (Crockford's:
digits, then lowercase letters without i, l, o, u), and one random letter. So ids
sort by the time they were made, and any few letters from the end tell one run from
the others of the same day: `agent inspect 3mq`.

A RUN argument may be a whole id, a unique prefix, or a unique suffix. Ids of the
older form (`20261124-153012-a1b2`) keep working; `sort_key` orders both forms by
time.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_TICKS_PER_DAY = 864_000  # tenths of a second; 32**4 = 1,048,576 holds them
_NEW = re.compile(r"^(\d{8})-([0-9a-hjkmnp-tv-z]{4})[0-9a-hjkmnp-tv-z]$")
_OLD = re.compile(r"^(\d{8})-(\d{6})-[0-9a-f]+$")


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    ticks = min(int((now - midnight).total_seconds() * 10), _TICKS_PER_DAY - 1)
    letters = "".join(ALPHABET[(ticks >> shift) & 31] for shift in (15, 10, 5, 0))
    return f"{now:%Y%m%d}-{letters}{secrets.choice(ALPHABET)}"


def sort_key(run_id: str) -> tuple[str, float, str]:
    """(day, seconds since midnight, id): the order in which runs were made, for both
    id forms; an id of neither form sorts by its name after the known ones of its day."""
    if m := _NEW.match(run_id):
        ticks = 0
        for ch in m.group(2):
            ticks = ticks * 32 + ALPHABET.index(ch)
        return (m.group(1), ticks / 10, run_id)
    if m := _OLD.match(run_id):
        hms = m.group(2)
        return (m.group(1), int(hms[:2]) * 3600 + int(hms[2:4]) * 60 + int(hms[4:]), run_id)
    return (run_id[:8], float("inf"), run_id)


def sorted_ids(ids: Iterable[str]) -> list[str]:
    return sorted(ids, key=sort_key)


def matching(ref: str, ids: Iterable[str]) -> list[str]:
    """The ids `ref` names: itself when it is one, else those it begins or ends."""
    ids = list(ids)
    ref = ref.strip().lower()
    if ref in ids:
        return [ref]
    return [i for i in ids if ref and (i.startswith(ref) or i.endswith(ref))]
