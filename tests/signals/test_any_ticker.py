"""Any ticker is tradable on paper: symbols no market source covers, end to end.

Every test runs a real host (SQLite store, live broker, uvicorn on ``127.0.0.1:0`` with the
TradingView plugin) fed by the test-driven ``steps`` source, which covers AAA and BBB only; the
alerts name other tickers, as a trader's first alerts do. The store is read with ``sqlite3``
where what matters is what was written.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sandtrade.host.config import ConfigError, load_settings
from sandtrade.models import AssetClass
from sandtrade.signal_model import SignalStatus
from sandtrade.signals.replay import replay
from signals.conftest import Host, HostFactory, post, start_host, stop_host

NO_PRICE = ('no price for AAPL: add "price": {{close}} to the alert, or configure a market '
            "source that covers it")






def _position(host: Host, symbol: str) -> float:
    assert host.runtime.live is not None
    return float(host.runtime.live.call(lambda b: b.position_qty("paper", symbol)))


def _stored_fills(host: Host) -> list[tuple[str, float, float, str]]:
    """(symbol, qty, price, price_source) of every fill, from the SQLite columns."""
    path = Path(host.runtime.settings.data_dir) / "sandtrade.db"
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT symbol, qty, price, price_source FROM fills ORDER BY seq"
                            ).fetchall()
    return [(str(s), float(q), float(p), str(src)) for s, q, p, src in rows]


# ------------------------------------------------------------------ a trader's first alert


def test_aapl_is_bought_at_the_alerts_price_on_a_fresh_host(host: Host) -> None:
    answer = host.send({"ticker": "NASDAQ:AAPL", "action": "buy", "contracts": 10,
                          "price": 187.42})

    assert answer["price_source"] == "signal", answer  # the trader reads it in TradingView
    assert answer["orders"][-1]["symbol"] == "AAPL", answer
    record = host.record(answer["id"])
    assert record.status is SignalStatus.EXECUTED, record.reason
    assert record.price_source == "signal"
    assert "filled 10 at 187.42 (signal price)" in record.reason
    assert _position(host, "AAPL") == 10
    assert _stored_fills(host) == [("AAPL", 10.0, 187.42, "signal")]
    assert host.runtime.live is not None
    inst = host.runtime.live.call(lambda b: b.instrument("AAPL"))
    assert inst is not None and inst.asset_class is AssetClass.EQUITY and inst.lot_size == 1


def test_a_signal_priced_fill_pays_the_brokers_slippage_and_commission(
        make_host: HostFactory) -> None:
    host = make_host("[broker]\nslippage_pct = 0.01\ncommission_pct = 0.001\n")
    host.send("buy 10 AAPL @ 100")

    [(symbol, qty, price, source)] = _stored_fills(host)
    assert (symbol, qty, source) == ("AAPL", 10.0, "signal")
    assert price == pytest.approx(101.0)
    assert host.runtime.live is not None
    account = host.runtime.live.call(lambda b: b.account("paper"))
    assert account.commissions == pytest.approx(10 * 101.0 * 0.001)


def test_every_spelling_of_a_pair_trades_one_position_fractionally(host: Host) -> None:
    for ticker in ("BTC-USD", "BTCUSD", "COINBASE:BTCUSD", "BTC/USD", "KRAKEN:XBTUSD"):
        answer = host.send({"ticker": ticker, "action": "buy", "contracts": 0.001,
                              "price": 60000})
        assert host.record(answer["id"]).status is SignalStatus.EXECUTED
    for ticker in ("BINANCE:BTCUSDT", "BTC/USDT", "BYBIT:BTCUSDT"):
        host.send({"ticker": ticker, "action": "buy", "contracts": 0.0025, "price": 60010})

    assert host.runtime.live is not None
    positions = {p.symbol: p.qty for p in host.runtime.live.call(
        lambda b: b.positions("paper"))}
    assert positions == {"BTC-USD": pytest.approx(0.005), "BTC-USDT": pytest.approx(0.0075)}
    inst = host.runtime.live.call(lambda b: b.instrument("BTC-USDT"))
    assert inst is not None and inst.asset_class is AssetClass.CRYPTO and inst.fractional


def test_an_occ_symbol_is_an_option_of_100_shares(host: Host) -> None:
    answer = host.send({"symbol": "SPY251219C00450000", "action": "buy", "qty": 2,
                          "price": 5.2})

    assert host.record(answer["id"]).status is SignalStatus.EXECUTED
    assert host.runtime.live is not None
    inst = host.runtime.live.call(lambda b: b.instrument("SPY251219C00450000"))
    assert inst is not None and inst.asset_class is AssetClass.OPTION
    assert inst.multiplier == 100 and inst.underlying == "SPY" and inst.strike == 450
    account = host.runtime.live.call(lambda b: b.account("paper"))
    assert account.cash == pytest.approx(account.initial_cash - 2 * 5.2 * 100)


def test_known_symbols_only_refuses_with_the_known_list(make_host: HostFactory) -> None:
    host = make_host('[signals]\nsymbols = "known"\n')

    r = post(host.webhook, {"ticker": "NASDAQ:AAPL", "action": "buy", "contracts": 1,
                            "price": 187.0})

    assert r.status_code == 422, r.text
    assert r.json()["error"] == "symbol: 'AAPL' is not traded on this host (known: AAA, BBB)"


def test_an_alert_without_a_price_for_an_uncovered_symbol_says_what_to_send(host: Host
                                                                             ) -> None:
    r = post(host.webhook, {"ticker": "NASDAQ:AAPL", "action": "buy", "contracts": 1})

    assert r.status_code == 422, r.text
    assert r.json()["error"] == NO_PRICE
    assert host.orders() == []


# ------------------------------------------------------------------ last price and restarts


def test_the_last_price_is_used_after_a_restart_and_the_instrument_survives(
        tmp_path: Path) -> None:
    host = start_host(tmp_path)
    try:
        host.send("buy 10 AAPL @ 100")
    finally:
        stop_host(host)

    host = start_host(tmp_path)
    try:
        assert host.runtime.live is not None
        inst = host.runtime.live.call(lambda b: b.instrument("AAPL"))
        assert inst is not None and inst.asset_class is AssetClass.EQUITY
        assert _position(host, "AAPL") == 10
        account = host.runtime.live.call(lambda b: b.account("paper"))
        assert account.long_market_value == pytest.approx(1000.0)

        answer = host.send({"ticker": "AAPL", "action": "sell", "contracts": 4})

        record = host.record(answer["id"])
        assert record.status is SignalStatus.EXECUTED, record.reason
        assert record.price_source == "last"
        assert _stored_fills(host)[-1] == ("AAPL", 4.0, 100.0, "last")
        assert _position(host, "AAPL") == 6
    finally:
        stop_host(host)


def test_another_accounts_signal_price_neither_fills_nor_values_this_one(host: Host) -> None:
    assert host.runtime.auth is not None and host.runtime.store is not None
    from sandtrade.models import Account
    host.runtime.store.create_account(Account(id="other", cash=10_000, initial_cash=10_000))
    _, other_token = host.runtime.auth.create("other", ("signal",))
    host.send("buy 10 AAPL @ 100")

    r = post(f"{host.url}/webhooks/tradingview/{other_token}", "buy 1 AAPL @ 1")
    assert r.status_code == 200, r.text
    host.wait_idle()
    r = post(f"{host.url}/webhooks/tradingview/{other_token}", "buy 1 MSFT")
    assert r.status_code == 422 and "no price for MSFT" in r.json()["error"]

    assert host.runtime.live is not None
    account = host.runtime.live.call(lambda b: b.account("paper"))
    assert account.long_market_value == pytest.approx(1000.0), "valued at its own price"


# ------------------------------------------------------------------ a market source takes over


def test_a_market_source_that_starts_covering_a_symbol_takes_over(host: Host) -> None:
    host.send("buy 10 AAPL @ 100")
    host.market.publish(150.0, symbol="AAPL")  # the source now covers AAPL

    answer = host.send({"ticker": "AAPL", "action": "buy", "contracts": 1, "price": 100})
    assert answer["id"]
    record = host.record(answer["id"])
    assert record.price_source == "feed"
    assert [o.status.value for o in host.orders() if o.id in record.orders] == ["accepted"]
    host.market.publish(151.0, symbol="AAPL")

    assert _stored_fills(host) == [("AAPL", 10.0, 100.0, "signal"),
                                   ("AAPL", 1.0, 151.0, "feed")]
    assert host.runtime.live is not None
    account = host.runtime.live.call(lambda b: b.account("paper"))
    assert account.long_market_value == pytest.approx(11 * 151.0), "valued at the feed"


# ------------------------------------------------------------------ [symbols]


def test_symbols_table_aliases_and_enforces_lot_size_and_min_notional(
        make_host: HostFactory) -> None:
    host = make_host('[symbols]\n"MYCOIN" = "BTCUSD"\n\n[symbols.AAPL]\nlot_size = 10\n\n'
                     '[symbols."BTC-USD"]\nmin_notional = 50\n')

    host.send({"ticker": "MYCOIN", "action": "buy", "contracts": 0.001, "price": 60000})
    assert _position(host, "BTC-USD") == pytest.approx(0.001)

    r = post(host.webhook, "buy 5 AAPL @ 100")
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "qty: quantity 5.0 is below AAPL's lot size 10 (the smallest " \
                                "quantity it trades in)"
    host.send("buy 20 AAPL @ 100")
    assert _position(host, "AAPL") == 20

    r = post(host.webhook, {"ticker": "BTCUSD", "action": "buy", "contracts": 0.0001,
                            "price": 60000})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "qty: order value 6.00 (0.0001 BTC-USD at 60000) is below " \
                                "BTC-USD's minimum notional 50.00"


@pytest.mark.parametrize(("toml", "expected"), [
    ("[symbols.AAPL]\nlot_size = -1\n", "symbols: AAPL.lot_size: Input should be greater than 0"),
    ("[symbols.AAPL]\nlots = 1\n", "symbols: AAPL.lots: Extra inputs are not permitted"),
    ("[symbols.AAPL]\nkind = \"bond\"\n", "symbols: AAPL.kind: Input should be 'equity', "
                                          "'crypto' or 'option'"),
    ("[symbols.AAPL]\nkind = \"option\"\n", "symbols: AAPL: 'AAPL' is not an OCC option symbol"),
    ('[symbols]\n"A" = "B"\n"B" = "C"\n', "symbols: A: an alias of B, which is itself an alias "
                                          "(of C)"),
    ('[symbols]\n"AAPL" = 3\n', "symbols: AAPL: expected the symbol it is an alias of"),
])
def test_bad_symbols_settings_name_the_key(tmp_path: Path, toml: str, expected: str) -> None:
    path = tmp_path / "sandtrade.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as e:
        load_settings(path)
    assert expected in str(e.value), str(e.value)
    assert str(e.value).startswith(f"{path}:")


# ------------------------------------------------------------------ replay


def test_a_replay_trades_signal_priced_symbols_as_live(host: Host) -> None:
    host.market.publish(100.0)
    host.send("buy 10 AAPL @ 100")
    host.send("sell 4 AAPL")
    host.market.publish(101.0)
    runtime = host.runtime
    assert runtime.source is not None and runtime.store is not None
    records = [r for _, r in runtime.store.list_signals(limit=100, oldest_first=True)]

    result = replay(records, list(host.market.published),
                    instruments=runtime.source.instruments(),
                    formats=runtime.plugins.signal_formats(), cash=runtime.settings.cash)

    assert all(not s.failed for s in result.signals), result.signals
    assert [(row[1], row[2], row[3], row[4], row[6]) for row in result.fill_rows()] == [
        ("AAPL", "buy", 10.0, 100.0, "signal"), ("AAPL", "sell", 4.0, 100.0, "last")]
    assert {p.symbol: p.qty for p in result.positions} == {"AAPL": 6.0}
