"""The ``traderspost`` format: the JSON that TradersPost-style routers accept.

``ticker``, ``action`` (buy, sell, exit, cancel, add), ``sentiment`` (bullish, bearish, flat;
long and short too), ``quantity``, ``orderType``, ``limitPrice``, ``stopPrice``,
``signalPrice``. A buy while short closes the short first (TradersPost's behaviour).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from sandtrade.models import implied_order_type
from sandtrade.signal_model import Command, ParsedSignal, SignalError
from sandtrade.signals.formats.base import (
    SignalFormat,
    action_value,
    cancel_command,
    check_prices,
    commands_for,
    expanded,
    number,
    optional_text,
    order_type_value,
    symbol_value,
    text_value,
)

__all__ = ["TradersPostFormat"]


class TradersPostFormat(SignalFormat):
    """The JSON that TradersPost-style routers accept."""

    name = "traderspost"
    description = ('TradersPost JSON: {"ticker": "AAPL", "action": "buy", "sentiment": '
                   '"bullish", "quantity": 10}')
    priority = 120
    KEYS: ClassVar[set[str]] = {"sentiment", "quantity", "quantityType", "orderType",
                                "limitPrice", "stopPrice", "signalPrice", "extras", "test",
                                "takeProfit", "stopLoss", "cancel"}
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
        for key in ("takeProfit", "stopLoss"):
            if data.get(key) is not None:
                raise SignalError("bracket orders (take profit / stop loss) are not "
                                  "supported; send them as separate signals", field=key)
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
        qtype = data.get("quantityType")
        if qtype is not None and text_value(qtype, "quantityType") != "fixed_quantity":
            raise SignalError(f"{json.dumps(qtype)} is not supported (only fixed_quantity)",
                              field="quantityType")
        qty = number(data["quantity"], "quantity") if data.get("quantity") is not None \
            else None
        limit = number(data["limitPrice"], "limitPrice", positive=True, allow_zero=False) \
            if data.get("limitPrice") is not None else None
        stop = number(data["stopPrice"], "stopPrice", positive=True, allow_zero=False) \
            if data.get("stopPrice") is not None else None
        order_type = order_type_value(data["orderType"], "orderType") \
            if data.get("orderType") is not None else implied_order_type(limit, stop).value
        check_prices(order_type, limit, stop, "", "limitPrice", "stopPrice")
        extra: dict[str, Any] = {"order_type": order_type, "limit_price": limit,
                                 "stop_price": stop}
        commands: list[Command]
        if action == "exit":
            commands = [Command(action="target", symbol=symbol, qty=0.0, **extra)]
        elif action == "cancel":
            commands = [cancel_command(symbol)]
        elif action == "add":
            if sentiment not in ("bullish", "bearish"):
                raise SignalError("add needs sentiment bullish or bearish", field="sentiment")
            commands = commands_for("buy" if sentiment == "bullish" else "sell", symbol, qty,
                                    where="", qty_name="quantity", **_tp(extra))
        elif sentiment == "flat":
            # buy + flat: buy to cover the short; sell + flat: sell the long.
            commands = [Command(action="target", symbol=symbol, qty=0.0,
                                only_if="short" if action == "buy" else "long", **extra)]
        else:
            if sentiment is not None and (sentiment == "bullish") != (action == "buy"):
                raise SignalError(f"{action} with sentiment {sentiment} contradicts itself",
                                  field="sentiment")
            opposite = "short" if action == "buy" else "long"
            commands = [Command(action="target", symbol=symbol, qty=0.0, only_if=opposite),
                        *commands_for(action, symbol, qty, where="", qty_name="quantity",
                                      **_tp(extra))]
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
            fields={k: v for k, v in data.items() if k != "passphrase"})


def _tp(extra: dict[str, Any]) -> dict[str, Any]:
    return {"order_type": extra["order_type"], "limit": extra["limit_price"],
            "stop": extra["stop_price"]}
