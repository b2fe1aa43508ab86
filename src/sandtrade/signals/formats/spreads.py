"""Reading a multi-leg options order from a body: a template, or explicit legs.

Every JSON format reads spreads the same way; only the names of the order fields differ (the
format's own: ``qty``/``contracts``/``quantity``, ``limit_price``/``limitPrice`` ...):

- a **template**: ``"template": "iron_condor"`` (TradersPost-like: ``"optionStrategy"`` too),
  its ``expiry`` (``"2026-12-18"``, ``"30d"``, ``"monthly"``, ``"weekly"``; TradersPost-like:
  ``expiration``) and its parameters as the options room names them, flat in the body
  (``"short_delta": 0.16, "width": 5``);
- **legs**: ``"legs": [{"symbol": "SPY261218C00450000", "side": "buy", "ratio": 1}, ...]``,
  each an OCC symbol (or the underlying itself: a stock leg), or ``expiry``, ``strike`` and
  ``right`` on the signal's underlying; ``intent`` (open, close, auto) is optional. The
  TradersPost-like spellings are read too: ``ticker``, ``action``, ``quantity`` (the ratio),
  ``expiration``, ``strikePrice``, ``optionType``.

``strategy`` names a template too when it is one of the templates' names and no ``template``
field is given: the signal goes to a strategy of this host of that name if there is one, and
trades the template otherwise (:attr:`~sandtrade.signal_model.ParsedSignal.template_from_strategy`).

No action, ``buy`` or ``open`` opens the spread; ``exit``, ``close`` or ``flat`` with a template
closes every open group of that template on the underlying. The quantity is the number of
spreads (whole, required); the limit price is positive, a debit or a credit as
``price_effect``/``priceEffect`` says, or (not said) as the spread is at its marks; a negative
limit is a credit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sandtrade.models import Leg, OptionRight
from sandtrade.options.contracts import OptionContract, occ_symbol
from sandtrade.options.templates import TEMPLATES
from sandtrade.signal_model import Command, SignalError
from sandtrade.signals.formats.base import (
    near_miss,
    number,
    order_type_value,
    symbol_value,
    text_value,
    tif_value,
)
from sandtrade.signals.spreads import template_parameters

__all__ = ["TEMPLATE_FIELDS", "SpreadNames", "SpreadRead", "asks_for_spread", "read_spread"]

#: Every parameter of every template: the fields a body with a template may carry.
TEMPLATE_FIELDS: frozenset[str] = frozenset(
    p for name in TEMPLATES for p in template_parameters(name))
#: Template parameters that are words, not numbers.
_TEXT_PARAMS = frozenset({"side", "right", "far_expiry"})
_SELECTOR = re.compile(r"^(\d{4}-\d{2}-\d{2}|\d{1,4}\s*d|monthly|weekly)$", re.IGNORECASE)
#: Leg fields: each name and the spelling it is read as.
_LEG_FIELDS = {"symbol": "symbol", "ticker": "symbol", "side": "side", "action": "side",
               "ratio": "ratio", "quantity": "ratio", "intent": "intent",
               "expiry": "expiry", "expiration": "expiry", "strike": "strike",
               "strikePrice": "strike", "right": "right", "optionType": "right"}
_OPEN = ("buy", "open")
_CLOSE = ("exit", "close", "flat")


@dataclass(frozen=True)
class SpreadNames:
    """How a format names a spread's order fields (the first present of each is read)."""

    symbol: str
    qty: tuple[str, ...]
    limit: str
    effect: str
    order_type: str | None
    tif: str | None
    expiry: tuple[str, ...] = ("expiry",)
    template: tuple[str, ...] = ("template",)
    #: Fields of the format that a spread does not take (a take profit ...): refused.
    refused: tuple[str, ...] = ()


@dataclass
class SpreadRead:
    """The commands a body's spread means, and the fields that were read for it."""

    commands: list[Command]
    read: set[str] = field(default_factory=set)
    #: The template's parameters, whose near misses are refused ("did you mean").
    parameters: tuple[str, ...] = ()
    from_strategy: bool = False
    action: str = "spread"
    qty: float | None = None


