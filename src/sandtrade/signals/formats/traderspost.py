"""The ``traderspost`` format: the JSON that TradersPost-style routers accept.

``ticker``, ``action`` (buy, sell, exit, cancel, add), ``sentiment`` (bullish, bearish, flat;
long and short too), ``quantity`` and ``quantityType`` (fixed_quantity, dollar_amount,
percent_of_equity, percent_of_position, risk_dollar_amount, risk_percent_of_equity),
``orderType`` (market, limit, stop, stop_limit, trailing_stop), ``limitPrice``, ``stopPrice``,
``trailAmount``/``trailPercent``, ``takeProfit`` (``limitPrice``, ``price``, ``percent`` or
``amount``), ``stopLoss`` (``type``, ``stopPrice``, ``percent`` or ``amount``, ``limitPrice``,
``trailAmount``/``trailPrice``/``trailPercent``), ``timeInForce``, ``extendedHours``,
``signalPrice``/``price`` (https://docs.traderspost.io/docs/core-concepts/webhooks).

A buy while short closes the short first (TradersPost's behaviour); a buy or sell without a
quantity gets the default size; an exit, or a buy/sell with sentiment flat, closes the whole
position. Other fields are ignored and listed, as TradersPost ignores them, except the option
chain fields (``optionType`` ...), which would change what is traded: they are refused.

TradersPost itself takes no spreads ("Do you support spreads? No", its FAQ); sandtrade's
TradersPost-like shape for one is its own (:mod:`.spreads`), in TradersPost's words:
``{"ticker": "SPY", "optionStrategy": "iron_condor", "expiration": "30d", "short_delta": 0.16,
"width": 5, "quantity": 1, "orderType": "limit", "limitPrice": 1.20, "priceEffect":
"credit"}``, or ``"legs": [{"optionType": "call", "expiration": "2026-12-18", "strikePrice":
450, "action": "sell", "quantity": 1}, ...]``; ``"action": "exit"`` with the template closes it.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from sandtrade.models import ExitSpec, implied_order_type
from sandtrade.signal_model import Command, ParsedSignal, SignalError
from sandtrade.signals.formats.base import (
    SignalFormat,
    action_value,
    bool_value,
    cancel_command,
    check_prices,
    check_risk_size,
    commands_for,
    exit_value,
    expanded,
    number,
    optional_text,
    order_type_value,
    size_value,
    symbol_value,
    text_value,
    tif_value,
    unread_fields,
)
from sandtrade.signals.formats.spreads import SpreadNames, asks_for_spread, read_spread

__all__ = ["TradersPostFormat"]

#: Fields read, whose near miss is refused (they change what is traded, or where).
_CONSEQUENTIAL = {"ticker", "action", "sentiment", "quantity", "quantityType", "orderType",
                  "limitPrice", "stopPrice", "signalPrice", "price", "takeProfit", "stopLoss",
                  "trailAmount", "trailPercent", "timeInForce", "extendedHours", "account",
                  "strategy", "id", "passphrase"}
#: Fields read or known to carry nothing to trade on.
_KNOWN = _CONSEQUENTIAL | {"time", "interval", "comment", "extras", "test"}
#: TradersPost's option-chain fields: an order for the stock instead would be wrong.
_OPTION_FIELDS = ("optionType", "intrinsicValue", "expiration", "strikeCount", "strikesAway",
                  "strikePrice")
_TP_NAMES = ("limitPrice", "percent", "amount")
_SL_NAMES = ("stopPrice", "percent", "amount")
_SL_TYPES = ("stop", "stop_limit", "trailing_stop")
#: A spread's fields in TradersPost's words.
_SPREAD = SpreadNames(symbol="ticker", qty=("quantity",), limit="limitPrice",
                      effect="priceEffect", order_type="orderType", tif="timeInForce",
                      expiry=("expiry", "expiration"), template=("optionStrategy", "template"),
                      refused=("sentiment", "quantityType", "stopPrice", "takeProfit",
                               "stopLoss", "trailAmount", "trailPercent", "extendedHours",
                               "optionType", "strikePrice", "strikeCount", "strikesAway",
                               "intrinsicValue"))


class TradersPostFormat(SignalFormat):
    """The JSON that TradersPost-style routers accept."""

    name = "traderspost"
    description = ('TradersPost JSON: {"ticker": "AAPL", "action": "buy", "sentiment": '
                   '"bullish", "quantity": 10}')
    priority = 120
    KEYS: ClassVar[set[str]] = {"sentiment", "quantity", "quantityType", "orderType",
                                "limitPrice", "stopPrice", "signalPrice", "extras", "test",
                                "takeProfit", "stopLoss", "cancel", "trailAmount",
                                "trailPercent", "timeInForce", "extendedHours",
                                "optionStrategy", "priceEffect", *_OPTION_FIELDS}
    ACTIONS: ClassVar[tuple[str, ...]] = ("buy", "sell", "exit", "cancel", "add")
    OWN_ACTIONS: ClassVar[tuple[str, ...]] = ("exit", "cancel", "add")
    #: TradersPost's strategy template sends "{{strategy.market_position}}" as sentiment.
    SENTIMENTS: ClassVar[dict[str, str]] = {"bullish": "bullish", "bearish": "bearish",
                                            "flat": "flat", "long": "bullish",
                                            "short": "bearish"}

    def detect(self, body: str, data: Any) -> bool:
        if not isinstance(data, dict) or "ticker" not in data:
            return False
        action = data.get("action")
        return bool(self.KEYS & set(data)) or (
            isinstance(action, str) and action.strip().lower() in self.OWN_ACTIONS)

    def parse(self, body: str, data: Any) -> ParsedSignal:
        if asks_for_spread(data, _SPREAD):
            return self._spread(data)
        for key in _OPTION_FIELDS:
            if data.get(key) is not None:
                raise SignalError("choosing an option from the chain is not supported; name "
                                  'the contract in "ticker" (an OCC symbol such as '
                                  '"AAPL  240510C00190000")', field=key)
        ignored = unread_fields(data, _KNOWN, _CONSEQUENTIAL)
        if data.get("ticker") is None:
            raise SignalError("no symbol", field="ticker")
        symbol = symbol_value(data["ticker"], "ticker")
        if data.get("action") is None:
            raise SignalError(f"no action (use one of: {', '.join(self.ACTIONS)})",
                              field="action")
        action = action_value(data["action"], "action", self.ACTIONS)
        sentiment = None
        if data.get("sentiment") is not None:
            word = text_value(data["sentiment"], "sentiment", max_len=20).lower()
            if word not in self.SENTIMENTS:
                raise SignalError(f"unknown sentiment {json.dumps(data['sentiment'])} (use one "
                                  "of: bullish, bearish, flat; long and short also work)",
                                  field="sentiment")
            sentiment = self.SENTIMENTS[word]
        qty = number(data["quantity"], "quantity") if data.get("quantity") is not None \
            else None
        size = None
        if data.get("quantityType") is not None:
            qty, size = size_value(data["quantityType"], qty, where="",
                                   type_name="quantityType", qty_name="quantity")
        limit = number(data["limitPrice"], "limitPrice", positive=True, allow_zero=False) \
            if data.get("limitPrice") is not None else None
        stop = number(data["stopPrice"], "stopPrice", positive=True, allow_zero=False) \
            if data.get("stopPrice") is not None else None
        extra: dict[str, Any] = _trail(data, "", ("trailAmount", "trailPercent"))
        order_type = order_type_value(data["orderType"], "orderType") \
            if data.get("orderType") is not None else (
                "trailing_stop" if extra else implied_order_type(limit, stop).value)
        if order_type == "trailing_stop":
            if not extra:
                raise SignalError("a trailing_stop order needs trailAmount or trailPercent",
                                  field="orderType")
            if limit is not None or stop is not None:
                raise SignalError("a trailing stop takes no limitPrice or stopPrice (it "
                                  "trails the best price)", field="orderType")
        else:
            if extra:
                name = "trailPercent" if "trail_percent" in extra else "trailAmount"
                raise SignalError(f"{name} goes with orderType trailing_stop, not "
                                  f"{order_type} (a trailing stop loss goes in stopLoss)",
                                  field=name)
            check_prices(order_type, limit, stop, "", "limitPrice", "stopPrice")
        entry = action in ("buy", "sell", "add") and sentiment != "flat"
        if data.get("takeProfit") is not None:
            extra["take_profit"] = _take_profit(data["takeProfit"])
        if data.get("stopLoss") is not None:
            stop_loss, trail = _stop_loss(data["stopLoss"])
            if stop_loss is not None:
                extra["stop_loss"] = stop_loss
            if trail:
                if order_type == "trailing_stop":
                    raise SignalError("a trailing stop order takes no trailing stop loss",
                                      field="stopLoss")
                extra.update(trail)
        for key in ("takeProfit", "stopLoss"):
            if data.get(key) is not None and not entry:
                raise SignalError(f"{key} goes with an entry (buy, sell or add), not with "
                                  f"{'an exit' if action == 'exit' else action}", field=key)
        check_risk_size(size, extra.get("stop_loss"),
                        extra.get("trail_price") or extra.get("trail_percent"), "quantityType")
        if data.get("timeInForce") is not None:
            extra["tif"] = tif_value(data["timeInForce"], "timeInForce")
        if data.get("extendedHours") is not None:
            extra["extended_hours"] = bool_value(data["extendedHours"], "extendedHours")
        fields: dict[str, Any] = {"order_type": order_type, "limit_price": limit,
                                  "stop_price": stop, **extra}
        commands: list[Command]
        if action == "exit":
            commands = [Command(action="target", symbol=symbol, qty=0.0, **fields)]
        elif action == "cancel":
            commands = [cancel_command(symbol)]
        elif action == "add":
            if sentiment not in ("bullish", "bearish"):
                raise SignalError("add needs sentiment bullish or bearish", field="sentiment")
            commands = commands_for("buy" if sentiment == "bullish" else "sell", symbol, qty,
                                    where="", qty_name="quantity", size=size, **_tp(fields))
        elif sentiment == "flat":
            # buy + flat: buy to cover the short; sell + flat: sell the long. Always the
            # whole position, whatever the quantity says (TradersPost's rule).
            commands = [Command(action="target", symbol=symbol, qty=0.0,
                                only_if="short" if action == "buy" else "long", **fields)]
        else:
            if sentiment is not None and (sentiment == "bullish") != (action == "buy"):
                raise SignalError(f"{action} with sentiment {sentiment} contradicts itself",
                                  field="sentiment")
            opposite = "short" if action == "buy" else "long"
            commands = commands_for(action, symbol, qty, where="", qty_name="quantity",
                                    size=size, **_tp(fields))
            if size is None or size.type != "percent_of_position":
                # a percent of the position trades the position: it closes nothing first
                commands.insert(0, Command(action="target", symbol=symbol, qty=0.0,
                                           only_if=opposite))
        price = None
        for key in ("signalPrice", "price"):
            if data.get(key) is not None:
                price = number(data[key], key, positive=True)
        for key in ("time", "interval"):
            if isinstance(data.get(key), str):
                expanded(data[key], key)
        return ParsedSignal(
            format=self.name, commands=commands, symbol=symbol, action=action, qty=qty,
            price=price, account=optional_text(data, "account"),
            strategy=optional_text(data, "strategy"), alert_id=optional_text(data, "id"),
            idempotency_key=optional_text(data, "id"), comment=optional_text(data, "comment"),
            passphrase=optional_text(data, "passphrase"),
            fields={k: v for k, v in data.items() if k != "passphrase"},
            ignored_fields=ignored)


    def _spread(self, data: dict[str, Any]) -> ParsedSignal:
        """A multi-leg order in the TradersPost-like shape (see the module)."""
        spread = read_spread(data, _SPREAD)
        ignored = unread_fields(data, _KNOWN | spread.read,
                                _CONSEQUENTIAL | set(spread.parameters))
        price = None
        for key in ("signalPrice", "price"):
            if data.get(key) is not None:
                price = number(data[key], key, positive=True)
        return ParsedSignal(
            format=self.name, commands=spread.commands, symbol=spread.commands[0].symbol,
            action=spread.action, qty=spread.qty, price=price,
            account=optional_text(data, "account"), strategy=optional_text(data, "strategy"),
            alert_id=optional_text(data, "id"), idempotency_key=optional_text(data, "id"),
            comment=optional_text(data, "comment"),
            passphrase=optional_text(data, "passphrase"),
            fields={k: v for k, v in data.items() if k != "passphrase"},
            ignored_fields=ignored, template_from_strategy=spread.from_strategy)


def _tp(fields: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in fields.items() if k not in ("limit_price", "stop_price")}
    out["limit"], out["stop"] = fields["limit_price"], fields["stop_price"]
    return out


def _trail(data: dict[str, Any], where: str, names: tuple[str, ...]) -> dict[str, float]:
    """trailAmount (or trailPrice) and trailPercent as the command's trail_price and
    trail_percent; one of them at most."""
    out: dict[str, float] = {}
    for name in names:
        if data.get(name) is not None:
            key = "trail_percent" if name == "trailPercent" else "trail_price"
            if out:
                raise SignalError(f"give one of {', '.join(names)}, not several",
                                  field=where + name)
            out[key] = number(data[name], where + name, positive=True, allow_zero=False)
    return out


def _object(value: Any, field: str, known: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SignalError(f"expected an object such as {{\"{known[0]}\": ...}}, got "
                          f"{json.dumps(value) if not isinstance(value, list) else 'a list'}",
                          field=field)
    for key in value:
        if key not in known:
            raise SignalError(f"unknown field (known: {', '.join(known)})",
                              field=f"{field}.{key}")
    return value


def _take_profit(value: Any) -> ExitSpec:
    """``{"limitPrice": X}`` (or ``"price"``), ``{"percent": X}`` or ``{"amount": X}``."""
    obj = _object(value, "takeProfit", ("limitPrice", "price", "percent", "amount"))
    if obj.get("limitPrice") is not None and obj.get("price") is not None:
        raise SignalError("give limitPrice or price, not both", field="takeProfit.price")
    got = {k: number(obj[k], f"takeProfit.{k}", positive=True, allow_zero=False)
           for k in obj if obj[k] is not None}
    return exit_value("takeProfit", names=_TP_NAMES,
                      price=got.get("limitPrice", got.get("price")),
                      percent=got.get("percent"), amount=got.get("amount"))


def _stop_loss(value: Any) -> tuple[ExitSpec | None, dict[str, float]]:
    """A stop (``stopPrice``, ``percent`` or ``amount``), a stop-limit (with ``limitPrice``)
    or a trailing stop (``trailAmount``/``trailPrice``/``trailPercent``)."""
    obj = _object(value, "stopLoss", ("type", "stopPrice", "percent", "amount", "limitPrice",
                                      "trailAmount", "trailPrice", "trailPercent"))
    trail = _trail(obj, "stopLoss.", ("trailAmount", "trailPrice", "trailPercent"))
    kind = None
    if obj.get("type") is not None:
        kind = text_value(obj["type"], "stopLoss.type", max_len=20).lower().replace("-", "_")
        if kind not in _SL_TYPES:
            raise SignalError(f"unknown stop loss type {json.dumps(obj['type'])} (use one of: "
                              f"{', '.join(_SL_TYPES)})", field="stopLoss.type")
    if kind is None:
        kind = "trailing_stop" if trail else (
            "stop_limit" if obj.get("limitPrice") is not None else "stop")
    if kind == "trailing_stop":
        if not trail:
            raise SignalError("a trailing_stop stop loss needs trailAmount or trailPercent",
                              field="stopLoss")
        for key in ("stopPrice", "percent", "amount", "limitPrice"):
            if obj.get(key) is not None:
                raise SignalError("a trailing stop loss trails the best price: it takes no "
                                  f"{key}", field=f"stopLoss.{key}")
        return None, trail
    if trail:
        raise SignalError(f"{next(k for k in obj if k.startswith('trail'))} needs type "
                          "trailing_stop", field="stopLoss.type")
    limit = number(obj["limitPrice"], "stopLoss.limitPrice", positive=True, allow_zero=False) \
        if obj.get("limitPrice") is not None else None
    if kind == "stop_limit" and limit is None:
        raise SignalError("a stop_limit stop loss needs limitPrice", field="stopLoss")
    if kind == "stop" and limit is not None:
        raise SignalError("limitPrice needs type stop_limit", field="stopLoss.limitPrice")
    got = {k: number(obj[k], f"stopLoss.{k}", positive=True, allow_zero=False)
           for k in ("stopPrice", "percent", "amount") if obj.get(k) is not None}
    return exit_value("stopLoss", names=_SL_NAMES, price=got.get("stopPrice"),
                      percent=got.get("percent"), amount=got.get("amount"),
                      limit_price=limit, stop_loss=True), {}
