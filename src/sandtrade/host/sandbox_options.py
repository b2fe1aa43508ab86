"""How the host's settings and plugins shape its sandbox workers: the strategy modules its
plugins contribute, ``[sandbox] modules`` and ``[accounts.NAME] modules``, ``[sandbox]
python``. One place, used by ``serve`` and by the one-shot commands (``check``,
``backtest``, ``doctor``), so that a strategy is checked under the rules it will run under."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandtrade.host.config import ConfigError, Settings
from sandtrade.host.plugins import PluginHost
from sandtrade.sandbox.libraries import SandboxSetupError, check_modules, check_python
from sandtrade.strategy.modules import STANDARD_MODULES, StrategyModule, narrowed

__all__ = ["SandboxOptions", "sandbox_options"]


@dataclass(frozen=True)
class SandboxOptions:
    """What every sandbox supervisor of this host is built with."""

    strategy_modules: tuple[StrategyModule, ...]
    modules: tuple[str, ...] | None
    python: str | None
    python_version: str | None
    settings: Settings

    def supervisor_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~sandtrade.sandbox.supervisor.Supervisor`."""
        return {"strategy_modules": self.strategy_modules, "modules": self.modules,
                "python": self.python}

    def importable(self, account: str | None = None) -> list[str]:
        """What strategies (of ``account``) may import."""
        names = [*STANDARD_MODULES, *(m.name for m in self.strategy_modules)]
        return narrowed(names, self.modules,
                        None if account is None else self.account_modules(account))

    def account_modules(self, account: str) -> list[str] | None:
        """``[accounts.NAME] modules``, checked (None: the account narrows nothing)."""
        return self.settings.account_modules(account)


def sandbox_options(settings: Settings, plugins: PluginHost) -> SandboxOptions:
    """The sandbox's options from ``settings`` and ``plugins``: the modules names checked
    (each one strategies could import), the interpreter checked (it runs and imports what a
    worker needs). Raises :class:`ConfigError` naming the key."""
    contributed = plugins.strategy_modules()
    try:
        modules = check_modules(settings.sandbox.modules, contributed)
        for name, account in settings.accounts.items():
            check_modules(account.modules, contributed, key=f"[accounts.{name}] modules")
        python = settings.sandbox.python
        version = None if python is None else check_python(
            python, [m.factory for m in contributed.values()])
    except SandboxSetupError as e:
        raise ConfigError(str(e)) from None
    return SandboxOptions(strategy_modules=tuple(contributed.values()),
                          modules=None if modules is None else tuple(modules), python=python,
                          python_version=version, settings=settings)