def _template_name(data: Mapping[str, Any], names: SpreadNames) -> tuple[str | None, str, bool]:
    """(template, the field it was read from, whether that was ``strategy``)."""
    for key in names.template:
        if data.get(key) is not None:
            name = text_value(data[key], key, max_len=40).lower()
            if name not in TEMPLATES:
                meant = near_miss(name, TEMPLATES)
                hint = f"did you mean {meant!r}? " if meant else ""
                raise SignalError(f"unknown options template {json.dumps(data[key])} ({hint}"
                                  f"known: {', '.join(sorted(TEMPLATES))})", field=key)
            return name, key, False
    strategy = data.get("strategy")
    if isinstance(strategy, str) and strategy.strip().lower() in TEMPLATES:
        return strategy.strip().lower(), "strategy", True
    return None, "", False


def asks_for_spread(data: Mapping[str, Any], names: SpreadNames) -> bool:
    """Whether a body asks for a spread: a template field, legs, or a ``strategy`` that names
    a template."""
    if any(data.get(k) is not None for k in names.template) or data.get("legs") is not None:
        return True
    strategy = data.get("strategy")
    return isinstance(strategy, str) and strategy.strip().lower() in TEMPLATES


def read_spread(data: Mapping[str, Any], names: SpreadNames) -> SpreadRead:
    """The spread a body asks for (see the module); :class:`SignalError` names the field."""
    template, template_key, from_strategy = _template_name(data, names)
    read = {names.symbol, "action", "legs", names.limit, names.effect, *names.qty,
            *names.expiry}
    read |= {k for k in (names.order_type, names.tif) if k}
    if template_key:
        read.add(template_key)
    if template is not None and data.get("legs") is not None:
        raise SignalError(f"give a template ({template_key}) or legs, not both", field="legs")
    for key in names.refused:
        if data.get(key) is not None:
            raise SignalError(f"a multi-leg order takes no {key} (it is market or limit, and "
                              "each leg says its own side)", field=key)
    if data.get(names.symbol) is None:
        raise SignalError("no symbol: a spread names its underlying", field=names.symbol)
    symbol = symbol_value(data[names.symbol], names.symbol)
    action = "spread"
    if data.get("action") is not None:
        word = text_value(data["action"], "action", max_len=20).lower()
        if word in _CLOSE:
            action = "close_spread"
        elif word not in _OPEN:
            raise SignalError(
                f"{json.dumps(data['action'])} with a spread: leave action out (or buy) to "
                "open it, exit to close it; each leg says its own side", field="action")
    params = template_parameters(template) if template else ()
    if action == "close_spread":
        if template is None:
            raise SignalError("exit closes a template's spreads by its name: give template "
                              "(legs are opened, not closed, by a signal)", field="action")
        for key in (*names.qty, names.limit):
            if data.get(key) is not None:
                raise SignalError("exit closes every open group of the template whole, at "
                                  "market; it takes no quantity or limit", field=key)
        read |= set(params) & set(data)
        return SpreadRead([Command(action="close_spread", symbol=symbol, qty=0.0,
                                   template=template)], read, params, from_strategy,
                          "exit")
    qty_key = next((k for k in names.qty if data.get(k) is not None), None)
    if qty_key is None:
        raise SignalError("a spread needs the number of spreads", field=names.qty[0])
    qty = number(data[qty_key], qty_key, positive=True, allow_zero=False)
    if qty != int(qty):
        raise SignalError(f"a spread trades whole spreads (got {qty:g})", field=qty_key)
    fields: dict[str, Any] = {}
    limit = None
    if data.get(names.limit) is not None:
        limit = number(data[names.limit], names.limit)
        if limit == 0:
            raise SignalError("a net limit of 0 is neither a debit nor a credit; leave it "
                              "out for a market order", field=names.limit)
    effect = None
    if data.get(names.effect) is not None:
        effect = text_value(data[names.effect], names.effect, max_len=10).lower()
        if effect not in ("debit", "credit"):
            raise SignalError(f"{json.dumps(data[names.effect])} is neither debit nor credit",
                              field=names.effect)
        if limit is None:
            raise SignalError(f"says how the limit is paid, and there is no {names.limit}",
                              field=names.effect)
    if limit is not None and limit < 0:
        if effect == "debit":
            raise SignalError(f"a negative limit is a credit, and {names.effect} says debit",
                              field=names.limit)
        effect, limit = "credit", -limit
    order_type = None
    if names.order_type and data.get(names.order_type) is not None:
        order_type = order_type_value(data[names.order_type], names.order_type)
        if order_type not in ("market", "limit"):
            raise SignalError(f"a multi-leg order is market or limit (got {order_type})",
                              field=names.order_type)
        if order_type == "limit" and limit is None:
            raise SignalError(f"a limit order needs {names.limit}", field=names.order_type)
        if order_type == "market" and limit is not None:
            raise SignalError(f"a market order takes no {names.limit}", field=names.limit)
    if names.tif and data.get(names.tif) is not None:
        tif = tif_value(data[names.tif], names.tif)
        if tif not in ("day", "gtc"):
            raise SignalError(f"a multi-leg order is day or gtc (got {tif})", field=names.tif)
        fields["tif"] = tif
    if template is not None:
        expiry_key = next((k for k in names.expiry if data.get(k) is not None), None)
        if expiry_key is None:
            raise SignalError(f"{template} needs an expiry: a date (2026-12-18), a number of "
                              "days ('30d': the listed expiry nearest to it), 'monthly' or "
                              "'weekly'", field=names.expiry[0])
        fields["expiry"] = _selector(data[expiry_key], expiry_key)
        fields["template"] = template
        fields["params"] = _params(data, template, params)
        read |= set(fields["params"])
    else:
        fields["legs"] = _legs(data["legs"], symbol)
    return SpreadRead([Command(action="spread", symbol=symbol, qty=qty, limit_price=limit,
                               order_type="limit" if limit is not None else "market",
                               price_effect=effect, **fields)],  # type: ignore[arg-type]
                      read, params, from_strategy, "spread", qty)


