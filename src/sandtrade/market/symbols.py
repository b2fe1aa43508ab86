"""Symbols as traders write them, in one canonical spelling, and the instrument each stands for.

An alert names a ticker the way its chart does: ``NASDAQ:AAPL``, ``BINANCE:BTCUSDT``,
``COINBASE:BTC-USD``, ``KRAKEN:XBTUSD``, ``BTC/USDT``. The host keeps one position per
instrument, so every spelling of one instrument must become one symbol (:func:`canonical`):

* an exchange prefix is dropped (the signal formats already drop it: ``NASDAQ:AAPL`` is
  ``AAPL``); letters are upper-cased;
* a crypto pair (:func:`~sandtrade.models.crypto_pair`) is ``BASE-QUOTE``: ``BTCUSD``,
  ``BTC/USD``, ``btc-usd`` and ``XBTUSD`` are all ``BTC-USD``, and ``BTCUSDT``, ``BTC/USDT``
  and ``BINANCE:BTCUSDT`` are ``BTC-USDT``. Kraken's ``XBT`` and ``XDG`` are BTC and DOGE. The
  quote is kept as written: a pair against USDT is another instrument than against USD (its
  price differs); an operator who wants one position for both says so with an alias
  (``"BTC-USDT" = "BTC-USD"``). TradingView's perpetual suffix ``.P`` is dropped;
* an OCC option symbol (``SPY   251219C00450000``, with or without the padding) is written
  without spaces: ``SPY251219C00450000``;
* an equity share class is written with a dot: ``BRK.B`` (``BRK-B`` and ``BRK/B`` too).

The kind of a new symbol is inferred (:meth:`SymbolTable.instrument`): a crypto pair trades
fractionally (lots of 1e-8, a minimum order of 1 in a fiat or stablecoin quote), an OCC symbol
is a 100-share option, anything else a whole-share equity. The ``[symbols]`` table of the
configuration (:class:`SymbolTable`) aliases spellings and pins a symbol's kind, lot size, tick
size and minimum order value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sandtrade.models import (
    AssetClass,
    Instrument,
    crypto_pair,
    parse_occ_symbol,
)

__all__ = ["SymbolSpec", "SymbolTable", "canonical"]

#: Exchanges' own codes for an asset, and the code everyone else uses.
_ASSET_SYNONYMS = {"XBT": "BTC", "XDG": "DOGE"}
_OCC_LOOSE = re.compile(r"^([A-Z0-9.]{1,6}) *(\d{6}[CP]\d{8})$")
_SHARE_CLASS = re.compile(r"^([A-Z]{1,6})[-/]([A-Z]{1,2})$")


#: Instruments a table keeps built (every signal asks for its symbol's); more are built again.
_INSTRUMENTS_KEPT = 4096


def canonical(symbol: str) -> str:
    """The one spelling of ``symbol`` the host trades it under (see the module's docstring)."""
    text = symbol.strip().upper()
    if ":" in text:
        text = text.rsplit(":", 1)[1]
    occ = _OCC_LOOSE.match(text)
    if occ:
        return occ[1] + occ[2]
    pair = crypto_pair(text)
    if pair is not None:
        base, quote = (_ASSET_SYNONYMS.get(x, x) for x in pair)
        return f"{base}-{quote}"
    share = _SHARE_CLASS.match(text)
    if share:
        return f"{share[1]}.{share[2]}"
    return text


class SymbolSpec(BaseModel):
    """``[symbols.SYMBOL]``: one symbol's trading rules, pinned instead of inferred."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["equity", "crypto", "option"] | None = Field(
        None, description="equity, crypto or option (default: inferred from the symbol).")
    lot_size: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = Field(
        None, description="The quantity step (1 share; 1e-8 BTC; 0.001 for a 1/1000 lot).")
    tick_size: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = Field(
        None, description="The price step.")
    min_notional: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = Field(
        None, description="The smallest order value accepted, in the quote currency.")


class SymbolTable:
    """The ``[symbols]`` table: aliases and pinned rules, by canonical symbol.

    ``entries`` maps a symbol (any spelling) to another symbol (an alias: ``"XBTUSD" =
    "BTCUSD"``) or to its rules (a :class:`SymbolSpec`, or the table that validates as one).
    Raises ``ValueError`` naming the key as written when an entry cannot be used (an unknown
    or invalid rule, an alias of an alias, an option kind for a symbol that is no OCC symbol).
    """

    def __init__(self, entries: Mapping[str, object] | None = None) -> None:
        self.aliases: dict[str, str] = {}
        self.specs: dict[str, SymbolSpec] = {}
        self._instruments: dict[str, Instrument] = {}  # built, by symbol (they are frozen)
        written: dict[str, str] = {}
        for key, value in (entries or {}).items():
            name = canonical(key)
            if not name:
                raise ValueError(f"{key!r}: not a symbol")
            if name in written:
                raise ValueError(f"{key}: the same symbol as {written[name]} ({name}); give "
                                 "it once")
            written[name] = key
            if isinstance(value, str):
                target = canonical(value)
                if not target:
                    raise ValueError(f"{key}: {value!r} is not a symbol to alias it to")
                if target != name:
                    self.aliases[name] = target
            elif isinstance(value, SymbolSpec):
                self.specs[name] = value
            elif isinstance(value, dict):
                try:
                    self.specs[name] = SymbolSpec.model_validate(value)
                except ValidationError as e:
                    err = e.errors()[0]
                    where = ".".join(str(x) for x in err["loc"])
                    raise ValueError(f"{key}.{where}: {err['msg']} (got {err['input']!r}; "
                                     f"rules: {', '.join(SymbolSpec.model_fields)})") from None
            else:
                raise ValueError(f"{key}: expected the symbol it is an alias of (\"{key}\" = "
                                 f"\"BTCUSD\") or a table of rules ([symbols.{key}]), got "
                                 f"{value!r}")
        for name, target in self.aliases.items():
            if target in self.aliases:
                raise ValueError(f"{written[name]}: an alias of {target}, which is itself an "
                                 f"alias (of {self.aliases[target]}): name the symbol it "
                                 "stands for")
        for name, spec in self.specs.items():
            try:
                self._build(name, spec)
            except ValueError as e:
                raise ValueError(f"{written[name]}: {e}") from None

    def resolve(self, symbol: str) -> str:
        """The symbol ``symbol`` is traded under: canonical, then its alias if it has one."""
        name = canonical(symbol)
        return self.aliases.get(name, name)

    def instrument(self, symbol: str) -> Instrument:
        """The instrument of a symbol already resolved: inferred, with the pinned rules."""
        inst = self._instruments.get(symbol)
        if inst is None:
            inst = self._build(symbol, self.specs.get(symbol))
            if len(self._instruments) >= _INSTRUMENTS_KEPT:  # symbols senders made up
                self._instruments.clear()
            self._instruments[symbol] = inst
        return inst

    def apply(self, instrument: Instrument) -> Instrument:
        """``instrument`` (a market source's) with the rules ``[symbols]`` pins for it."""
        spec = self.specs.get(canonical(instrument.symbol)) or \
            self.specs.get(instrument.symbol)
        if spec is None:
            return instrument
        base = instrument if spec.kind in (None, instrument.asset_class.value) \
            else self._infer(instrument.symbol, spec.kind)
        return base.model_copy(update=_rules(spec))

    def _build(self, symbol: str, spec: SymbolSpec | None) -> Instrument:
        inst = self._infer(symbol, spec.kind if spec is not None else None)
        return inst if spec is None else inst.model_copy(update=_rules(spec))

    @staticmethod
    def _infer(symbol: str, kind: str | None) -> Instrument:
        if kind is None:
            try:
                parse_occ_symbol(symbol)
            except ValueError:
                return Instrument.for_symbol(symbol)
            return Instrument.option(symbol)
        if kind == AssetClass.OPTION:
            return Instrument.option(symbol)  # ValueError says what an OCC symbol is
        if kind == AssetClass.CRYPTO:
            pair = crypto_pair(symbol)
            inferred = Instrument.for_symbol(symbol) if pair is not None else None
            if inferred is not None and inferred.asset_class is AssetClass.CRYPTO:
                return inferred
            return Instrument.crypto(symbol)
        return Instrument.equity(symbol)


def _rules(spec: SymbolSpec) -> dict[str, float]:
    return {k: v for k, v in (("lot_size", spec.lot_size), ("tick_size", spec.tick_size),
                              ("min_notional", spec.min_notional)) if v is not None}
