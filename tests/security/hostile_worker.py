"""A fake sandbox worker: what a strategy that escaped the language layer could send the host.

Started by ``test_hostile_worker.py`` in place of ``sandtrade.sandbox.worker`` (through
``Supervisor.worker_command``) as ``python -I hostile_worker.py MODE``. It speaks the real
protocol up to the point where a worker would simulate: it answers ``boot`` with ``ready``,
takes the task and every bar the host sends until ``end``, then sends what MODE says instead
of an honest simulation. It never exits on its own after that: the host must end it.

One symbol's bars are expected (one equity value per bar), as the tests send them.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import time
from array import array
from datetime import datetime, timedelta
from typing import Any

from sandtrade.backtest.result import TRADES, Simulation
from sandtrade.models import Trade
from sandtrade.sandbox.wire import decode_bars, read_frame, write_frame

#: What every honest equity value starts from; the good mode's last value is START + bars - 1.
START = 10_000.0


def simulation(bars: int, **changes: Any) -> bytes:
    """A valid Simulation (no trades) for ``bars`` values, with ``changes`` applied."""
    sim = Simulation(strategy="fake.py", symbols=["ACME"], bars=bars).model_dump(mode="json")
    sim.update(changes)
    return json.dumps(sim).encode()


def trade(k: int, mode: str = "python") -> Any:
    """The k-th of some well-formed closed trades (a model, or its JSON form)."""
    t = Trade(account="backtest", symbol="ACME", size=1.0,
              entry_time=datetime(2020, 1, 1) + timedelta(hours=k), entry_price=100.0 + k,
              exit_time=datetime(2020, 1, 1) + timedelta(hours=k + 1), exit_price=101.0 + k,
              pnl=1.0, return_pct=0.01, commission=0.0)
    return t.model_dump(mode="json") if mode == "json" else t


def trades_blob(trades: list[Trade]) -> bytes:
    """Trades as the worker sends them along with equity values."""
    return TRADES.dump_json(trades)


def equities(values: list[float]) -> tuple[dict[str, Any], bytes]:
    """An honest equity frame for ``values``."""
    return {"type": "equity", "count": len(values)}, array("d", values).tobytes()


def frames_for(mode: str, n: int) -> list[tuple[dict[str, Any], bytes]]:
    """What ``mode`` sends once the host has sent ``n`` bars."""
    honest = [START + k for k in range(n)]
    if mode == "good":
        # Two frames, as the real worker sends batches; then a valid result.
        return [equities(honest[:1]), equities(honest[1:]),
                ({"type": "result"}, simulation(n))]
    if mode == "too_many":
        return [equities([*honest, START])]
    if mode == "nan":
        return [equities([*honest[:5], math.nan])]
    if mode == "inf":
        return [equities([*honest[:5], math.inf])]
    if mode == "count_short":  # says n values, carries n - 1
        return [({"type": "equity", "count": n}, array("d", honest[:-1]).tobytes())]
    if mode == "count_str":
        return [({"type": "equity", "count": "3"}, array("d", honest[:3]).tobytes())]
    if mode == "count_float":  # 2.5 * 8 == 20 bytes: only the type check can catch it
        return [({"type": "equity", "count": 2.5}, array("d", honest[:3]).tobytes()[:20])]
    if mode == "bars_mismatch":
        return [equities(honest), ({"type": "result"}, simulation(n - 1))]
    if mode == "warmup_negative":
        return [equities(honest), ({"type": "result"}, simulation(n, warmup_bars=-1))]
    if mode == "huge_header":  # a header of 3.1 MiB, past the host's 1 MiB cap
        return [({"type": "equity", "count": 0, "pad": "x" * int(3.1 * 2**20)}, b"")]
    if mode == "result_not_json":
        return [equities(honest), ({"type": "result"}, b"{not json")]
    if mode == "log_flood":  # a strategy log past the limit the worker was booted with
        return [equities(honest), ({"type": "result"}, simulation(n, logs=["x" * 999] * 100))]
    if mode.startswith("plot_"):  # ctx.plot's series out of their bounds (the host's report)
        point = {"times": ["2020-01-01T00:00:00"], "values": [1.0]}
        plots = {
            "plot_many": [{"name": f"s{k}", **point} for k in range(17)],
            "plot_name": [{"name": "\x1b]0;owned\x07", **point}],
            "plot_nan": [{"name": "x", "times": point["times"], "values": [math.nan]}],
            "plot_long": [{"name": "x", "times": point["times"] * 5000,
                           "values": [1.0] * 5000}],
        }[mode]
        return [equities(honest), ({"type": "result"}, simulation(n, plots=plots))]
    if mode == "good_trades":
        # Two trades sent along with the values, one more in the result.
        sent = trades_blob([trade(0), trade(1)])
        return [({"type": "equity", "count": n, "trades_bytes": len(sent)},
                 array("d", honest).tobytes() + sent),
                ({"type": "result"}, simulation(n, trades=[trade(2, "json")], trades_sent=2))]
    if mode == "trades_bytes_lie":  # says more bytes of trades than the frame carries
        sent = trades_blob([trade(0)])
        return [({"type": "equity", "count": n, "trades_bytes": len(sent) + 8},
                 array("d", honest).tobytes() + sent)]
    if mode == "trades_bytes_negative":  # -8: the equity part would swallow 8 trade bytes
        return [({"type": "equity", "count": n - 1, "trades_bytes": -8},
                 array("d", honest).tobytes())]
    if mode == "trades_flood":  # frame after frame of trades, each under the size cap
        blob = trades_blob([trade(k) for k in range(40)])
        return [({"type": "equity", "count": 1, "trades_bytes": len(blob)},
                 array("d", honest[k:k + 1]).tobytes() + blob) for k in range(20)]
    if mode == "trades_invalid":  # a trade whose price is a string that is not a number
        bad = json.dumps([{**trade(0, "json"), "exit_price": "lots"}]).encode()
        return [({"type": "equity", "count": n, "trades_bytes": len(bad)},
                 array("d", honest).tobytes() + bad)]
    if mode == "trades_sent_lie":  # one trade sent, the result says three
        sent = trades_blob([trade(0)])
        return [({"type": "equity", "count": n, "trades_bytes": len(sent)},
                 array("d", honest).tobytes() + sent),
                ({"type": "result"}, simulation(n, trades_sent=3))]
    if mode == "progress_then_wait":
        return [({"type": "progress", "done": n}, b"")]
    if mode == "progress_then_result":
        # An unexpected frame, immediately followed by a well-formed run: whatever is already
        # queued behind the bad frame must not be taken as the worker's answer.
        return [({"type": "progress", "done": n}, b""), equities(honest),
                ({"type": "result"}, simulation(n))]
    if mode == "fork":
        return []
    raise SystemExit(f"unknown mode {mode!r}")


def main() -> int:
    """Speak the protocol as a worker, then misbehave as ``sys.argv[1]`` says."""
    mode = sys.argv[1]
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    header, _ = read_frame(stdin)
    assert header["type"] == "boot", header
    write_frame(stdout, {"type": "ready", "layers": {}})
    task, _ = read_frame(stdin)
    assert task["type"] == "task", task
    symbols = [str(s) for s in task["symbols"]]
    if mode == "fork":  # a process of its own once confined, which no worker may have
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        time.sleep(60)
    n = 0
    while True:
        header, payload = read_frame(stdin)
        if header["type"] == "end":
            break
        n += len(decode_bars(int(header["count"]), payload, symbols))
    # One write, so every frame is in the host's queue before it looks at the first.
    out = io.BytesIO()
    for head, body in frames_for(mode, n):
        write_frame(out, head, body)
    stdout.write(out.getvalue())
    stdout.flush()
    time.sleep(60)  # the host must end this process; it never ends by itself
    return 0


if __name__ == "__main__":
    sys.exit(main())