def _selector(value: Any, key: str) -> str:
    text = text_value(value, key, max_len=20).strip().lower()
    if not _SELECTOR.match(text):
        raise SignalError(f"{json.dumps(value)} is not an expiry: write a date (2026-12-18), a "
                          "number of days ('30d'), 'monthly' or 'weekly'", field=key)
    if text[0].isdigit() and "-" in text:
        try:
            date.fromisoformat(text)
        except ValueError:
            raise SignalError(f"{json.dumps(value)} is not a date", field=key) from None
    return text


def _params(data: Mapping[str, Any], template: str, params: tuple[str, ...]
            ) -> dict[str, float | str]:
    """The template's parameters in the body; another template's parameter is refused."""
    out: dict[str, float | str] = {}
    for key, value in data.items():
        if key not in TEMPLATE_FIELDS or value is None:
            continue
        if key not in params:
            raise SignalError(f"{template} takes no {key} (its parameters: expiry, "
                              f"{', '.join(params)})", field=key)
        if key in _TEXT_PARAMS:
            text = text_value(value, key, max_len=20)
            out[key] = _selector(text, key) if key == "far_expiry" else text.lower()
        else:
            out[key] = number(value, key)
    return out


def _legs(value: Any, underlying: str) -> list[Leg]:
    if not isinstance(value, list) or len(value) < 2:
        raise SignalError("must be a list of 2 or more legs (a single option is a simple "
                          "order: name it in the symbol)", field="legs")
    if len(value) > 20:
        raise SignalError(f"{len(value)} legs (at most 20)", field="legs")
    return [_leg(leg, f"legs[{i}]", underlying) for i, leg in enumerate(value)]


