"""Each template: its legs, net price, max profit and loss, break-evens; each refusal's words.

Expected values are the textbook formulas applied to the legs' marks in the chain (a bull call
spread's max profit is (width - debit) x 100, ...), computed here by hand, not by the code."""

from __future__ import annotations

import pytest

from sandtrade.models import OptionRight, OrderSide
from sandtrade.options import OptionChain, TemplateError, build_strategy, occ_symbol

CALL, PUT = OptionRight.CALL, OptionRight.PUT
BUY, SELL = OrderSide.BUY, OrderSide.SELL


def mark(chain: OptionChain, right: OptionRight, strike: float, far: bool = False) -> float:
    expiry = chain.select_expiry("2026-01-16" if far else "2025-12-19")
    row = chain.find(expiry, right, strike)
    assert row is not None
    return row.mark


def sym(right: OptionRight, strike: float, far: bool = False) -> str:
    from datetime import date

    return occ_symbol("XYZ", date(2026, 1, 16) if far else date(2025, 12, 19), right, strike)


def legs(plan) -> list[tuple[str, str, int]]:  # type: ignore[no-untyped-def]
    return [(leg.side.value, leg.symbol, leg.ratio) for leg in plan.legs]


E = "2025-12-19"


def test_bull_call_spread(chain: OptionChain) -> None:
    p = build_strategy("bull_call_spread", chain, expiry=E, long_strike=100, width=10)
    debit = mark(chain, CALL, 100) - mark(chain, CALL, 110)
    assert legs(p) == [("buy", sym(CALL, 100), 1), ("sell", sym(CALL, 110), 1)]
    assert p.net_price == pytest.approx(debit) and p.is_debit
    assert p.max_profit == pytest.approx((10 - debit) * 100)
    assert p.max_loss == pytest.approx(debit * 100)
    assert p.breakevens == [pytest.approx(100 + debit, abs=1e-4)]


def test_bear_put_spread(chain: OptionChain) -> None:
    p = build_strategy("bear_put_spread", chain, expiry=E, long_strike=100, short_strike=90)
    debit = mark(chain, PUT, 100) - mark(chain, PUT, 90)
    assert legs(p) == [("buy", sym(PUT, 100), 1), ("sell", sym(PUT, 90), 1)]
    assert p.net_price == pytest.approx(debit)
    assert (p.max_profit, p.max_loss) == (pytest.approx((10 - debit) * 100),
                                          pytest.approx(debit * 100))
    assert p.breakevens == [pytest.approx(100 - debit, abs=1e-4)]


def test_bull_put_spread_is_a_credit(chain: OptionChain) -> None:
    p = build_strategy("bull_put_spread", chain, expiry=E, short_strike=95, width=5)
    credit = mark(chain, PUT, 95) - mark(chain, PUT, 90)
    assert legs(p) == [("sell", sym(PUT, 95), 1), ("buy", sym(PUT, 90), 1)]
    assert p.net_price == pytest.approx(-credit) and not p.is_debit
    assert p.max_profit == pytest.approx(credit * 100)
    assert p.max_loss == pytest.approx((5 - credit) * 100)
    assert p.breakevens == [pytest.approx(95 - credit, abs=1e-4)]


def test_bear_call_spread_is_a_credit(chain: OptionChain) -> None:
    p = build_strategy("bear_call_spread", chain, expiry=E, short_strike=105, long_strike=115)
    credit = mark(chain, CALL, 105) - mark(chain, CALL, 115)
    assert legs(p) == [("sell", sym(CALL, 105), 1), ("buy", sym(CALL, 115), 1)]
    assert p.net_price == pytest.approx(-credit)
    assert (p.max_profit, p.max_loss) == (pytest.approx(credit * 100),
                                          pytest.approx((10 - credit) * 100))
    assert p.breakevens == [pytest.approx(105 + credit, abs=1e-4)]


def test_long_straddle_has_unlimited_profit(chain: OptionChain) -> None:
    p = build_strategy("straddle", chain, expiry=E)  # at the money: 100
    debit = mark(chain, CALL, 100) + mark(chain, PUT, 100)
    assert legs(p) == [("buy", sym(CALL, 100), 1), ("buy", sym(PUT, 100), 1)]
    assert p.net_price == pytest.approx(debit)
    assert p.max_profit is None and p.max_loss == pytest.approx(debit * 100)
    assert p.breakevens == [pytest.approx(100 - debit, abs=1e-4),
                            pytest.approx(100 + debit, abs=1e-4)]


def test_short_strangle_has_unlimited_loss(chain: OptionChain) -> None:
    p = build_strategy("strangle", chain, expiry=E, offset=10, side="short")
    credit = mark(chain, PUT, 90) + mark(chain, CALL, 110)
    assert legs(p) == [("sell", sym(PUT, 90), 1), ("sell", sym(CALL, 110), 1)]
    assert p.net_price == pytest.approx(-credit)
    assert p.max_profit == pytest.approx(credit * 100) and p.max_loss is None
    assert p.breakevens == [pytest.approx(90 - credit, abs=1e-4),
                            pytest.approx(110 + credit, abs=1e-4)]


