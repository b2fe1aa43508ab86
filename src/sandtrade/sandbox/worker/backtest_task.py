"""The worker's ``backtest`` task: simulate on bars streamed by the host, stream back equity.

The host (:mod:`sandtrade.sandbox.runner`) reads the CSV history and sends it in large binary
chunks (``bars`` frames, merged in time order, then ``end``); :class:`BarReader` splits them
into one stream a symbol for the engine. The engine's measurements go back in ``equity``
frames: the equity value of each timestamp (8 bytes) and the trades closed since the last
frame, so the host measures the run on its own core while this process goes on. The last
frame is the ``result``: the engine's :class:`~sandtrade.backtest.result.Simulation`. No round
trip per bar.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable, Iterator
from typing import IO, Any

from sandtrade.backtest.engine import simulate
from sandtrade.backtest.request import BacktestRequest
from sandtrade.backtest.result import TRADES
from sandtrade.broker.fills import FillProfile
from sandtrade.errors import SandtradeError
from sandtrade.models import Bar, Trade
from sandtrade.sandbox.wire import decode_bars, read_frame, write_frame
from sandtrade.strategy.loader import LoadedStrategy, resolve_params
from sandtrade.strategy.policy import StrategyLog

__all__ = ["BarReader", "run_backtest_task"]


class BarReader:
    """Demultiplexes the host's bar chunks (merged in time order) into one stream a symbol."""

    def __init__(self, stream: IO[bytes], symbols: list[str]) -> None:
        self._stream = stream
        self._symbols = symbols
        self._queues: dict[str, deque[Bar]] = {s: deque() for s in symbols}
        self._done = False

    def _pull(self) -> bool:
        chunk = self._next_chunk()
        if chunk is None:
            return False
        queues = self._queues
        for bar in chunk:
            queues[bar.symbol].append(bar)
        return True

    def stream(self, symbol: str) -> Iterator[Bar]:
        """The bars of ``symbol`` in time order, read from the channel as needed."""
        if len(self._symbols) == 1:  # one symbol: hand over whole decoded chunks
            while (chunk := self._next_chunk()) is not None:
                yield from chunk
            return
        queue = self._queues[symbol]
        while True:
            while queue:
                yield queue.popleft()
            if not self._pull():
                while queue:
                    yield queue.popleft()
                return

    def read_all(self) -> list[Bar]:
        """Every bar up to ``end``, merged in time order as sent (a sweep keeps them all)."""
        out: list[Bar] = []
        while (chunk := self._next_chunk()) is not None:
            out.extend(chunk)
        return out

    def _next_chunk(self) -> list[Bar] | None:
        if self._done:
            return None
        header, payload = read_frame(self._stream)
        if header["type"] == "end":
            self._done = True
            return None
        if header["type"] != "bars":
            raise SandtradeError(f"unexpected frame {header['type']!r} while reading bars")
        return decode_bars(int(header["count"]), payload, self._symbols)


def run_backtest_task(task: dict[str, Any], strategy: LoadedStrategy, log: StrategyLog,
                      stdin: IO[bytes], stdout: IO[bytes], *,
                      beat: Callable[[], None] | None,
                      profiles: list[type[FillProfile]]) -> None:
    """Run the back-test ``task`` asks for on the bars that arrive on ``stdin``; answers on
    ``stdout``. ``profiles``: the plugins' fill profiles the host had the worker import."""
    path = str(task["path"])
    request = BacktestRequest.model_validate(task["request"])
    params = resolve_params(strategy.params, request.params, where=path,
                            specs=strategy.specs, lines=strategy.lines)
    symbols = [str(s) for s in task["symbols"]]
    if request.options is not None and request.options.source != "synthetic":
        raise SandtradeError(f"options.source {request.options.source!r}: a sandboxed "
                             "back-test synthesises its chains from the bars (it reads no "
                             "files); run recorded chains in-process")
    reader = BarReader(stdin, symbols)

    sent = 0

    def measure(bars: list[Bar], equities: array[float], trades: list[Trade]) -> None:
        # The host has the bars: it pairs them with these values and does the measuring.
        # Trades closed since the last frame go along, so the host validates them while the
        # run goes on instead of all at its end.
        nonlocal sent
        new = TRADES.dump_json(trades[sent:]) if len(trades) > sent else b""
        sent = len(trades)
        if equities or new:
            write_frame(stdout, {"type": "equity", "count": len(equities),
                                 "trades_bytes": len(new)}, equities.tobytes() + new)

    sim = simulate(strategy, {s: reader.stream(s) for s in symbols}, cash=request.cash,
                   settings=request.broker, params=params, measure=measure, keep_bars=False,
                   close_at_end=request.close_at_end, log=log.write_line, profiles=profiles,
                   heartbeat=beat, risk=request.risk, options=request.options)
    sim.trades = sim.trades[sent:]
    sim.trades_sent = sent
    # A lone surrogate ("\ud800") is a str but not UTF-8: the result would not serialise and
    # the run would fail on a print(). It travels as its escape, as text.
    sim.logs = [line if line.isascii() else line.encode("utf-8", "backslashreplace").decode()
                for line in log.lines]
    if log.dropped:
        sim.warnings.append(f"the strategy log reached its {log.max_bytes:,}-byte limit; "
                            f"{log.dropped:,} lines were dropped")
    write_frame(stdout, {"type": "result"}, sim.model_dump_json().encode())
