"""Settings: a TOML file plus ``SANDTRADE_*`` environment variables, validated by pydantic.

Precedence, highest first: command-line flags, environment variables (``SANDTRADE_DATA_DIR``,
``SANDTRADE_BROKER__COMMISSION_PCT`` for nested values), the TOML file given with
``--config``, then the defaults below.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from sandtrade.broker import BrokerSettings
from sandtrade.errors import SandtradeError
from sandtrade.market.sources import MarketSettings

__all__ = ["ConfigError", "Settings", "load_settings"]


class ConfigError(SandtradeError):
    """The configuration file or environment holds something invalid; names the key."""


class Settings(BaseSettings):
    """Every setting of a sandtrade host, with its default."""

    model_config = SettingsConfigDict(env_prefix="SANDTRADE_", env_nested_delimiter="__",
                                      extra="forbid")

    data_dir: Path = Field(Path("sandtrade-data"), description="Where the store and runs live.")
    http: str = Field("127.0.0.1:8000", description="HOST:PORT of the HTTP server.")
    grpc: str = Field("127.0.0.1:50051", description="HOST:PORT of the gRPC server.")
    cash: float = Field(10_000.0, gt=0, description="Starting cash of new accounts/back-tests.")
    account: str = Field("paper", description="The default paper account (created at start).")
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    market: MarketSettings = Field(default_factory=MarketSettings)

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
        err = e.errors()[0]
        where = f"{config}: " if config else ""
        key = ".".join(str(x) for x in err["loc"])
        raise ConfigError(f"{where}{key}: {err['msg']} (got {err.get('input')!r})") from None
    return settings
