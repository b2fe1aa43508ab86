"""Pine Script's built-in functions as the importer and ``ctx.pine`` know them: the ``ta.*``
functions (how each of :data:`~sandtrade.strategy.indicators.INDICATORS` is built and fed
from Pine's arguments) and ``math.*`` with Pine's ``na`` rules.

Pure data and pure functions: the worker runs them, and the importer (host side) reads the
tables to check a script's calls before anything runs.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import NamedTuple

__all__ = ["NA", "REQUIRED", "TA_FUNCTIONS", "TA_SHORT_FORMS", "MathFunctions", "TaSpec",
           "epoch_ms", "isna", "number"]

NA = math.nan
class TaSpec(NamedTuple):
    """How one Pine ``ta.*`` function is built and fed.

    ``params``: the Pine parameters in order, each ``(name, default)`` (``REQUIRED`` when it
    has none); ``settings``: those the indicator is built with; ``values``: what its
    ``update`` takes on every bar, a parameter's name or a bar field (``@high``, ``@volume``,
    ``@session`` = a new trading day began).
    """

    params: tuple[tuple[str, object], ...]
    settings: tuple[str, ...]
    values: tuple[str, ...]


REQUIRED = object()
_SRC_LEN = (("source", REQUIRED), ("length", REQUIRED))
_HLC = ("@high", "@low", "@close")
#: The Pine ``ta.*`` functions the importer accepts, over :data:`INDICATORS`.
TA_FUNCTIONS: dict[str, TaSpec] = {
    **{name: TaSpec(_SRC_LEN, ("length",), ("source",))
       for name in ("sma", "ema", "rma", "wma", "rsi", "stdev", "highest", "lowest", "cci")},
    "vwma": TaSpec(_SRC_LEN, ("length",), ("source", "@volume")),
    "change": TaSpec((("source", REQUIRED), ("length", 1)), ("length",), ("source",)),
    "mom": TaSpec(_SRC_LEN, ("length",), ("source",)),
    "macd": TaSpec((("source", REQUIRED), ("fastlen", REQUIRED), ("slowlen", REQUIRED),
                    ("siglen", REQUIRED)), ("fastlen", "slowlen", "siglen"), ("source",)),
    "stoch": TaSpec((("source", REQUIRED), ("high", REQUIRED), ("low", REQUIRED),
                     ("length", REQUIRED)), ("length",), ("source", "high", "low")),
    "tr": TaSpec((("handle_na", False),), ("handle_na",), _HLC),
    "atr": TaSpec((("length", REQUIRED),), ("length",), _HLC),
    "bb": TaSpec((("series", REQUIRED), ("length", REQUIRED), ("mult", REQUIRED)),
                 ("length", "mult"), ("series",)),
    "kc": TaSpec((("series", REQUIRED), ("length", REQUIRED), ("mult", REQUIRED),
                  ("useTrueRange", True)), ("length", "mult", "useTrueRange"),
                 ("series", "@high", "@low", "@close")),
    "crossover": TaSpec((("source1", REQUIRED), ("source2", REQUIRED)), (),
                        ("source1", "source2")),
    "crossunder": TaSpec((("source1", REQUIRED), ("source2", REQUIRED)), (),
                         ("source1", "source2")),
    "cross": TaSpec((("source1", REQUIRED), ("source2", REQUIRED)), (), ("source1", "source2")),
    "barssince": TaSpec((("condition", REQUIRED),), (), ("condition",)),
    "valuewhen": TaSpec((("condition", REQUIRED), ("source", REQUIRED),
                         ("occurrence", REQUIRED)), ("occurrence",), ("condition", "source")),
    "pivothigh": TaSpec((("source", REQUIRED), ("leftbars", REQUIRED), ("rightbars", REQUIRED)),
                        ("leftbars", "rightbars"), ("source",)),
    "pivotlow": TaSpec((("source", REQUIRED), ("leftbars", REQUIRED), ("rightbars", REQUIRED)),
                       ("leftbars", "rightbars"), ("source",)),
    "supertrend": TaSpec((("factor", REQUIRED), ("atrPeriod", REQUIRED)),
                         ("factor", "atrPeriod"), _HLC),
    "vwap": TaSpec((("source", REQUIRED),), (), ("source", "@volume", "@session")),
    "dmi": TaSpec((("diLength", REQUIRED), ("adxSmoothing", REQUIRED)),
                  ("diLength", "adxSmoothing"), _HLC),
}
#: Pine functions with a shorter form: ``ta.highest(length)`` reads ``high``.
TA_SHORT_FORMS: dict[str, tuple[int, str]] = {
    "highest": (1, "high"), "lowest": (1, "low"),
    "pivothigh": (2, "high"), "pivotlow": (2, "low"),
}


def epoch_ms(t: datetime) -> int:
    """Pine's ``time``: milliseconds since 1970; a bar time without a zone is UTC."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1000)


