"""The ``tradingview`` format: a JSON message built from TradingView's placeholders.

The fields of TradingView's strategy placeholders, flat or nested under ``"strategy"``:
``ticker`` (``{{ticker}}``), ``exchange``, ``action`` (``{{strategy.order.action}}``),
``contracts`` (``{{strategy.order.contracts}}``), ``position_size``
(``{{strategy.position_size}}``), ``market_position`` (``{{strategy.market_position}}``),
``order_id`` (``{{strategy.order.id}}``), ``close``, ``time``/``timenow``, ``interval``.
With ``market_position`` the signal is a *target*: the account is brought to
``position_size`` (signed), so a reversal is one step; otherwise ``action`` and
``contracts`` place an order.

Other fields are ignored and listed (``ignored_fields``); a near miss of a field that changes
what is traded (``contarcts``) is refused. Without a quantity, a buy or sell gets the default
size.

``{{strategy.order.id}}`` (``order_id``) is no duplicate key, because it repeats ("Long",
"Exit"); put ``"id": "{{ticker}}-{{timenow}}"`` in an alert to make its resends recognisable.

A multi-leg options order (:mod:`.spreads`): ``"template"`` (or a ``"strategy"`` naming a
template that no strategy of the host has) with ``expiry`` and the template's parameters, or
``"legs"``; ``contracts`` (or ``qty``, ``quantity``) spreads, ``limit_price`` and
``price_effect``.
"""

from __future__ import annotations

from typing import Any

from sandtrade.signal_model import ACTIONS, Command, ParsedSignal, SignalError
from sandtrade.signals.formats.base import (
    SignalFormat,
    action_value,
    commands_for,
    expanded,
    number,
    optional_text,
    symbol_value,
    text_value,
    unread_fields,
)
from sandtrade.signals.formats.spreads import SpreadNames, asks_for_spread, read_spread
from sandtrade.signals.formats.traderspost import TradersPostFormat

__all__ = ["TradingViewFormat"]


_TV_STRATEGY_KEYS = {"contracts", "position_size", "market_position", "market_position_size",
                     "order_action", "order_contracts", "order_id", "order_price",
                     "prev_market_position", "prev_market_position_size", "order_comment"}


#: Fields read (as flattened: strategy.order.X is order_X, bar.X is bar_X) whose near miss is
#: refused: they change what is traded, or where.
_CONSEQUENTIAL = {"ticker", "action", "contracts", "order_contracts", "qty", "quantity",
                  "position_size", "market_position", "market_position_size", "limit_price",
                  "price", "close", "id", "idempotency_key", "alert_id", "account", "strategy",
                  "passphrase"}
#: Fields TradingView's placeholders fill in that carry nothing to trade on.
_INFORMATIONAL = {"exchange", "order_id", "order_price", "order_comment", "order_alert_message",
                  "prev_market_position", "prev_market_position_size", "comment", "time",
                  "timenow", "interval", "open", "high", "low", "volume",
                  "bar_time", "bar_open", "bar_high", "bar_low", "bar_close",
                  "bar_volume"}
#: A spread's fields in this format's words.
_SPREAD = SpreadNames(symbol="ticker", qty=("contracts", "order_contracts", "qty", "quantity"),
                      limit="limit_price", effect="price_effect", order_type=None, tif=None,
                      refused=("position_size", "market_position", "market_position_size"))


