"""Settings: a TOML file plus ``SANDTRADE_*`` environment variables, validated by pydantic.

Precedence, highest first: command-line flags, environment variables (``SANDTRADE_DATA_DIR``,
``SANDTRADE_BROKER__COMMISSION_PCT`` for nested values), the TOML file given with
``--config``, then the defaults below.
"""

from __future__ import annotations

import contextlib
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from sandtrade.broker.quotas import Quotas
from sandtrade.broker.risk import RiskRules
from sandtrade.broker.settings import BrokerSettings
from sandtrade.errors import SandtradeError
from sandtrade.host.metrics import MetricsSettings
from sandtrade.market.sources import MarketSettings
from sandtrade.market.symbols import SymbolTable
from sandtrade.options.settings import OptionsSettings
from sandtrade.sandbox.libraries import SandboxSettings
from sandtrade.sandbox.mailbox import StrategySettings
from sandtrade.signals.settings import SignalSettings

__all__ = ["AccountSettings", "ConfigError", "Settings", "config_error", "load_settings",
           "toml_line"]


class ConfigError(SandtradeError):
    """The configuration file or environment holds something invalid; names the key."""


class AccountSettings(BaseModel):
    """``[accounts.NAME]``: one account's own settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    risk: RiskRules | None = Field(
        None, description="[accounts.NAME.risk]: the account's risk rules, instead of [risk] "
        "(rules set over gRPC with SetAccountSettings take precedence over both).")
    quotas: Quotas | None = Field(
        None, description="[accounts.NAME.quotas]: the account's quotas, instead of [quotas].")
    modules: list[str] | None = Field(
        None, description="[accounts.NAME] modules: what this account's strategies may "
        "import, narrowed further from [sandbox] modules.")


class Settings(BaseSettings):
    """Every setting of a sandtrade host, with its default."""

    model_config = SettingsConfigDict(env_prefix="SANDTRADE_", env_nested_delimiter="__",
                                      extra="forbid")

    data_dir: Path = Field(Path("sandtrade-data"), description="Where the store and runs live.")
    http: str = Field("127.0.0.1:8000", description="HOST:PORT of the HTTP server (webhooks); "
                      "empty turns it off.")
    ssl_certfile: str | None = Field(None, description="TLS certificate of the HTTP server "
                                     "(TradingView posts only to ports 80 and 443).")
    ssl_keyfile: str | None = Field(None, description="TLS key of the HTTP server.")
    grpc: str = Field("127.0.0.1:50051", description="HOST:PORT of the gRPC server.")
    cash: float = Field(10_000.0, gt=0, description="Starting cash of new accounts/back-tests.")
    account: str = Field("paper", description="The default paper account (created at start).")
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    risk: RiskRules = Field(default_factory=RiskRules,
                            description="[risk]: the risk rules of every account without its "
                            "own (none by default).")
    quotas: Quotas = Field(default_factory=Quotas,
                           description="[quotas]: how fast every account without its own may "
                           "place and cancel orders and send signals, and how many orders it "
                           "may keep working (wall-clock rates: a live host only).")
    accounts: dict[str, AccountSettings] = Field(
        default_factory=dict, description="[accounts.NAME]: settings of one account.")
    market: MarketSettings = Field(default_factory=MarketSettings)
    sources: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="[sources.NAME]: a market source's own settings "
        "(e.g. [sources.ccxt] exchange = \"binance\"), validated by the source when [market] "
        "source selects it.")
    signals: SignalSettings = Field(default_factory=SignalSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings,
                                     description="[metrics]: who may read /metrics.")
    options: OptionsSettings = Field(
        default_factory=OptionsSettings, description="[options]: the option pricer's rate "
        "and dividend yields, where chains come from, and the synthetic chains' shape.")
    strategies: StrategySettings = Field(default_factory=StrategySettings)
    sandbox: SandboxSettings = Field(
        default_factory=SandboxSettings, description="[sandbox]: what strategies may import "
        "(modules) and the interpreter workers run (python).")
    plugins: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="[plugins.NAME]: each plugin's own settings, "
        "validated by the plugin.")
    symbols: dict[str, Any] = Field(
        default_factory=dict, description="[symbols]: \"XBTUSD\" = \"BTCUSD\" makes one "
        "spelling an alias of another; [symbols.SYMBOL] pins a symbol's kind (equity, crypto, "
        "option), lot_size, tick_size and min_notional instead of inferring them.")

    @field_validator("symbols")
    @classmethod
    def _symbols_usable(cls, value: dict[str, Any]) -> dict[str, Any]:
        SymbolTable(value)  # raises naming the key
        return value

    def symbol_table(self) -> SymbolTable:
        """``[symbols]`` as the table signals and the market read symbols with."""
        return SymbolTable(self.symbols)

    def account_rules(self, account: str) -> RiskRules | None:
        """``account``'s risk rules from the file (None: it has none of its own)."""
        own = self.accounts.get(account)
        return own.risk if own is not None else None

    def account_modules(self, account: str) -> list[str] | None:
        """``account``'s ``[accounts.NAME] modules`` (None: no narrowing of its own)."""
        own = self.accounts.get(account)
        return own.modules if own is not None else None

    def account_quotas(self, account: str) -> Quotas:
        """``account``'s quotas: its own ``[accounts.NAME.quotas]``, else ``[quotas]``."""
        own = self.accounts.get(account)
        return own.quotas if own is not None and own.quotas is not None else self.quotas

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment variables override the file's values (passed as init values)."""
        return env_settings, init_settings


