"""Running small Pine scripts on a few hand-made bars."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sandtrade.backtest.result import BacktestResult
from sandtrade.backtest.runner import run_backtest
from sandtrade.broker import BrokerSettings
from sandtrade.models import Bar
from sandtrade.pine import import_pine
from sandtrade.strategy.loader import load_strategy_source

HEAD = '//@version=5\nstrategy("t")\n'


def bars(closes: list[float], *, spread: float = 0.5) -> list[Bar]:
    """Daily bars: each opens at the previous close, and reaches ``spread`` beyond its body."""
    out = []
    t = datetime(2024, 1, 1)
    prev = closes[0]
    for i, c in enumerate(closes):
        o = prev
        out.append(Bar("T", t + timedelta(days=i), o, max(o, c) + spread, min(o, c) - spread,
                       c, 1000.0))
        prev = c
    return out


def run(pine: str, data: list[Bar], **settings: Any) -> BacktestResult:
    """Import ``pine``, load it under the sandbox's policy and back-test it on ``data``."""
    imported = import_pine(pine, "t.pine")
    strategy = load_strategy_source(imported.source, "t.py", restricted=True)
    broker = {k: v for k, v in imported.settings.items() if k != "cash"}
    return run_backtest(strategy, data, cash=settings.pop("cash", 100_000.0),
                        settings=BrokerSettings(**broker), **settings)


def alerts(result: BacktestResult) -> list[str]:
    """The ``alert()`` messages of a run, in order."""
    return [line.split(" ALERT ", 1)[1] for line in result.logs if " ALERT " in line]