def isna(x: object) -> bool:
    return x is None or (type(x) is float and x != x)


def number(x: object) -> float:
    if x is None:
        return NA
    if type(x) is bool:
        return float(x)
    return x  # type: ignore[return-value]


class MathFunctions:
    """``math.*`` as Pine defines them: ``na`` in, ``na`` out."""

    __slots__ = ()
    pi = math.pi
    e = math.e

    @staticmethod
    def abs(x: float) -> float:
        """``math.abs``."""
        return abs(x)

    @staticmethod
    def max(*xs: float) -> float:
        """``math.max``: ``na`` when any argument is."""
        return NA if any(isna(x) for x in xs) else max(xs)

    @staticmethod
    def min(*xs: float) -> float:
        """``math.min``: ``na`` when any argument is."""
        return NA if any(isna(x) for x in xs) else min(xs)

    @staticmethod
    def avg(*xs: float) -> float:
        """``math.avg``."""
        return NA if any(isna(x) for x in xs) else sum(xs) / len(xs)

    @staticmethod
    def round(x: float, precision: int | None = None) -> float:
        """``math.round``: halves away from zero, as Pine rounds."""
        if isna(x):
            return NA
        scale = 10.0 ** (precision or 0)
        r = math.floor(abs(x) * scale + 0.5) / scale
        return math.copysign(r, x) if precision else float(int(math.copysign(r, x)))

    @staticmethod
    def floor(x: float) -> float:
        """``math.floor``."""
        return NA if isna(x) else float(math.floor(x))

    @staticmethod
    def ceil(x: float) -> float:
        """``math.ceil``."""
        return NA if isna(x) else float(math.ceil(x))

    @staticmethod
    def sign(x: float) -> float:
        """``math.sign``."""
        return NA if isna(x) else (1.0 if x > 0 else -1.0 if x < 0 else 0.0)

    @staticmethod
    def sqrt(x: float) -> float:
        """``math.sqrt`` (``na`` below zero)."""
        return NA if isna(x) or x < 0 else math.sqrt(x)

    @staticmethod
    def pow(x: float, y: float) -> float:
        """``math.pow``."""
        try:
            return NA if isna(x) or isna(y) else float(x ** y)
        except (OverflowError, ZeroDivisionError):
            return NA

    @staticmethod
    def log(x: float) -> float:
        """``math.log`` (``na`` at or below zero)."""
        return NA if isna(x) or x <= 0 else math.log(x)

    @staticmethod
    def log10(x: float) -> float:
        """``math.log10``."""
        return NA if isna(x) or x <= 0 else math.log10(x)

    @staticmethod
    def exp(x: float) -> float:
        """``math.exp``."""
        try:
            return NA if isna(x) else math.exp(x)
        except OverflowError:
            return NA

    @staticmethod
    def sin(x: float) -> float:
        """``math.sin``."""
        return NA if isna(x) else math.sin(x)

    @staticmethod
    def cos(x: float) -> float:
        """``math.cos``."""
        return NA if isna(x) else math.cos(x)

    @staticmethod
    def tan(x: float) -> float:
        """``math.tan``."""
        return NA if isna(x) else math.tan(x)

    @staticmethod
    def atan(x: float) -> float:
        """``math.atan``."""
        return NA if isna(x) else math.atan(x)

    @staticmethod
    def todegrees(x: float) -> float:
        """``math.todegrees``."""
        return NA if isna(x) else math.degrees(x)

    @staticmethod
    def toradians(x: float) -> float:
        """``math.toradians``."""
        return NA if isna(x) else math.radians(x)