def _leg(value: Any, where: str, underlying: str) -> Leg:
    if not isinstance(value, dict):
        raise SignalError("must be an object such as {\"symbol\": \"SPY261218C00450000\", "
                          "\"side\": \"buy\"}", field=where)
    got: dict[str, tuple[str, Any]] = {}
    for key, v in value.items():
        name = _LEG_FIELDS.get(key)
        if name is None:
            meant = near_miss(key, _LEG_FIELDS)
            raise SignalError("unknown field" + (f": did you mean {meant!r}?" if meant else
                              f" (known: {', '.join(_LEG_FIELDS)})"), field=f"{where}.{key}")
        if name in got and v is not None:
            raise SignalError(f"given twice ({got[name][0]} and {key})", field=f"{where}.{key}")
        if v is not None:
            got[name] = (key, v)

    def f(name: str) -> str:
        return f"{where}.{got[name][0]}" if name in got else f"{where}.{name}"

    if "side" not in got:
        raise SignalError("each leg says its side: buy or sell", field=f"{where}.side")
    side = text_value(got["side"][1], f("side"), max_len=10).lower()
    if side not in ("buy", "sell"):
        raise SignalError(f"{json.dumps(got['side'][1])} is not buy or sell", field=f("side"))
    ratio = 1
    if "ratio" in got:
        r = number(got["ratio"][1], f("ratio"), positive=True, allow_zero=False)
        if r != int(r) or r > 100:
            raise SignalError(f"a ratio is a whole number from 1 to 100 (got {r:g})",
                              field=f("ratio"))
        ratio = int(r)
    intent = "auto"
    if "intent" in got:
        intent = text_value(got["intent"][1], f("intent"), max_len=10).lower()
        if intent not in ("open", "close", "auto"):
            raise SignalError(f"{json.dumps(got['intent'][1])} is not open, close or auto",
                              field=f("intent"))
    by_contract = [n for n in ("expiry", "strike", "right") if n in got]
    if "symbol" in got:
        if by_contract:
            raise SignalError("give the symbol, or expiry, strike and right, not both",
                              field=f(by_contract[0]))
        symbol = _leg_symbol(got["symbol"][1], f("symbol"), underlying)
    else:
        missing = [n for n in ("expiry", "strike", "right") if n not in got]
        if len(missing) == 3:
            raise SignalError("a leg names its contract: an OCC symbol, or expiry, strike and "
                              "right", field=f"{where}.symbol")
        if missing:
            raise SignalError(f"a leg by contract needs expiry, strike and right; {missing[0]} "
                              "is missing", field=f"{where}.{missing[0]}")
        text = text_value(got["expiry"][1], f("expiry"), max_len=20)
        try:
            expiry = date.fromisoformat(text.strip())
        except ValueError:
            raise SignalError(f"{json.dumps(text)} is not a date: a leg's expiry is a date "
                              "such as 2026-12-18 (selectors such as 30d are for templates)",
                              field=f("expiry")) from None
        strike = number(got["strike"][1], f("strike"), positive=True, allow_zero=False)
        word = text_value(got["right"][1], f("right"), max_len=10).lower()
        right = {"call": OptionRight.CALL, "c": OptionRight.CALL, "put": OptionRight.PUT,
                 "p": OptionRight.PUT}.get(word)
        if right is None:
            raise SignalError(f"{json.dumps(got['right'][1])} is not call or put",
                              field=f("right"))
        try:
            symbol = occ_symbol(underlying, expiry, right, strike)
        except ValueError as e:
            raise SignalError(str(e), field=f("strike")) from None
        if OptionContract.parse(symbol).strike != strike:
            raise SignalError(f"{strike!r} has more than 3 decimals (an OCC strike is in "
                              "thousandths)", field=f("strike"))
    return Leg(symbol=symbol, side=side, ratio=ratio, intent=intent)  # type: ignore[arg-type]


def _leg_symbol(value: Any, field: str, underlying: str) -> str:
    text = text_value(value, field, max_len=40)
    if text.strip().upper() == underlying:
        return underlying  # the stock leg of a covered call or a collar
    try:
        contract = OptionContract.parse(text)
    except ValueError:
        raise SignalError(f"{json.dumps(text)} is neither an OCC option symbol (e.g. "
                          f"{underlying}261218C00450000) nor the underlying {underlying}",
                          field=field) from None
    return contract.symbol
