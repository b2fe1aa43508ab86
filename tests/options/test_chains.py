"""Synthetic and recorded chains, the quote provider the broker is given, and position greeks."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from sandtrade.errors import DataError
from sandtrade.models import OptionRight, Position
from sandtrade.options import (
    OptionChain,
    OptionQuotes,
    OptionsSettings,
    RecordedChains,
    SyntheticChains,
    account_greeks,
    load_chain,
    write_chain_csv,
)

from .conftest import NOW


def test_synthetic_chain_lists_strikes_around_spot_and_weekly_and_monthly_expiries(
        chain: OptionChain) -> None:
    assert [str(e) for e in chain.expiries()] == [
        "2025-12-12", "2025-12-19", "2025-12-26", "2026-01-02", "2026-01-16", "2026-02-20"]
    assert chain.strikes(chain.expiries()[0], OptionRight.CALL) == [
        40.0 + 5 * i for i in range(25)]
    for row in chain:
        assert row.bid <= (row.theo or 0) <= row.ask
        assert row.ask - row.bid >= 0.02 - 1e-9 or row.bid == 0  # a worthless one: 0 bid


def test_quotes_follow_the_underlyings_last_price(settings: OptionsSettings) -> None:
    prices = {"XYZ": 100.0}
    quotes = OptionQuotes(SyntheticChains(settings), prices.get, lambda: NOW)
    q1 = quotes("XYZ251219C00100000")
    prices["XYZ"] = 110.0
    q2 = quotes("XYZ   251219C00100000")  # padded OCC is the same contract
    assert q1 is not None and q2 is not None and q2.bid > q1.ask
    assert q2.symbol == "XYZ251219C00100000" and q2.time == NOW
    assert quotes("ABC251219C00100000") is None      # underlying not priced
    assert quotes("XYZ") is None                     # not an option
    assert quotes("XYZ251205C00100000") is None      # expired


def test_recorded_chain_round_trip_and_replay_by_time(tmp_path: Path,
                                                      chain: OptionChain) -> None:
    first = write_chain_csv(chain, tmp_path / "XYZ_2025-12-08T15-00.csv")
    later = chain.rows[:4]
    second = write_chain_csv(later, tmp_path / "XYZ_2025-12-09T15-00.csv")
    loaded = load_chain(first, spot=100.0)
    assert loaded.as_of == NOW and len(loaded) == len(chain)
    row, orig = loaded.rows[10], chain.rows[10]
    assert (row.bid, row.ask) == (orig.bid, orig.ask)
    assert row.iv == pytest.approx(orig.iv) and row.delta == pytest.approx(orig.delta)
    source = RecordedChains(OptionsSettings(source="recorded", files=[str(first),
                                                                      f"XYZ={second}"]))
    assert source.chain("XYZ", None, NOW - timedelta(hours=1)) is None
    assert len(source.chain("XYZ", None, NOW + timedelta(hours=1)) or []) == len(chain)
    assert len(source.chain("XYZ", None, NOW + timedelta(days=2)) or []) == 4


def test_alpaca_snapshots_are_read_with_their_greeks(tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    path.write_text(json.dumps({"snapshots": {"SPY260116P00600000": {
        "latestQuote": {"bp": 7.1, "ap": 7.3, "bs": 10, "as": 12},
        "latestTrade": {"p": 7.2, "s": 3},
        "greeks": {"delta": -0.41, "gamma": 0.01, "theta": -0.2, "vega": 0.6, "rho": -0.1},
        "impliedVolatility": 0.18}}, "next_page_token": None}))
    chain = load_chain(path)
    row = chain.rows[0]
    assert (chain.underlying, row.strike, row.right) == ("SPY", 600.0, OptionRight.PUT)
    assert (row.bid, row.ask, row.iv, row.delta) == (7.1, 7.3, 0.18, -0.41)
    assert row.mark == pytest.approx(7.2)


def test_yfinance_records_fill_missing_greeks_from_the_spot(tmp_path: Path) -> None:
    path = tmp_path / "AAPL_2025-12-08T15-00.json"
    path.write_text(json.dumps({"calls": [{"contractSymbol": "AAPL251219C00200000",
                                           "strike": 200.0, "bid": 6.0, "ask": 6.4,
                                           "lastPrice": 6.2, "volume": None,
                                           "openInterest": 120, "impliedVolatility": None}]}))
    row = load_chain(path, spot=204.0).rows[0]
    assert row.volume is None and row.open_interest == 120
    assert row.iv is not None and 0.05 < row.iv < 1 and row.delta is not None


@pytest.mark.parametrize(("text", "message"), [
    ("contractSymbol,strike,bid,ask\nXYZ251219C00100000,100,abc,2\n",
     ":2: bid must be a number, got 'abc'"),
    ("contractSymbol,strike,bid,ask\nXYZ251219C00100000,100,3,2\n", ":2: bid 3 is above ask 2"),
    ("contractSymbol,strike,bid,ask\nNOTANOPTION,100,1,2\n", ":2: 'NOTANOPTION' is not an OCC"),
    ("contractSymbol,strike,bid,ask\nXYZ251219C00100000,105,1,2\n",
     ":2: strike 105 differs from the symbol's 100"),
    ("contractSymbol,strike,bid,ask\nXYZ251219C00100000,100,1,2\nABC251219C00100000,100,1,2\n",
     ":3: ABC251219C00100000 is an option on ABC, not XYZ"),
    ("symbol,bid\nX,1\n", ":1: missing column(s) contractSymbol, ask"),
])
def test_a_bad_chain_file_names_line_and_column(tmp_path: Path, text: str,
                                                message: str) -> None:
    path = tmp_path / "chain.csv"
    path.write_text(text)
    with pytest.raises(DataError) as err:
        load_chain(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_account_greeks_sum_positions_marked_at_mid(settings: OptionsSettings) -> None:
    quotes = OptionQuotes(SyntheticChains(settings), {"XYZ": 100.0}.get, lambda: NOW)
    call = quotes.row("XYZ251219C00100000")
    assert call is not None
    positions = [
        Position(account="a", symbol="XYZ251219C00100000", qty=-2, avg_price=3.0,
                 multiplier=100),
        Position(account="a", symbol="XYZ", qty=100, avg_price=95.0),
        Position(account="a", symbol="XYZ260116P00050000", qty=1, avg_price=0.5,
                 multiplier=100),
    ]
    book = account_greeks(positions, quotes.row, {"XYZ": 100.0}.get)
    short_call, stock, _ = book.positions
    assert short_call.mark == pytest.approx((call.bid + call.ask) / 2)
    assert short_call.unrealized_pnl == pytest.approx(-2 * (short_call.mark - 3.0) * 100)
    assert short_call.delta == pytest.approx(-200 * (call.delta or 0))
    assert short_call.theta == pytest.approx(-200 * (call.theta or 0))
    assert short_call.theta > 0  # a short option earns its time decay
    assert stock.delta == 100 and stock.unrealized_pnl == 500
    assert book.delta == pytest.approx(sum(p.delta for p in book.positions))
    assert book.by_underlying()["XYZ"][0] == pytest.approx(book.delta)
