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

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from sandtrade.broker.fills import FillProfile

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
