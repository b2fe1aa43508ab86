"""A process that opens and closes iron condors on a SQLite store as fast as it can, until
it is killed (tests/broker/test_multileg_kill.py kills it with SIGKILL mid-fill)."""

from __future__ import annotations

import sys
from datetime import datetime

from sandtrade.broker import BrokerSettings, PaperBroker
from sandtrade.broker.ids import unique_ids
from sandtrade.models import Instrument, Quote
from sandtrade.store import SQLiteStore

SYMBOLS = ["SPY240119P00460000", "SPY240119P00465000", "SPY240119C00475000",
           "SPY240119C00480000"]


def quotes(symbol: str) -> Quote | None:
    return Quote(symbol, datetime(2024, 1, 2), 1.0, 1.2) if symbol in SYMBOLS else None


def main(path: str) -> None:
    broker = PaperBroker(BrokerSettings(), store=SQLiteStore(path), ids=unique_ids(),
                         quotes=quotes, instruments=[Instrument.equity("SPY")])
    broker.set_time(datetime(2024, 1, 2, 15))
    broker.mark("SPY", 470.0)
    broker.open_account("acct", 1_000_000.0)
    legs = [{"symbol": s, "side": side} for s, side in zip(
        SYMBOLS, ["buy", "sell", "sell", "buy"], strict=True)]
    print("READY", flush=True)
    while True:
        opened = broker.submit_multileg("acct", legs, 1)
        broker.close_group("acct", opened.id)


if __name__ == "__main__":
    main(sys.argv[1])