def _tv_flatten(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """One flat dict of the fields, and where each was written (``strategy.order.action``)."""
    flat: dict[str, Any] = {}
    where: dict[str, str] = {}

    def put(key: str, value: Any, path: str) -> None:
        if key in flat and flat[key] != value:
            raise SignalError(f"given twice with different values ({where[key]} and {path})",
                              field=path)
        flat[key] = value
        where[key] = path

    for key, value in data.items():
        if key == "strategy" and isinstance(value, dict):
            for k2, v2 in value.items():
                if k2 == "order" and isinstance(v2, dict):
                    for k3, v3 in v2.items():
                        put("action" if k3 == "action" else f"order_{k3}", v3,
                            f"strategy.order.{k3}")
                elif k2 == "order_action":
                    put("action", v2, f"strategy.{k2}")
                else:
                    put(k2, v2, f"strategy.{k2}")
        elif key == "bar" and isinstance(value, dict):
            # the bar's own time differs from the alert's {{timenow}}: kept apart
            for k2, v2 in value.items():
                put(f"bar_{k2}", v2, f"bar.{k2}")
        elif key == "order_action":
            put("action", value, key)
        else:
            put(key, value, key)
    return flat, where


class TradingViewFormat(SignalFormat):
    """A JSON message built from TradingView's placeholders (flat or nested)."""

    name = "tradingview"
    description = ('TradingView placeholders: {"ticker": "{{ticker}}", "action": '
                   '"{{strategy.order.action}}", "contracts": {{strategy.order.contracts}}}')
    priority = 110

    def detect(self, body: str, data: Any) -> bool:
        if not isinstance(data, dict) or "ticker" not in data:
            return False
        if isinstance(data.get("strategy"), dict) or _TV_STRATEGY_KEYS & set(data):
            return True
        action = data.get("action")
        if isinstance(action, str) and action.strip().lower() in TradersPostFormat.OWN_ACTIONS:
            return False  # {"ticker": ..., "action": "exit"} is TradersPost's
        return not TradersPostFormat.KEYS & set(data)

    def parse(self, body: str, data: Any) -> ParsedSignal:
        flat, where = _tv_flatten(data)

        def w(key: str) -> str:
            return where.get(key, key)

        spread = read_spread(flat, _SPREAD) if asks_for_spread(flat, _SPREAD) else None
        ignored = []
        for key in flat:
            if spread is not None and key in spread.read:
                continue
            if spread is not None and key not in _CONSEQUENTIAL | _INFORMATIONAL:
                unread_fields({key: None}, (), spread.parameters)
            if key not in _CONSEQUENTIAL and key not in _INFORMATIONAL:
                # strategy.order.contrcts is order_contrcts: its last word is what was meant
                unread_fields({w(key).rsplit(".", 1)[-1]: None}, (), _CONSEQUENTIAL,
                              where=w(key).rpartition(".")[0] + "." if "." in w(key) else "")
                ignored.append(w(key))

        if flat.get("ticker") is None:
            raise SignalError('no symbol: add "ticker": "{{ticker}}"', field="ticker")
        symbol = symbol_value(flat["ticker"], w("ticker"))
        action: str | None
        if spread is not None:
            commands, action, qty = spread.commands, spread.action, spread.qty
        else:
            commands, action, qty = self._commands(flat, w, symbol)
        price_key = next((k for k in ("close", "price", "order_price", "bar_close")
                          if flat.get(k) is not None), None)
        price = number(flat[price_key], w(price_key), positive=True) if price_key else None
        # {{strategy.order.id}} names the order ("Long"), and repeats: it is no duplicate
        # key. An "id" the author made unique ("{{ticker}}-{{timenow}}") is.
        unique = next((text_value(flat[k], w(k)) for k in ("idempotency_key", "id", "alert_id")
                       if flat.get(k) is not None), None)
        alert_id = text_value(flat["order_id"], w("order_id")) \
            if flat.get("order_id") is not None else unique
        comment = next((text_value(flat[k], w(k), max_len=500) for k in
                        ("comment", "order_comment") if flat.get(k) is not None), None)
        for key in ("exchange", "interval", "time", "timenow", "bar_time"):
            if isinstance(flat.get(key), str):
                expanded(flat[key], w(key))
        # "strategy" names a strategy of this host; a template's strategy_name ({{strategy}}
        # of the Pine script) names TradingView's, and is only listed as ignored.
        strategy = flat.get("strategy")
        return ParsedSignal(
            format=self.name, commands=commands, symbol=symbol, action=action, qty=qty,
            price=price, account=optional_text(flat, "account"),
            strategy=text_value(strategy, w("strategy")) if isinstance(strategy, str) else None,
            alert_id=alert_id, comment=comment, idempotency_key=unique,
            passphrase=optional_text(flat, "passphrase"),
            fields={w(k): v for k, v in flat.items() if k != "passphrase"},
            ignored_fields=ignored,
            template_from_strategy=spread is not None and spread.from_strategy)

    @staticmethod
    def _commands(flat: dict[str, Any], w: Any, symbol: str
                  ) -> tuple[list[Command], str | None, float | None]:
        """An order, or a target position: the commands, the action and the quantity."""
        qty_key = next((k for k in ("contracts", "order_contracts", "qty", "quantity")
                        if flat.get(k) is not None), None)
        qty = number(flat[qty_key], w(qty_key), positive=True) if qty_key else None
        action = action_value(flat["action"], w("action"), ACTIONS) \
            if flat.get("action") is not None else None
        order_type = "market"
        limit = number(flat["limit_price"], w("limit_price"), positive=True, allow_zero=False) \
            if flat.get("limit_price") is not None else None
        if limit is not None:
            order_type = "limit"
        if flat.get("market_position") is not None:
            mp = action_value(flat["market_position"], w("market_position"),
                              ("long", "short", "flat"))
            if flat.get("position_size") is not None:
                size = number(flat["position_size"], w("position_size"))
                if (mp == "long" and size <= 0) or (mp == "short" and size >= 0) or \
                        (mp == "flat" and size != 0):
                    raise SignalError(
                        f"market_position is {mp!r} but position_size is {size:g}; they "
                        "disagree (position_size is signed: + long, - short)",
                        field=w("position_size"))
            elif mp == "flat":
                size = 0.0
            elif flat.get("market_position_size") is not None:
                size = number(flat["market_position_size"], w("market_position_size"),
                              positive=True)
                size = size if mp == "long" else -size
            else:
                raise SignalError(f"market_position {mp!r} needs the size: add "
                                  '"position_size": {{strategy.position_size}}',
                                  field=w("market_position"))
            commands = [Command(action="target", symbol=symbol, qty=size,
                                order_type=order_type, limit_price=limit)]
        elif flat.get("position_size") is not None:
            size = number(flat["position_size"], w("position_size"))
            commands = [Command(action="target", symbol=symbol, qty=size,
                                order_type=order_type, limit_price=limit)]
        else:
            if action is None:
                raise SignalError('no action: add "action": "{{strategy.order.action}}" (or '
                                  '"market_position" and "position_size")', field="action")
            commands = commands_for(action, symbol, qty, where="", qty_name=qty_key or
                                    "contracts", order_type=order_type, limit=limit)
        return commands, action, qty
