"""Walk-forward analysis: optimise on a train window, run the winner on the test window after
it, move on by a step, and stitch the test windows' equity into one out-of-sample curve.

``--walk-forward train=2y,test=6m[,step=6m]``: lengths in years (``y``), months (``m``), weeks
(``w``), days (``d``), or a plain number of bars (``train=500,test=100``); ``step`` defaults to
``test`` (test windows that follow one another without a gap or an overlap). With dates, a
window starts at its first timestamp, its train period runs ``train`` from there (its bars are
those before that moment), its test period the next ``test``; the next window starts ``step``
after this one's start. A window whose test period is not covered by the data (it would end
more than one bar spacing after the last timestamp) is left out, as is one with an empty train
or test period.

The stitched out-of-sample equity compounds the test windows: each starts with the cash of the
back-test, and its curve is scaled by what the previous windows made, so the curve is what one
account would have done trading each window's chosen parameters in turn.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandtrade.backtest.optimize import Objective, SweepError
from sandtrade.backtest.result import BacktestResult
from sandtrade.backtest.sweep import RunResult

__all__ = ["Length", "WalkForwardResult", "WalkForwardSpec", "WindowResult",
           "parse_walk_forward", "walk_forward", "windows"]


@dataclass(frozen=True)
class Length:
    """A window length: ``count`` bars, months or days (``unit``)."""

    count: int
    unit: str  # "bars" | "months" | "days"

    def after(self, when: datetime) -> datetime:
        """``when`` plus this length (a date length only; month ends are clamped)."""
        if self.unit == "days":
            return when + timedelta(days=self.count)
        month = when.month - 1 + self.count
        year = when.year + month // 12
        month = month % 12 + 1
        day = min(when.day, calendar.monthrange(year, month)[1])
        return when.replace(year=year, month=month, day=day)

    def __str__(self) -> str:
        return f"{self.count} {self.unit}"


@dataclass(frozen=True)
class WalkForwardSpec:
    """The train, test and step lengths (all bars, or all dates)."""

    train: Length
    test: Length
    step: Length


_LENGTH = re.compile(r"^\s*(\d+)\s*([ymwd]?)\s*$")
_UNITS = {"y": ("months", 12), "m": ("months", 1), "w": ("days", 7), "d": ("days", 1),
          "": ("bars", 1)}


def _length(name: str, text: str) -> Length:
    m = _LENGTH.match(text)
    if m is None or int(m.group(1)) <= 0:
        raise SweepError(f"--walk-forward {name}={text}: a positive length: a number of bars "
                         "(500) or of years, months, weeks or days (2y, 6m, 4w, 30d)")
    unit, factor = _UNITS[m.group(2)]
    return Length(int(m.group(1)) * factor, unit)


def parse_walk_forward(text: str) -> WalkForwardSpec:
    """``train=2y,test=6m[,step=6m]`` (see the module's docstring)."""
    parts: dict[str, str] = {}
    for item in text.split(","):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in ("train", "test", "step") or key in parts:
            raise SweepError(f"--walk-forward {text!r}: write train=LEN,test=LEN[,step=LEN]")
        parts[key] = value
    if "train" not in parts or "test" not in parts:
        raise SweepError(f"--walk-forward {text!r}: both train= and test= are needed")
    train, test = _length("train", parts["train"]), _length("test", parts["test"])
    step = _length("step", parts["step"]) if "step" in parts else test
    if len({(x.unit == "bars") for x in (train, test, step)}) > 1:
        raise SweepError(f"--walk-forward {text!r}: give every length in bars, or every one "
                         "as a date length")
    return WalkForwardSpec(train, test, step)


def windows(times: Sequence[datetime], spec: WalkForwardSpec) -> list[tuple[int, int, int]]:
    """The walk-forward windows over ``times`` (sorted timestamps): ``(train_start,
    test_start, test_end)``, indices, ends exclusive (the train period is ``train_start`` to
    ``test_start``)."""
    n = len(times)
    out: list[tuple[int, int, int]] = []
    if spec.train.unit == "bars":
        start = 0
        while start + spec.train.count + spec.test.count <= n:
            mid = start + spec.train.count
            out.append((start, mid, mid + spec.test.count))
            start += spec.step.count
        return out
    if n < 2:
        return out
    spacing = times[1] - times[0]
    start = 0
    while start < n:
        t0 = times[start]
        train_end = spec.train.after(t0)
        test_end = spec.test.after(train_end)
        if test_end > times[-1] + spacing:
            break
        mid, end = bisect_left(times, train_end), bisect_left(times, test_end)
        if start < mid < end:
            out.append((start, mid, end))
        start = bisect_left(times, spec.step.after(t0))
    return out


@dataclass
class WindowResult:
    """One window: its periods, the parameters chosen on train, the train run's statistics
    (in-sample) and the test run's (out-of-sample)."""

    train: tuple[datetime, datetime]
    test: tuple[datetime, datetime]
    bars: tuple[int, int, int]
    params: dict[str, Any]
    in_sample: dict[str, Any]
    out_of_sample: dict[str, Any]
    runs: int
    error: str | None = None


@dataclass
class WalkForwardResult:
    """Every window, the stitched out-of-sample equity curve ``(time, equity)`` and its
    figures beside the in-sample ones."""

    windows: list[WindowResult]
    equity: list[tuple[datetime, float]] = field(default_factory=list)
    out_of_sample: dict[str, Any] = field(default_factory=dict)
    in_sample: dict[str, Any] = field(default_factory=dict)


def walk_forward(times: Sequence[datetime], spans: Sequence[tuple[int, int, int]], *,
                 optimise: Callable[[int, int], list[RunResult]],
                 test: Callable[[dict[str, Any], int, int], BacktestResult],
                 objective: Objective, cash: float,
                 on_window: Callable[[WindowResult], None] | None = None) -> WalkForwardResult:
    """Run the walk-forward: for each of ``spans`` (see :func:`windows`), ``optimise`` on its
    train period (the results of a search there), pick the best by ``objective``, and
    ``test`` the winner on the test period (a full back-test, with its equity curve)."""
    done: list[WindowResult] = []
    equity: list[tuple[datetime, float]] = []
    scale = 1.0
    trades = wins = 0
    for a, b, c in spans:
        results = optimise(a, b)
        best = objective.best(results)
        period = ((times[a], times[b - 1]), (times[b], times[c - 1]))
        if best is None:
            window = WindowResult(*period, (a, b, c), {}, {}, {}, len(results),
                                  error="no run of the train period has a value of "
                                        f"{objective.stat!r}")
        else:
            outcome = test(best.params, b, c)
            window = WindowResult(*period, (a, b, c), dict(best.params), best.stats,
                                  outcome.stats, len(results))
            for point in outcome.equity_curve:
                equity.append((point.time, point.equity * scale))
            final = outcome.stats.get("Equity Final [$]")
            if isinstance(final, int | float) and final > 0:
                scale *= float(final) / cash
            trades += len(outcome.trades)
            wins += sum(1 for t in outcome.trades if t.pnl > 0)
        done.append(window)
        if on_window is not None:
            on_window(window)
    result = WalkForwardResult(done, equity)
    if equity:
        peak, worst = equity[0][1], 0.0
        for _, value in equity:
            peak = max(peak, value)
            worst = min(worst, value / peak - 1.0)
        result.out_of_sample = {
            "Equity Final [$]": cash * scale, "Return [%]": (scale - 1.0) * 100.0,
            "Max. Drawdown [%]": worst * 100.0, "# Trades": trades,
            "Win Rate [%]": wins / trades * 100.0 if trades else None}
    chosen = [w for w in done if w.error is None]
    if chosen:
        # Per window, side by side: train periods overlap when step < train, so their
        # returns are averaged, never compounded.
        for side, key in ((result.in_sample, "in_sample"), (result.out_of_sample,
                                                            "out_of_sample")):
            for stat in dict.fromkeys(["Return [%]", objective.stat]):
                values = [Objective(stat).value(getattr(w, key)) for w in chosen]
                numbers = [v for v in values if v is not None]
                side[f"mean {stat} per window"] = (sum(numbers) / len(numbers)
                                                   if numbers else None)
    return result