def test_iron_condor_by_short_delta(chain: OptionChain) -> None:
    p = build_strategy("iron_condor", chain, expiry="2026-01-16", short_delta=0.16, width=5)
    expiry = chain.select_expiry("2026-01-16")
    ps = min(chain.rows_for(expiry, PUT), key=lambda r: abs(abs(r.delta or 0) - 0.16)).strike
    cs = min(chain.rows_for(expiry, CALL), key=lambda r: abs(abs(r.delta or 0) - 0.16)).strike
    assert ps < 100 < cs
    assert legs(p) == [("buy", sym(PUT, ps - 5, True), 1), ("sell", sym(PUT, ps, True), 1),
                       ("sell", sym(CALL, cs, True), 1), ("buy", sym(CALL, cs + 5, True), 1)]
    credit = (mark(chain, PUT, ps, True) - mark(chain, PUT, ps - 5, True)
              + mark(chain, CALL, cs, True) - mark(chain, CALL, cs + 5, True))
    assert p.net_price == pytest.approx(-credit)
    assert p.max_profit == pytest.approx(credit * 100)
    assert p.max_loss == pytest.approx((5 - credit) * 100)
    assert p.breakevens == [pytest.approx(ps - credit, abs=1e-4),
                            pytest.approx(cs + credit, abs=1e-4)]


def test_iron_butterfly(chain: OptionChain) -> None:
    p = build_strategy("iron_butterfly", chain, expiry=E, strike=100, width=10)
    credit = (mark(chain, PUT, 100) + mark(chain, CALL, 100)
              - mark(chain, PUT, 90) - mark(chain, CALL, 110))
    assert legs(p) == [("buy", sym(PUT, 90), 1), ("sell", sym(PUT, 100), 1),
                       ("sell", sym(CALL, 100), 1), ("buy", sym(CALL, 110), 1)]
    assert p.max_profit == pytest.approx(credit * 100)
    assert p.max_loss == pytest.approx((10 - credit) * 100)
    assert p.breakevens == [pytest.approx(100 - credit, abs=1e-4),
                            pytest.approx(100 + credit, abs=1e-4)]


def test_butterfly_sells_two_in_the_middle(chain: OptionChain) -> None:
    p = build_strategy("butterfly", chain, expiry=E, strike=100, width=5)
    debit = mark(chain, CALL, 95) - 2 * mark(chain, CALL, 100) + mark(chain, CALL, 105)
    assert legs(p) == [("buy", sym(CALL, 95), 1), ("sell", sym(CALL, 100), 2),
                       ("buy", sym(CALL, 105), 1)]
    assert p.net_price == pytest.approx(debit)
    assert p.max_profit == pytest.approx((5 - debit) * 100)
    assert p.max_loss == pytest.approx(debit * 100)
    assert p.breakevens == [pytest.approx(95 + debit, abs=1e-4),
                            pytest.approx(105 - debit, abs=1e-4)]


def test_calendar_loses_at_most_its_debit(chain: OptionChain) -> None:
    p = build_strategy("calendar", chain, expiry=E, far_expiry="2026-01-16", strike=100)
    debit = mark(chain, CALL, 100, far=True) - mark(chain, CALL, 100)
    assert legs(p) == [("sell", sym(CALL, 100), 1), ("buy", sym(CALL, 100, far=True), 1)]
    assert p.net_price == pytest.approx(debit)
    assert p.max_loss == pytest.approx(debit * 100, rel=1e-3)
    assert p.max_profit is not None and 0 < p.max_profit < 500
    low, high = p.breakevens
    assert low < 100 < high


def test_diagonal(chain: OptionChain) -> None:
    p = build_strategy("diagonal", chain, expiry=E, far_expiry="2026-01-16",
                       short_strike=105, long_strike=100)
    debit = mark(chain, CALL, 100, far=True) - mark(chain, CALL, 105)
    assert legs(p) == [("sell", sym(CALL, 105), 1), ("buy", sym(CALL, 100, far=True), 1)]
    assert p.net_price == pytest.approx(debit)
    assert p.max_loss == pytest.approx(debit * 100, rel=1e-3)
    # a long call under the short one: above 105 the spread keeps its width, so only a lower
    # break-even (between the long strike and the short one plus the debit)
    assert p.max_profit is not None and p.max_profit > 0
    assert len(p.breakevens) == 1 and 100 < p.breakevens[0] < 105 + debit


def test_covered_call_holds_100_shares(chain: OptionChain) -> None:
    p = build_strategy("covered_call", chain, expiry=E, strike=105)
    premium = mark(chain, CALL, 105)
    assert legs(p) == [("buy", "XYZ", 100), ("sell", sym(CALL, 105), 1)]
    assert p.net_price == pytest.approx(100 - premium)
    assert p.max_profit == pytest.approx((105 - 100 + premium) * 100)
    assert p.max_loss == pytest.approx((100 - premium) * 100)
    assert p.breakevens == [pytest.approx(100 - premium, abs=1e-4)]


