"""The plugin API: every hook the host calls, in one file.

Host plugins (the built-ins, the TradingView adapter, market-data sources, a future live-broker
adapter) implement these with ``@hookimpl`` and are found through the ``sandtrade``
entry-point group, like pytest's ``pytest11``::

    # pyproject.toml of a plugin package
    [project.entry-points.sandtrade]
    my_plugin = "my_package.plugin"

Hooks are grouped by lifecycle. Every argument is passed by keyword. A test checks that every
hook here is documented and exercised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from sandtrade.broker.fills import FillProfile
    from sandtrade.market.hub import MarketSource
    from sandtrade.options.sources import ChainSource
    from sandtrade.plugin_api import HostApi
    from sandtrade.signals.destinations import LiveBrokerAdapter
    from sandtrade.signals.formats import SignalFormat
    from sandtrade.strategy.modules import StrategyModule

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("sandtrade")
hookimpl = pluggy.HookimplMarker("sandtrade")


# ---------------------------------------------------------------- broker


@hookspec
def sandtrade_fill_profiles() -> list[type[FillProfile]]:
    """Contribute fill profiles the paper broker can be set to use.

    Called once when the host builds a broker. Return a list of :class:`FillProfile`
    subclasses, each with a unique ``name`` (``BrokerSettings.fill_profile`` selects one by
    it). The built-ins (``next_open``, ``close``, ``quote``) are registered ``trylast``; a
    plugin that returns a profile with a built-in's name replaces it.

    :return: fill profile classes (all implementations' lists are combined).
    """
    raise NotImplementedError  # a specification: plugins implement it


# ---------------------------------------------------------------- market data


@hookspec
def sandtrade_market_sources() -> list[type[MarketSource]]:
    """Contribute market-data sources a live host can be fed from.

    Called once when ``sandtrade serve`` starts. Return a list of classes, each with a unique
    class attribute ``name`` (``[market] source`` in the configuration selects one by it),
    built with the host's :class:`~sandtrade.market.sources.MarketSettings` and implementing
    :class:`~sandtrade.market.hub.MarketSource`: ``instruments()`` and ``bars()``, the bars of
    every instrument merged in time order. The built-ins (``replay`` of CSV files and
    ``synthetic``) are registered ``trylast``; a plugin source with a built-in's name replaces
    it. A source for a real feed yields bars as they arrive. When ``bars()`` ends, the host
    does what ``market.then`` says (:mod:`sandtrade.market.continuation`): ``loop`` calls
    ``bars()`` again for a new iterator, ``synthetic`` continues each symbol from its last
    close, ``stop`` ends its prices; a source may offer ``parts()`` (a list of
    :class:`~sandtrade.market.continuation.SourcePart`) so that each part ends on its own.

    A source's own settings come from ``[sources.NAME]`` in ``settings.source_options``; a
    class attribute ``argument`` (e.g. ``"exchange"``) lets ``[market] source = "NAME:ARG"``
    (``sandtrade serve --source ccxt:binance``) set that option. A source of live prices from
    the outside world (the ccxt and Alpaca sources of ``plugins/marketdata``) sets ``live =
    True`` (a restarted host skips none of its bars), offers ``health()`` returning a
    :class:`~sandtrade.plugin_api.SourceHealth` (shown in ``/health`` as
    ``market.connection`` and by ``sandtrade doctor``: live, or reconnecting since when and
    why) and ``close()``, after which ``bars()`` ends promptly; it retries a lost link itself
    (:class:`~sandtrade.plugin_api.Connection` gives backoff with jitter and a cap) rather
    than letting ``bars()`` raise.

    :return: source classes (all implementations' lists are combined).
    """
    raise NotImplementedError  # a specification: plugins implement it


@hookspec
def sandtrade_option_chains() -> list[type[ChainSource]]:
    """Contribute option-chain sources: where a host's option chains and quotes come from.

    Called once when the host builds its option quotes. Return classes with a unique class
    attribute ``name`` (``[options] source`` selects one by it), built with the host's
    :class:`~sandtrade.options.settings.OptionsSettings`, implementing
    :class:`~sandtrade.options.sources.ChainSource`: ``chain(underlying, spot, now)`` (an
    :class:`~sandtrade.options.chain.OptionChain` or None) and ``row(symbol, spot, now)`` (one
    contract's :class:`~sandtrade.options.chain.ChainRow` or None when it is not priced);
    ``spot`` is the underlying's last price from the host's feed. A real feed (a vendor's
    snapshots) is such a plugin. The built-ins (``synthetic``: priced from the spot;
    ``recorded``: chain files replayed) are registered ``trylast``; a plugin source with a
    built-in's name replaces it.

    :return: chain source classes (all implementations' lists are combined).
    """
    raise NotImplementedError  # a specification: plugins implement it


# ---------------------------------------------------------------- strategies


@hookspec
def sandtrade_strategy_modules() -> list[StrategyModule]:
    """Contribute modules that strategy code may import (``import numpy as np``).

    Called once when the host (or a one-shot command: ``check``, ``backtest``, ``doctor``)
    builds its sandbox supervisor. Return
    :class:`~sandtrade.strategy.modules.StrategyModule` records: a ``name`` (what a
    strategy imports) and a ``factory`` (``package.module:function``, importable from the
    host's import path) that builds a *reviewed facade*: a module whose ``__all__`` lists
    exactly what strategies may use, each name a wrapper that checks what it is given and
    what it gives back. Never a bare library module: every public name of a library is
    reachable from it, and most libraries reach files, processes or raw memory (research
    notes, sandbox.md). The host never builds the facade itself; each sandbox worker imports
    and calls the factory before it confines itself and hands strategies a read-only proxy
    of it, so the factory must import everything it needs then. Types the facade hands out
    (arrays, say) must have their attribute and write guards registered in
    :data:`~sandtrade.strategy.policy.TYPE_ATTRIBUTE_GUARDS` and
    :data:`~sandtrade.strategy.policy.TYPE_WRITE_GUARDS` when the factory's module is
    imported. The built-ins (``numpy`` and ``talib``, :mod:`sandtrade.strategy.numeric`)
    are registered ``trylast``; a plugin module with a built-in's name replaces it.
    ``[sandbox] modules`` (and ``[accounts.NAME] modules``) in the configuration narrow
    what strategies may import; ``sandtrade doctor`` lists it.

    :return: strategy modules (all implementations' lists are combined).
    """
    raise NotImplementedError  # a specification: plugins implement it


# ---------------------------------------------------------------- signals


@hookspec
def sandtrade_signal_formats() -> list[type[SignalFormat]]:
    """Contribute signal formats: ways a signal body may be written.

    Called once when the host builds its signal pipeline (and by ``sandtrade signals
    check``). Return :class:`~sandtrade.signals.formats.SignalFormat` subclasses, each with a
    unique ``name``, a ``priority`` (lower is asked first when detecting) and ``detect`` and
    ``parse`` methods; ``parse`` raises :class:`~sandtrade.signal_model.SignalError` naming
    the field that is wrong. The built-ins (native, tradingview, traderspost, text) are
    registered ``trylast``; a plugin format with a built-in's name replaces it.

    :return: format classes (all implementations' lists are combined).
    """
    raise NotImplementedError  # a specification: plugins implement it


@hookspec
def sandtrade_live_brokers() -> list[type[LiveBrokerAdapter]]:
    """Contribute live brokers that routed signals may be sent to.

    Called once when ``sandtrade serve`` starts. Return
    :class:`~sandtrade.signals.destinations.LiveBrokerAdapter` subclasses with a unique ``name``;
    each is built with its ``[plugins.NAME]`` settings. Signals reach one only through a route ``to
    = "live:NAME"`` or ``mode = "live"``, and only with ``allow_live = true``.

    :return: adapter classes (all implementations' lists are combined).
    """
    raise NotImplementedError  # a specification: plugins implement it


# ---------------------------------------------------------------- HTTP


@hookspec
def sandtrade_http_routes(host: HostApi) -> list[Any]:
    """Contribute routes to the host's one HTTP server (FastAPI on uvicorn).

    Called once when the HTTP server starts. ``host`` is the plugin API
    (:class:`~sandtrade.plugin_api.HostApi`): the plugin's settings, token checks and signal
    submission. Return ``fastapi.APIRouter`` objects; their paths must not collide with
    another plugin's (``/health`` and ``/openapi.json`` are the host's).

    :param host: what the host offers plugins.
    :return: routers (all implementations' lists are combined).
    """
    raise NotImplementedError  # a specification: plugins implement it
