"""The built-in market-data sources: a replay of CSV history and a synthetic generator.

Both are contributed through the ``sandtrade_market_sources`` hook like any plugin's source.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sandtrade.errors import DataError
from sandtrade.market.continuation import SourcePart, Then
from sandtrade.market.csvdata import iter_csv
from sandtrade.market.synthetic import iter_gbm_bars
from sandtrade.models import Bar, Instrument

__all__ = ["MarketSettings", "ReplaySource", "SyntheticSource"]


class MarketSettings(BaseModel):
    """``[market]`` of the configuration: which source feeds the hub, and how fast."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(
        "replay", description="Name of a market source plugin, optionally with its argument "
                              "after a colon: 'ccxt:binance' is the ccxt source with exchange "
                              "= 'binance' (each source says what its argument is).")
    source_options: dict[str, Any] = Field(
        default_factory=dict,
        description="The chosen source's own settings. The host fills it from [sources.NAME] "
                    "and the argument of 'NAME:ARG'; write them there.")
    files: list[str] = Field(
        default_factory=list,
        description="replay: CSV files, as PATH or SYMBOL=PATH (the symbol defaults to the "
                    "file name); empty means the shipped sample DEMO.csv.")
    symbols: list[str] = Field(default_factory=lambda: ["SYN"],
                               description="synthetic: the symbols to generate.")
    interval: str = Field("1h", description="synthetic: time between bars.")
    seed: int = Field(42, description="synthetic: random seed (also of the bars that "
                                       "then = 'synthetic' makes).")
    then: Then | None = Field(
        None, description="What the feed does when the source has no more bars: 'loop' plays "
                          "it again with times moved forward, 'synthetic' continues each "
                          "symbol with seeded random bars from its last close, 'stop' ends "
                          "it (orders on its symbols are then refused, with the reason). "
                          "Default: loop for the built-in DEMO sample, stop otherwise.")
    bars_per_second: float = Field(
        20.0, ge=0, description="Pace of publication; 0 publishes as fast as possible.")
    history_limit: int = Field(200_000, ge=1, description="Bars kept per symbol.")

    def resolved_then(self) -> Then:
        """``then``, or its default: ``loop`` for the built-in sample (a host left running
        on it never runs dry), ``stop`` for your own files and other sources (a replay of
        your data ends where your data ends; nothing is invented unless you ask)."""
        if self.then is not None:
            return self.then
        return "loop" if self.source == "replay" and not self.files else "stop"


def _parse_file(spec: str) -> tuple[str, Path]:
    from sandtrade.market.samples import resolve_data_path

    symbol, sep, path = spec.partition("=")
    if not sep:
        return Path(spec).stem.upper(), Path(resolve_data_path(spec))
    return symbol.strip(), Path(resolve_data_path(path.strip()))


class ReplaySource:
    """Bars from CSV files, merged in time order (several files, several symbols)."""

    name = "replay"

    def __init__(self, settings: MarketSettings) -> None:
        from sandtrade.market import sample_csv_path
        from sandtrade.market.samples import missing_file_hint

        specs = settings.files or [f"DEMO={sample_csv_path()}"]
        self.files = [_parse_file(s) for s in specs]
        for symbol, path in self.files:
            if not path.is_file():
                raise DataError(f"market.files: {path}: no such CSV file (for {symbol}); "
                                f"{missing_file_hint()}")
        seen = [s for s, _ in self.files]
        dup = {s for s in seen if seen.count(s) > 1}
        if dup:
            raise DataError(f"market.files: symbol {sorted(dup)[0]!r} is given by two files")

    def instruments(self) -> list[Instrument]:
        return [Instrument.for_symbol(symbol) for symbol, _ in self.files]

    def bars(self) -> Iterator[Bar]:
        streams = [iter_csv(path, symbol) for symbol, path in self.files]
        if len(streams) == 1:
            return streams[0]
        return heapq.merge(*streams, key=lambda b: b.time)

    def parts(self) -> list[SourcePart]:
        """One part per file: when the feed goes on past a file's end (``market.then``),
        each file loops, continues or ends on its own."""
        return [SourcePart((symbol,), partial(iter_csv, path, symbol))
                for symbol, path in self.files]


class SyntheticSource:
    """Endless seeded GBM bars for each symbol, one bar per interval from 2020-01-01."""

    name = "synthetic"

    def __init__(self, settings: MarketSettings) -> None:
        self.settings = settings

    def instruments(self) -> list[Instrument]:
        return [Instrument.for_symbol(s) for s in self.settings.symbols]

    def bars(self) -> Iterator[Bar]:
        s = self.settings
        streams = [iter_gbm_bars(10**9, symbol=sym, seed=s.seed + i, interval=s.interval,
                                 start=datetime(2020, 1, 1))
                   for i, sym in enumerate(s.symbols)]
        return heapq.merge(*streams, key=lambda b: b.time)
