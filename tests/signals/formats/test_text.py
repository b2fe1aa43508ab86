"""The ``text`` format: one command per line or ``;``."""

from __future__ import annotations

import pytest

from sandtrade.models import ExitSpec
from sandtrade.signal_model import Command, SizeSpec
from sandtrade.signals.formats import MAX_COMMANDS

from .reading import parse, refused, target


@pytest.mark.parametrize(("body", "expected"), [
    ("buy 10 AAPL", [Command(action="buy", symbol="AAPL", qty=10.0)]),
    ("sell 0.5 BTCUSD limit 65000",
     [Command(action="sell", symbol="BTCUSD", qty=0.5, order_type="limit",
              limit_price=65000.0)]),
    ("buy 10 AAPL stop 150 limit 151",
     [Command(action="buy", symbol="AAPL", qty=10.0, order_type="stop_limit",
              stop_price=150.0, limit_price=151.0)]),
    ("sell 3 AAPL stop 140", [Command(action="sell", symbol="AAPL", qty=3.0,
                                      order_type="stop", stop_price=140.0)]),
    ("buy 10 AAPL market", [Command(action="buy", symbol="AAPL", qty=10.0)]),
    ("close AAPL", [target("AAPL", 0.0)]),
    ("flat AAPL", [target("AAPL", 0.0)]),
    ("long 10 AAPL", [target("AAPL", 10.0)]),
    ("short 5 AAPL", [target("AAPL", -5.0)]),
    ("target -5 AAPL", [target("AAPL", -5.0)]),
    ("cancel AAPL", [Command(action="cancel", symbol="AAPL", qty=0.0)]),
    ("BUY 10 nasdaq:aapl", [Command(action="buy", symbol="AAPL", qty=10.0)]),
    ("buy 10 aapl", [Command(action="buy", symbol="AAPL", qty=10.0)]),
])
def test_text_command_is_read(body: str, expected: list[Command]) -> None:
    signal = parse(body)
    assert signal.format == "text"
    assert signal.commands == expected


@pytest.mark.parametrize("body", ["close AAPL; short 10 AAPL", "close AAPL\nshort 10 AAPL",
                                  "close AAPL\r\nshort 10 AAPL\r\n",
                                  "close AAPL;\n\nshort 10 AAPL;"])
def test_text_several_commands_keep_their_order(body: str) -> None:
    signal = parse(body)
    assert signal.commands == [target("AAPL", 0.0), target("AAPL", -10.0)]
    assert signal.action == "close" and signal.symbol == "AAPL"
    assert signal.fields["commands"] == ["close AAPL", "short 10 AAPL"]


def test_text_key_value_words_set_the_signal_fields() -> None:
    signal = parse("buy 10 aapl account=acc2 id=AAPL-1 comment=breakout strategy=s1")
    assert signal.commands == [Command(action="buy", symbol="AAPL", qty=10.0)]
    assert (signal.account, signal.strategy, signal.comment) == ("acc2", "s1", "breakout")
    assert (signal.alert_id, signal.idempotency_key) == ("AAPL-1", "AAPL-1")


@pytest.mark.parametrize(("body", "field", "message"), [
    ("purchase 10 AAPL", "command", "unknown action 'purchase' in 'purchase 10 AAPL' (use one "
     "of: buy, sell, close, flat, long, short, target, cancel, exit)"),
    ("buy 10", "command", "no symbol in 'buy 10', e.g. 'buy 10 AAPL'"),
    ("close 5 AAPL", "command quantity",
     "close takes no quantity (it closes the whole position)"),
    ("buy -5 AAPL", "command quantity", "must be above 0, got -5"),
    ("cancel 5 AAPL", "command", "cancel takes only a symbol in 'cancel 5 AAPL'"),
    ("buy 10 AAPL limit", "command", "'limit' needs a price after it in 'buy 10 AAPL limit'"),
    ("buy 10 AAPL limit 0", "command", "limit price must be above 0 in 'buy 10 AAPL limit 0'"),
    ("buy 10 AAPL limit abc", "command limit price", "'abc' is not a number"),
    ("buy 10 AAPL MSFT", "command",
     "two symbols in 'buy 10 AAPL MSFT' (AAPL and MSFT); give one per command"),
    ("buy 10 20 AAPL", "command", "two quantities in 'buy 10 20 AAPL'"),
    ("buy 10 AAPL colour=red", "command", "unknown setting 'colour' in 'buy 10 AAPL "
     "colour=red' (known: account, strategy, id, comment, idempotency_key, price, tp, sl, "
     "trail)"),
    ("buy 10 AAPL qtty=3", "command", "unknown setting 'qtty' in 'buy 10 AAPL qtty=3' (known: "
     "account, strategy, id, comment, idempotency_key, price, tp, sl, trail)"),
    ("buy 10 AAPL tpp=3", "command", "unknown setting 'tpp' in 'buy 10 AAPL tpp=3' (did you "
     "mean 'tp'? known: account, strategy, id, comment, idempotency_key, price, tp, sl, "
     "trail)"),
    ("buy,10,", "command",
     "'buy,10,' is comma-separated with an empty part; write it with spaces, e.g. 'buy 10 "
     "AAPL'"),
    ("60123456789,buy,EURUSD,risk=1", "command",
     "'60123456789,buy,EURUSD,risk=1' starts with a number (a PineConnector license id?); "
     "write the action first, e.g. 'buy,AAPL,10'"),
    ("buy | | Long", "command",
     "'buy | | Long' is pipe-separated but not ACTION | TICKER@PRICE | COMMENT"),
    ("close AAPL tp=200", "command",
     "tp, sl and trail go with an entry (buy, sell, long, short), not close, in "
     "'close AAPL tp=200'"),
    ("buy 10 AAPL tp=0", "command tp", "must be above 0, got 0"),
    ("buy 1e400 AAPL", "command quantity", "'1e400' is not a finite number"),
    ("buy 10 AAPL\nsell x AAPL", "command 2", "two symbols in 'sell x AAPL' (X and AAPL); "
     "give one per command"),
])
def test_text_refusals_name_the_command_and_the_problem(body: str, field: str,
                                                        message: str) -> None:
    e = refused(body)
    assert (e.field, e.detail) == (field, message)