def load_settings(config: str | Path | None = None, **overrides: Any) -> Settings:
    """Read ``config`` (TOML) if given, apply the environment, then ``overrides``."""
    values: dict[str, Any] = {}
    if config is not None:
        path = Path(config)
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such configuration file") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
    try:
        settings = Settings(**values)
        if overrides:
            merged = settings.model_dump()
            for key, value in overrides.items():
                if isinstance(value, dict):
                    merged[key] = {**merged.get(key, {}), **value}
                else:
                    merged[key] = value
            settings = Settings.model_validate(merged)
    except ValidationError as e:
        raise config_error(e, config) from None
    return settings


def config_error(e: ValidationError, config: str | Path | None,
                 prefix: tuple[str | int, ...] = ()) -> ConfigError:
    """The first problem of ``e`` as ``FILE:LINE: key.path: message (got ...)``."""
    err = e.errors()[0]
    loc = (*prefix, *err["loc"])
    key = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in loc).lstrip(".")
    where = ""
    if config:
        line = None
        with contextlib.suppress(OSError):
            line = toml_line(Path(config).read_text(encoding="utf-8"), loc)
        where = f"{config}:{line}: " if line else f"{config}: "
    got = f" (got {err['input']!r})" if err["type"] != "missing" else ""
    msg = err["msg"].removeprefix("Value error, ")
    return ConfigError(f"{where}{key}: {msg}{got}")


_HEADER = re.compile(r"\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"\s*([A-Za-z0-9_.\"' -]+?)\s*=")


def _dotted(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in text.split("."))


def toml_line(text: str, loc: tuple[str | int, ...]) -> int | None:
    """The line of ``text`` (TOML) that holds the key at ``loc`` (``("signals", "routes", 1,
    "to")``), or the nearest table that does; None when nothing matches."""
    want = tuple(str(x) for x in loc)
    best: tuple[int, int] | None = None  # (matched length, line)
    table: tuple[str, ...] = ()
    counts: dict[tuple[str, ...], int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        m = _HEADER.match(line)
        if m and not line.lstrip().startswith("#"):
            path = _dotted(m.group(2))
            if m.group(1) == "[[":
                index = counts.get(path, -1) + 1
                counts[path] = index
                table = (*path, str(index))
            else:
                table = path
            n = _prefix(table, want)
            if n == len(table) and (best is None or n > best[0]):
                best = (n, lineno)
            continue
        k = _KEY.match(line)
        if k and not line.lstrip().startswith("#"):
            full = (*table, *_dotted(k.group(1)))
            n = _prefix(full, want)
            if n == len(full) and (best is None or n > best[0]):
                best = (n, lineno)
    return best[1] if best else None


def _prefix(have: tuple[str, ...], want: tuple[str, ...]) -> int:
    if len(have) > len(want) or want[:len(have)] != have:
        return -1
    return len(have)
