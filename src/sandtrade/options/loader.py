"""Recorded chains: the files vendors export, read into :class:`~.chain.OptionChain`.

Read (each row checked; a bad value is a :class:`~sandtrade.errors.DataError` naming the
file, the line or key, and the column):

* CSV with yfinance's ``option_chain`` columns (``Ticker.option_chain(date).calls``/``.puts``
  written with ``to_csv``): ``contractSymbol, strike, bid, ask, lastPrice, volume,
  openInterest, impliedVolatility``; other columns (``lastTradeDate``, ``change``,
  ``inTheMoney`` ...) are ignored, an empty volume is none.
* JSON: the same records as a list (``to_json(orient="records")``) or as ``{"calls": [...],
  "puts": [...]}``; or Alpaca's option snapshots (``GET /v1beta1/options/snapshots``:
  ``{"snapshots": {SYMBOL: {"latestQuote": {"bp", "ap", ...}, "latestTrade": {"p", ...},
  "greeks": {...}, "impliedVolatility": ...}}}``, or the mapping alone).

A row without greeks gets them from its implied volatility, and one without an implied
volatility gets it from its mark, when the spot is known (``spot=``), so replayed positions
have greeks like live ones. :func:`write_chain_csv` records a chain in the yfinance columns.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandtrade.errors import DataError
from sandtrade.options.chain import ChainRow, OptionChain
from sandtrade.options.contracts import OptionContract
from sandtrade.options.pricing import bsm_greeks, implied_volatility, years_to_expiry
from sandtrade.options.settings import OptionsSettings

__all__ = ["YFINANCE_COLUMNS", "load_chain", "write_chain_csv"]

#: The columns of yfinance's option_chain frames that a recorded chain uses.
YFINANCE_COLUMNS = ("contractSymbol", "strike", "bid", "ask", "lastPrice", "volume",
                    "openInterest", "impliedVolatility")
_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2})[T_ ](\d{2})[-:](\d{2})")
_MAX_BYTES = 64 * 1024 * 1024


def _number(value: Any, where: str, column: str, *, required: bool = False) -> float | None:
    if value is None or (isinstance(value, str) and value.strip() in ("", "nan", "NaN")):
        if required:
            raise DataError(f"{where}: {column} is missing")
        return None
    if isinstance(value, bool):
        raise DataError(f"{where}: {column} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {column} must be a number, got {value!r}") from None
    if math.isnan(number) and not required:
        return None
    if not math.isfinite(number) or number < 0:
        raise DataError(f"{where}: {column} must be a finite number >= 0, got {value!r}")
    return number


class _Rows:
    """Collects checked rows: one underlying, no symbol twice."""

    def __init__(self, path: Path, underlying: str | None) -> None:
        self.path, self.underlying = path, underlying
        self.rows: list[ChainRow] = []
        self.seen: dict[str, str] = {}

    def add(self, where: str, symbol: Any, strike: Any, bid: Any, ask: Any, last: Any = None,
            volume: Any = None, open_interest: Any = None, iv: Any = None,
            greeks: Mapping[str, Any] | None = None) -> None:
        if not isinstance(symbol, str):
            raise DataError(f"{where}: contract symbol must be text, got {symbol!r}")
        try:
            contract = OptionContract.parse(symbol)
        except ValueError as e:
            raise DataError(f"{where}: {e}") from None
        if self.underlying is None:
            self.underlying = contract.underlying
        elif contract.underlying != self.underlying:
            raise DataError(f"{where}: {contract.symbol} is an option on "
                            f"{contract.underlying}, not {self.underlying}")
        if contract.symbol in self.seen:
            raise DataError(f"{where}: {contract.symbol} is also at {self.seen[contract.symbol]}")
        self.seen[contract.symbol] = where
        listed_strike = _number(strike, where, "strike")
        if listed_strike is not None and abs(listed_strike - contract.strike) > 1e-6:
            raise DataError(f"{where}: strike {listed_strike:g} differs from the symbol's "
                            f"{contract.strike:g}")
        b = _number(bid, where, "bid") or 0.0
        a = _number(ask, where, "ask") or 0.0
        if a and b > a:
            raise DataError(f"{where}: bid {b:g} is above ask {a:g}")
        g = greeks or {}
        self.rows.append(ChainRow(
            contract.symbol, contract.underlying, contract.expiry, contract.right,
            contract.strike, b, a, _number(last, where, "last"), _number(volume, where, "volume"),
            _number(open_interest, where, "open interest"),
            _number(iv, where, "implied volatility"),
            _signed(g.get("delta"), where, "delta"), _signed(g.get("gamma"), where, "gamma"),
            _signed(g.get("theta"), where, "theta"), _signed(g.get("vega"), where, "vega")))


def _signed(value: Any, where: str, column: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataError(f"{where}: greeks.{column} must be a finite number, got {value!r}")
    return float(value)


def _yfinance_record(rows: _Rows, where: str, record: Any) -> None:
    if not isinstance(record, Mapping):
        raise DataError(f"{where}: expected an object with contractSymbol, bid, ask ..., "
                        f"got {type(record).__name__}")
    rows.add(where, record.get("contractSymbol"), record.get("strike"), record.get("bid"),
             record.get("ask"), record.get("lastPrice"), record.get("volume"),
             record.get("openInterest"), record.get("impliedVolatility"))


def _alpaca_snapshots(rows: _Rows, name: str, snapshots: Mapping[str, Any]) -> None:
    for symbol, snap in snapshots.items():
        where = f"{name}: snapshots.{symbol}"
        if not isinstance(snap, Mapping):
            raise DataError(f"{where}: expected an object, got {type(snap).__name__}")
        quote = snap.get("latestQuote") or {}
        trade = snap.get("latestTrade") or {}
        greeks = snap.get("greeks") or {}
        for part, value in (("latestQuote", quote), ("latestTrade", trade), ("greeks", greeks)):
            if not isinstance(value, Mapping):
                raise DataError(f"{where}: {part} must be an object")
        rows.add(where, symbol, None, quote.get("bp"), quote.get("ap"), trade.get("p"),
                 trade.get("s"), None, snap.get("impliedVolatility"), greeks)


def _read(path: Path, rows: _Rows) -> None:
    name = str(path)
    if path.stat().st_size > _MAX_BYTES:
        raise DataError(f"{name}: larger than {_MAX_BYTES // 2**20} MiB; not a chain file")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{name}:{e.lineno}: not valid JSON: {e.msg}") from None
        if isinstance(data, Mapping) and "snapshots" in data:
            if not isinstance(data["snapshots"], Mapping):
                raise DataError(f"{name}: snapshots must be an object of SYMBOL: snapshot")
            _alpaca_snapshots(rows, name, data["snapshots"])
        elif isinstance(data, Mapping) and ("calls" in data or "puts" in data):
            for side in ("calls", "puts"):
                records = data.get(side) or []
                if not isinstance(records, list):
                    raise DataError(f"{name}: {side} must be a list of records")
                for i, record in enumerate(records):
                    _yfinance_record(rows, f"{name}: {side}[{i}]", record)
        elif isinstance(data, list):
            for i, record in enumerate(data):
                _yfinance_record(rows, f"{name}: [{i}]", record)
        elif isinstance(data, Mapping) and all(isinstance(v, Mapping) for v in data.values()):
            _alpaca_snapshots(rows, name, data)
        else:
            raise DataError(f"{name}: not a chain: expected yfinance records (a list, or "
                            "calls/puts) or Alpaca option snapshots")
        return
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    missing = [c for c in ("contractSymbol", "bid", "ask") if c not in header]
    if missing:
        raise DataError(f"{name}:1: missing column(s) {', '.join(missing)} (yfinance "
                        f"option_chain columns: {', '.join(YFINANCE_COLUMNS)})")
    for lineno, record in enumerate(reader, start=2):
        _yfinance_record(rows, f"{name}:{lineno}", record)


def _as_of(path: Path) -> datetime:
    stamp = _STAMP.search(path.stem)
    if stamp:
        return datetime.fromisoformat(f"{stamp[1]}T{stamp[2]}:{stamp[3]}").replace(tzinfo=UTC)
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _with_greeks(row: ChainRow, spot: float, as_of: datetime,
                 settings: OptionsSettings) -> ChainRow:
    rate, div = settings.rate, settings.dividend_for(row.underlying)
    years = years_to_expiry(row.expiry, as_of)
    iv = row.iv
    if (iv is None or iv <= 0) and years > 0 and row.mark > 0:
        try:
            iv = implied_volatility(row.mark, row.right, spot, row.strike, years, rate, div)
        except ValueError:
            iv = None
    if iv is None or iv <= 0:
        return row._replace(iv=None)
    g = bsm_greeks(row.right, spot, row.strike, years, iv, rate, div)
    if row.delta is not None:
        return row._replace(iv=iv, theo=g.price)
    return row._replace(iv=iv, delta=g.delta, gamma=g.gamma, theta=g.theta, vega=g.vega,
                        theo=g.price)


def load_chain(path: str | Path, *, underlying: str | None = None, spot: float | None = None,
               as_of: datetime | None = None,
               settings: OptionsSettings | None = None) -> OptionChain:
    """Read a recorded chain (see the module's formats) into an :class:`OptionChain`.

    ``as_of`` defaults to a time in the file name (``SPY_2025-12-05T15-30.csv``), else the
    file's modification time; with ``spot`` the rows missing greeks or an implied volatility
    are completed from the pricer (``settings``' rate and dividend yield).
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such chain file")
    rows = _Rows(p, underlying.upper() if underlying else None)
    _read(p, rows)
    if not rows.rows:
        raise DataError(f"{p}: no contracts in the file")
    when = as_of or _as_of(p)
    if spot is not None:
        conf = settings or OptionsSettings()
        rows.rows = [_with_greeks(r, spot, when, conf) for r in rows.rows]
    assert rows.underlying is not None
    return OptionChain(rows.underlying, when, spot, rows.rows)


def write_chain_csv(chain: OptionChain | Iterable[ChainRow], path: str | Path) -> Path:
    """Record a chain in yfinance's columns (what :func:`load_chain` reads back)."""
    p = Path(path)
    with p.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(YFINANCE_COLUMNS)
        for r in chain:
            out.writerow([r.symbol, f"{r.strike:g}", f"{r.bid:.2f}", f"{r.ask:.2f}",
                          "" if r.last is None else r.last,
                          "" if r.volume is None else r.volume,
                          "" if r.open_interest is None else r.open_interest,
                          "" if r.iv is None else f"{r.iv:.10f}"])
    return p
