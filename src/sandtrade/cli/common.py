"""What several commands share: ``--param`` parsing, the stats table, the settings a command
reads, its common arguments and its connection to a running host.

The rule of the :mod:`sandtrade.cli` package: a command module (:mod:`.main`, :mod:`.host`,
:mod:`.signals`, :mod:`.strategies`, :mod:`.options`, :mod:`.demo`) imports this module,
:mod:`.tables` and :mod:`.terminal`, never another command module; :mod:`.main` imports them
all to build the parser. So what two commands both need lives here, under a public name.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from sandtrade import __version__
from sandtrade.broker.risk import RiskRules
from sandtrade.errors import SandtradeError

if TYPE_CHECKING:
    from sandtrade.client import Client
    from sandtrade.host.config import Settings

__all__ = [
    "TOKEN_WAIT",
    "add_client_args",
    "add_config_args",
    "client_token",
    "connect",
    "format_stat",
    "load_cli_settings",
    "parse_params",
    "risk_rules",
    "stats_table",
]

#: How long a client command waits for a starting host's operator token (``sandtrade serve &``
#: then ``sandtrade buy ...`` at once: the host writes it about a second after it starts).
TOKEN_WAIT = 10.0


def parse_params(items: Sequence[str]) -> dict[str, str]:
    """``--param K=V`` values (repeatable) as a dict; the strategy converts each value."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SandtradeError(f"--param {item!r}: expected NAME=VALUE, e.g. fast=5")
        out[key.strip()] = value
    return out


def risk_rules(base: RiskRules, items: Sequence[str]) -> RiskRules:
    """``base`` with ``--risk RULE=VALUE`` values (repeatable) applied; ``SandtradeError``
    naming the flag when one is unknown or invalid."""
    import json

    from pydantic import ValidationError

    values = base.model_dump()
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise SandtradeError(f"--risk {item!r}: expected RULE=VALUE, e.g. "
                                 "max_daily_loss=500")
        try:
            values[key] = json.loads(text)
        except ValueError:
            values[key] = text
    try:
        return RiskRules.model_validate(values)
    except ValidationError as e:
        err = e.errors()[0]
        rule = ".".join(str(x) for x in err["loc"])
        known = ", ".join(RiskRules.model_fields)
        msg = err["msg"].removeprefix("Value error, ")
        raise SandtradeError(f"--risk {rule}: {msg} (got {err.get('input')!r}; rules: "
                             f"{known})") from None


def format_stat(v: Any) -> str:
    """One back-test statistic as shown in a table: ``—`` for none or NaN, grouped digits."""
    if v is None:
        return "—"
    if isinstance(v, float):
        if math.isnan(v):
            return "—"
        return f"{v:,.4f}" if abs(v) < 1e6 else f"{v:,.2f}"
    return str(v)


def stats_table(title: str, stats: dict[str, Any]) -> Table:
    """A back-test's statistics as a two-column table (name, value) under ``title``."""
    table = Table(title=title, show_header=False, title_justify="left", box=None)
    table.add_column("stat", style="bold")
    table.add_column("value", justify="right")
    for k, v in stats.items():
        table.add_row(k, format_stat(v))
    return table


def load_cli_settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    """The settings of a command: ``--config`` (when the command has it), then ``--data-dir``
    and ``--grpc`` (when given), then ``overrides``."""
    from sandtrade.host.config import load_settings

    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    if getattr(args, "grpc", None):
        overrides["grpc"] = args.grpc
    return load_settings(getattr(args, "config", None), **overrides)


def add_config_args(p: argparse.ArgumentParser) -> None:
    """``--config`` and ``--data-dir``: the arguments of every command that reads settings."""
    p.add_argument("--config", metavar="FILE.toml", help="configuration file")
    p.add_argument("--data-dir", metavar="DIR", help="data directory (default ./sandtrade-data)")


def add_client_args(p: argparse.ArgumentParser) -> None:
    """The arguments of a command that talks to a running host (and those of
    :func:`add_config_args`)."""
    add_config_args(p)
    p.add_argument("--grpc", metavar="HOST:PORT", help="the host's gRPC address")
    p.add_argument("--token", help="API token (default: $SANDTRADE_TOKEN, else the operator "
                   "token in the data directory)")
    p.add_argument("--account", help="account (default: the token's own)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def client_token(args: argparse.Namespace, settings: Settings, err: Console) -> str:
    """The token a client command uses: ``--token``, else ``SANDTRADE_TOKEN``, else the
    operator token ``sandtrade serve`` writes into the data directory (waited for up to
    :data:`TOKEN_WAIT` seconds)."""
    from sandtrade.host.runtime import OPERATOR_TOKEN_FILE

    if args.token:
        return str(args.token)
    env = os.environ.get("SANDTRADE_TOKEN")
    if env:
        return env
    path = Path(settings.data_dir) / OPERATOR_TOKEN_FILE
    deadline = time.monotonic() + TOKEN_WAIT
    told = False
    while True:
        with contextlib.suppress(OSError):
            token = path.read_text().strip()
            if token:  # the host links it into place whole
                return token
        if time.monotonic() > deadline:
            raise SandtradeError(
                f"no token: pass --token, set SANDTRADE_TOKEN, or run `sandtrade serve` once "
                f"so that it writes {path}")
        if not told and time.monotonic() > deadline - TOKEN_WAIT + 1.0:
            err.print(Text(f"waiting for {path} (is `sandtrade serve` starting?)", style="dim"))
            told = True
        time.sleep(0.1)


@contextlib.contextmanager
def connect(args: argparse.Namespace, settings: Settings, err: Console) -> Iterator[Client]:
    """A client of the host at ``settings.grpc``, with :func:`client_token`'s token.

    An API error raised inside the ``with`` block becomes a :class:`SandtradeError` line naming
    the host, its status and the field at fault.
    """
    from sandtrade.client import ApiError, Client

    with Client(settings.grpc, client_token(args, settings, err), retry_for=2.0,
                agent=f"cli/{__version__}") as c:
        try:
            yield c
        except ApiError as e:
            where = f" (field {e.field})" if e.field and not e.message.startswith(e.field) else ""
            raise SandtradeError(f"{settings.grpc}: {e.code.name.lower()}: {e.message}{where}"
                                 ) from None
