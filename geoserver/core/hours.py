"""Opening hours in OpenStreetMap ``opening_hours`` syntax, evaluated in Shanghai local time.

Parsing and evaluation use the opening-hours-py library (with China's public holidays for ``PH``).
A feature without an expression has unknown hours (the unions' forms often leave 开放时间 empty): it is never
counted as open, and its state is reported as unknown (None), not as closed.

Each distinct expression is parsed once; its state is cached until its next change, so asking
"open now?" for many features costs a dictionary lookup per distinct expression.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import opening_hours

SHANGHAI_TZ = ZoneInfo("Asia/Shanghai")


def validate(expression: str) -> bool:
    """True if ``expression`` is valid opening_hours syntax."""
    return bool(expression) and opening_hours.validate(expression)


def as_shanghai(at: datetime | None) -> datetime:
    """``at`` (naive = Shanghai local time) or now, as an aware Asia/Shanghai datetime."""
    if at is None:
        return datetime.now(SHANGHAI_TZ)
    if at.tzinfo is None:
        return at.replace(tzinfo=SHANGHAI_TZ)
    return at.astimezone(SHANGHAI_TZ)


class _Expression:
    """One parsed expression with its cached state interval."""

    __slots__ = ("text", "parsed", "cached")

    def __init__(self, text: str):
        self.text = text
        self.parsed = opening_hours.OpeningHours(text, timezone=SHANGHAI_TZ, country="CN",
                                                 max_interval_days=366) if text else None
        self.cached = None  # (is_open, valid_from, valid_until), replaced as a whole

    def open_at(self, at: datetime) -> bool:
        if self.parsed is None:
            return False
        cached = self.cached
        if cached is not None and cached[1] <= at and (cached[2] is None or at < cached[2]):
            return cached[0]
        is_open = bool(self.parsed.is_open(at))
        nxt = self.parsed.next_change(at)
        self.cached = (is_open, at, None if nxt is None else as_shanghai(nxt))
        return is_open


class HoursTable:
    """Opening hours of every feature of a layer: distinct expressions plus a code per feature."""

    def __init__(self, expressions):
        texts = ["" if e is None or (isinstance(e, float) and np.isnan(e)) else str(e) for e in expressions]
        uniques = sorted(set(texts))
        self._expressions = [_Expression(t) for t in uniques]
        lookup = {t: i for i, t in enumerate(uniques)}
        self.codes = np.fromiter((lookup[t] for t in texts), dtype=np.int32, count=len(texts))

    def unknown_mask(self, indices: np.ndarray) -> np.ndarray:
        """Boolean array: are the hours of each feature in ``indices`` unknown (no expression)?"""
        unknown = np.array([e.parsed is None for e in self._expressions], dtype=bool)
        return unknown[self.codes[indices]]

    def open_mask(self, indices: np.ndarray, at: datetime) -> np.ndarray:
        """Boolean array: is each feature in ``indices`` open at ``at`` (aware datetime)?"""
        codes = self.codes[indices]
        out = np.zeros(len(codes), bool)
        for code in np.unique(codes):
            out[codes == code] = self._expressions[code].open_at(at)
        return out

    def is_open(self, index: int, at: datetime) -> bool:
        """Open at ``at``? Unknown hours (no expression) are never open."""
        return self._expressions[self.codes[index]].open_at(at)

    def state(self, index: int, at: datetime) -> bool | None:
        """True/False, or None when the feature's hours are unknown (an empty 开放时间: ask before going)."""
        expression = self._expressions[self.codes[index]]
        return None if expression.parsed is None else expression.open_at(at)