def test_text_twenty_one_commands_are_refused() -> None:
    e = refused("\n".join(["buy 1 AAPL"] * (MAX_COMMANDS + 1)))
    assert e.field is None
    assert str(e) == f"{MAX_COMMANDS + 1} commands (at most {MAX_COMMANDS})"


@pytest.mark.parametrize(("body", "message"), [
    ("buy 1,5 AAPL", "'1,5' is a number written with a comma: use a decimal point: 1.5"),
    ("buy 1,000 AAPL", "'1,000' is a number written with a comma: write 1000 without "
     "separators (or 1.000 if the comma is a decimal comma)"),
])
def test_text_comma_numbers_are_refused(body: str, message: str) -> None:
    e = refused(body)
    assert e.field == "command quantity"
    assert e.detail == message


# ------------------------------------------------------------------ the one-line shapes of bridges


@pytest.mark.parametrize(("body", "commands", "price", "comment"), [
    # rfwarn/TradingView-Alpaca-Bridge README.md: "{{strategy.order.action}} | {{ticker}}@
    # {{close}} | {{strategy.order.id}}", and its example "order sell | MSFT@337.57 | ..."
    ("buy | AAPL@187.42 | Long",
     [Command(action="buy", symbol="AAPL", qty=0.0,
              size=SizeSpec(type="default", field="command quantity"))], 187.42, "Long"),
    ("order sell | MSFT@337.57 | Directional Movement Index",
     [Command(action="sell", symbol="MSFT", qty=0.0,
              size=SizeSpec(type="default", field="command quantity"))], 337.57,
     "Directional Movement Index"),
    ("sell 5 | MSFT", [Command(action="sell", symbol="MSFT", qty=5.0)], None, None),
    # comma-separated, the words of "buy 10 AAPL" (XFactor-style "AAPL,buy,...")
    ("buy,AAPL,10", [Command(action="buy", symbol="AAPL", qty=10.0)], None, None),
    ("AAPL, sell, 3", [Command(action="sell", symbol="AAPL", qty=3.0)], None, None),
    # TICKER ACTION QTY
    ("AAPL buy 10", [Command(action="buy", symbol="AAPL", qty=10.0)], None, None),
    # TradingView's default strategy alert message (TV-STRAT: "order {{strategy.order.action}}
    # @ {{strategy.order.contracts}} filled on {{ticker}}. New strategy position is
    # {{strategy.position_size}}")
    ("order sell @ 3 filled on AAPL. New strategy position is -2",
     [target("AAPL", -2.0)], None, None),
])
def test_bridge_shapes_are_read(body: str, commands: list[Command], price: float | None,
                                comment: str | None) -> None:
    signal = parse(body)
    assert signal.commands == commands
    assert (signal.price, signal.comment) == (price, comment)


def test_long_with_take_profit_and_stop_loss_enters_at_the_default_size() -> None:
    # PineConnector's key=value exits (https://docs.pineconnector.com/syntax: sl=, tp=),
    # written the way its users write a long
    signal = parse("long AAPL tp=200 sl=180")
    assert signal.commands == [
        target("AAPL", 0.0, only_if="short"),
        Command(action="buy", symbol="AAPL", qty=0.0,
                size=SizeSpec(type="default", field="command quantity"),
                take_profit=ExitSpec(price=200), stop_loss=ExitSpec(price=180))]


def test_text_exits_may_be_percents_and_trailing() -> None:
    [cmd] = parse("buy 0.5 BTCUSD tp=2% sl=1% ").commands
    assert (cmd.take_profit, cmd.stop_loss) == (ExitSpec(percent=2), ExitSpec(percent=1))
    [cmd] = parse("sell 2 AAPL trail=1.5%").commands
    assert (cmd.trail_percent, cmd.order_class) == (1.5, "oto")


def test_exit_closes_the_whole_position() -> None:
    assert parse("exit AAPL").commands == [target("AAPL", 0.0)]