def test_protective_put(chain: OptionChain) -> None:
    p = build_strategy("protective_put", chain, expiry=E, strike=95)
    premium = mark(chain, PUT, 95)
    assert legs(p) == [("buy", "XYZ", 100), ("buy", sym(PUT, 95), 1)]
    assert p.max_profit is None
    assert p.max_loss == pytest.approx((100 + premium - 95) * 100)
    assert p.breakevens == [pytest.approx(100 + premium, abs=1e-4)]


def test_collar(chain: OptionChain) -> None:
    p = build_strategy("collar", chain, expiry=E, put_strike=95, call_strike=110)
    net = 100 + mark(chain, PUT, 95) - mark(chain, CALL, 110)
    assert legs(p) == [("buy", "XYZ", 100), ("buy", sym(PUT, 95), 1),
                       ("sell", sym(CALL, 110), 1)]
    assert p.net_price == pytest.approx(net)
    assert p.max_profit == pytest.approx((110 - net) * 100)
    assert p.max_loss == pytest.approx((net - 95) * 100)
    assert p.breakevens == [pytest.approx(net, abs=1e-4)]


@pytest.mark.parametrize(("name", "params", "message"), [
    ("iron_condor", {"put_short": 110, "call_short": 100, "width": 5},
     "iron_condor: call_short 100 must be above put_short 110"),
    ("iron_condor", {"short_delta": 0.16}, "iron_condor: give the put_long leg by put_long or "
     "width"),
    ("iron_condor", {"short_delta": 1.6, "width": 5},
     "iron_condor: short_delta 1.6 must be between 0 and 1"),
    ("bull_call_spread", {"long_strike": 100, "short_strike": 95},
     "bull_call_spread: short_strike 95 must be above long_strike 100"),
    ("bull_call_spread", {"long_strike": 101, "width": 5},
     "bull_call_spread: long_strike 101 is not a listed call strike for 2025-12-19 "
     "(nearest: 100, 105)"),
    ("bull_call_spread", {"long_strike": 100, "width": 5, "short_strike": 105},
     "bull_call_spread: give one of short_strike, width, short_delta"),
    ("bear_put_spread", {"long_strike": 100, "width": -5},
     "bear_put_spread: width -5 must be above 0"),
    ("straddle", {"strike": 100, "offset": 5},
     "straddle: give one of strike, offset (got strike and offset)"),
    ("straddle", {"side": "sideways"}, "straddle: side 'sideways' must be 'long' or 'short'"),
    ("strangle", {"put_strike": 110, "call_strike": 90},
     "strangle: call_strike 90 must be above put_strike 110"),
    ("butterfly", {"strike": 100}, "butterfly: give the wings' distance as width"),
    ("calendar", {"strike": 100}, "calendar: give far_expiry"),
    ("calendar", {"far_expiry": "2025-12-12"},
     "calendar: far_expiry 2025-12-12 must be after expiry 2025-12-19"),
    ("diagonal", {"far_expiry": "2026-01-16", "short_strike": 100, "long_strike": 100},
     "diagonal: long_strike 100 equals short_strike; that is a calendar"),
    ("collar", {"put_strike": 105, "call_strike": 100},
     "collar: call_strike 100 must be above put_strike 105"),
    ("covered_call", {"strike": 105, "width": 5},
     "covered_call: unknown parameter(s) width (allowed: expiry, strike, offset, delta)"),
    ("condor_of_iron", {}, "unknown strategy 'condor_of_iron' (known: bear_call_spread"),
])
def test_each_refusal_names_the_parameter(chain: OptionChain, name: str,
                                          params: dict[str, object], message: str) -> None:
    with pytest.raises(TemplateError) as err:
        build_strategy(name, chain, expiry=E, **params)  # type: ignore[arg-type]
    assert str(err.value).startswith(message), str(err.value)


def test_an_expiry_that_is_not_listed_is_named(chain: OptionChain) -> None:
    with pytest.raises(TemplateError, match=r"straddle: expiry 2025-12-20: not listed "
                                            r"\(listed: 2025-12-12, 2025-12-19"):
        build_strategy("straddle", chain, expiry="2025-12-20")
    with pytest.raises(TemplateError, match="straddle: expiry 'soon' is not an expiry selector"):
        build_strategy("straddle", chain, expiry="soon")


def test_expiry_selectors(chain: OptionChain) -> None:
    assert str(chain.select_expiry("30d")) == "2026-01-02"   # Dec 8 + 30 = Jan 7: Jan 2 nearer
    assert str(chain.select_expiry("monthly")) == "2025-12-19"
    assert str(chain.select_expiry("weekly")) == "2025-12-12"
    assert str(chain.select_expiry("2026-02-20")) == "2026-02-20"
