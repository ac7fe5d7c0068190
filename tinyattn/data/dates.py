"""Human-readable dates and where each field sits in the string.

The dates task of the attention literature's classic demo: read a date
written the way people write it ("Tuesday, March 5, 2013", "5/3/13",
"the 5th of march 2013") and output it in ISO form ("2013-03-05"). This
module renders one date in one of `DATE_FORMATS` and records the
character span of every field, so the tasks built on it (`tasks.py`)
know which source characters explain each output character.

Conventions, fixed for the whole toolkit:

- Dates are drawn from `FIRST_DATE` = 1950-01-01 .. `LAST_DATE` =
  2049-12-31, uniformly over days.
- A two-digit year means a year in 1950–2049: 50–99 -> 19xx,
  00–49 -> 20xx (`expand_year`).
- Slashes are always month/day/year ("5/30/91"), dots always
  day.month.year ("30.05.1991").
- Month and weekday names are English, in one of `CASINGS` per example
  ("june", "June", "JUNE"); the words "the", "of" and ordinal suffixes
  stay lower case.
- A day written as an ordinal ("21st") is one field, suffix included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

import numpy as np

from tinyattn._validate import check_options, check_rng, check_size

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FIRST_DATE = date(1950, 1, 1)
LAST_DATE = date(2049, 12, 31)
N_DAYS = (LAST_DATE - FIRST_DATE).days + 1
CASINGS = ("lower", "title", "upper")

# Placeholders: d / dd / dth day (3, 03, 3rd); m / mm month digits (5, 05);
# Mon / Month month name (May, Sep, September); yy / yyyy year (79, 1979);
# Wkd / Weekday weekday name (Tue, Tuesday). Everything else is literal text.
DATE_FORMATS = (
    "{d} {Month} {yyyy}",                 # 3 May 1979
    "{dd} {Month} {yyyy}",                # 03 May 1979
    "{Month} {d}, {yyyy}",                # May 3, 1979
    "{Weekday}, {Month} {d}, {yyyy}",     # Tuesday, March 5, 2013
    "{Wkd}, {d} {Mon} {yyyy}",            # Tue, 5 Mar 2013
    "{m}/{d}/{yy}",                       # 5/30/91
    "{mm}/{dd}/{yyyy}",                   # 05/30/1991
    "{dd}.{mm}.{yyyy}",                   # 30.05.1991
    "the {dth} of {Month} {yyyy}",        # the 21st of June 2009
    "{Month} {d} {yyyy}",                 # June 4 1998
    "{d} {Mon} {yy}",                     # 4 Jun 98
    "{Month} {dth}, {yyyy}",              # June 4th, 1998
    "{Weekday} {d} {Month} {yyyy}",       # Thursday 4 June 1998
    "{Mon} {d}, {yyyy}",                  # Jun 4, 1998
    "{d}.{m}.{yy}",                       # 4.6.98
    "{dd} {Mon} {yyyy}",                  # 04 Jun 1998
    "{Weekday}, {dth} {Month} {yyyy}",    # Thursday, 4th June 1998
    "{m}/{d}/{yyyy}",                     # 6/4/1998
    "{Wkd} {Mon} {dd} {yyyy}",            # Thu Jun 04 1998
    "{dth} {Month} {yyyy}",               # 4th June 1998
)

_FIELD_OF = {"d": "D", "dd": "D", "dth": "D", "m": "M", "mm": "M", "Mon": "M",
             "Month": "M", "yy": "Y", "yyyy": "Y", "Wkd": "W", "Weekday": "W"}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class DateSample:
    """One rendered date: the text and the span of each field in it.

    Attributes
    ----------
    day : datetime.date
    fmt : str
        The template it was rendered with (one of `DATE_FORMATS`).
    casing : str
        One of `CASINGS`.
    text : str
    spans : tuple of (field, start, end)
        One entry per field present, field in "Y", "M", "D", "W"; the
        field is ``text[start:end]``. Characters in no span are "other".
    """

    day: date
    fmt: str
    casing: str
    text: str
    spans: tuple[tuple[str, int, int], ...]

    def span(self, field: str) -> tuple[int, int] | None:
        """The half-open ``(start, end)`` of ``field`` in `text`, or None."""
        for name, start, end in self.spans:
            if name == field:
                return (start, end)
        return None

    @property
    def iso(self) -> str:
        """The date as ``YYYY-MM-DD``."""
        return self.day.isoformat()


def ordinal(n: int) -> str:
    """Write a day number as an English ordinal: 1st, 2nd, 3rd, 4th, 11th, 21st."""
    if 11 <= n % 100 <= 13:
        return f"{n}th"
    return str(n) + {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def expand_year(yy: int) -> int:
    """The year a two-digit year stands for: 50–99 -> 1950–1999, 00–49 -> 2000–2049."""
    check_size(yy, "yy", low=0, high=99)
    return int(yy) + (1900 if yy >= 50 else 2000)


@cache
def _parse(fmt: str) -> tuple[tuple[bool, str], ...]:
    """Split a template into ``(is_placeholder, text)`` pieces and check it."""
    pieces, pos = [], 0
    for m in _PLACEHOLDER.finditer(fmt):
        if m.start() > pos:
            pieces.append((False, fmt[pos:m.start()]))
        if m.group(1) not in _FIELD_OF:
            shown = ", ".join("{" + k + "}" for k in _FIELD_OF)
            raise ValueError(f"fmt placeholders must be among {shown}; got {m.group(0)!r}")
        pieces.append((True, m.group(1)))
        pos = m.end()
    if pos < len(fmt):
        pieces.append((False, fmt[pos:]))
    fields = [_FIELD_OF[t] for is_field, t in pieces if is_field]
    if any(fields.count(f) != 1 for f in "YMD") or fields.count("W") > 1:
        raise ValueError(f"fmt must hold exactly one year, one month and one day placeholder "
                         f"and at most one weekday; got {fmt!r}")
    return tuple(pieces)


def _cased(name: str, casing: str) -> str:
    return name.lower() if casing == "lower" else name.upper() if casing == "upper" else name


def _render_field(code: str, day: date, casing: str) -> str:
    if code == "d":
        return str(day.day)
    if code == "dd":
        return f"{day.day:02d}"
    if code == "dth":
        return ordinal(day.day)
    if code == "m":
        return str(day.month)
    if code == "mm":
        return f"{day.month:02d}"
    if code in ("Mon", "Month"):
        name = MONTHS[day.month - 1]
        return _cased(name if code == "Month" else name[:3], casing)
    if code == "yy":
        return f"{day.year % 100:02d}"
    if code == "yyyy":
        return f"{day.year:04d}"
    name = WEEKDAYS[day.weekday()]
    return _cased(name if code == "Weekday" else name[:3], casing)


def render_date(day: date, fmt: str, casing: str = "title") -> DateSample:
    """Write ``day`` with template ``fmt`` and record each field's span.

    Parameters
    ----------
    day : datetime.date
        Between `FIRST_DATE` and `LAST_DATE` (so two-digit years are
        unambiguous).
    fmt : str
        A template such as ``"{Month} {d}, {yyyy}"``; see `DATE_FORMATS`
        for the placeholders. It must hold one year, one month and one
        day placeholder, and at most one weekday.
    casing : {"lower", "title", "upper"}
        Casing of month and weekday names.

    Returns
    -------
    DateSample

    Examples
    --------
    >>> s = render_date(date(2009, 6, 21), "the {dth} of {Month} {yyyy}", "lower")
    >>> s.text, s.span("D"), s.span("M"), s.span("Y")
    ('the 21st of june 2009', (4, 8), (12, 16), (17, 21))
    """
    if not isinstance(day, date):
        raise TypeError(f"day must be a datetime.date, got {type(day).__name__}")
    if not FIRST_DATE <= day <= LAST_DATE:
        raise ValueError(f"day must be in {FIRST_DATE}..{LAST_DATE}, got {day}")
    check_options("casing", casing, CASINGS)
    if not isinstance(fmt, str):
        raise TypeError(f"fmt must be a str, got {type(fmt).__name__}")
    parts, spans, pos = [], [], 0
    for is_field, text in _parse(fmt):
        if is_field:
            code, text = text, _render_field(text, day, casing)
            spans.append((_FIELD_OF[code], pos, pos + len(text)))
        parts.append(text)
        pos += len(text)
    return DateSample(day, fmt, casing, "".join(parts), tuple(spans))


def sample_date(rng: np.random.Generator) -> DateSample:
    """Draw a day, a format and a casing uniformly and render the date.

    Three draws from ``rng`` per call, in that order, so a seeded
    generator always gives the same sequence of samples.
    """
    check_rng(rng)
    day = FIRST_DATE + timedelta(days=int(rng.integers(N_DAYS)))
    fmt = DATE_FORMATS[int(rng.integers(len(DATE_FORMATS)))]
    casing = CASINGS[int(rng.integers(len(CASINGS)))]
    return render_date(day, fmt, casing)
