"""The trusted host: one process that owns the state, wires the rooms and serves them.

Wing rule: the host may import transport (:mod:`sandtrade.rpc`, :mod:`sandtrade.http`), the
sandbox's host side and every domain room; nothing below imports the host (checked by
``lint-imports``). Plugins never import it: they get :mod:`sandtrade.hookspecs` and
:mod:`sandtrade.plugin_api`. This ``__init__`` imports nothing, so that importing one module
of the wing (``host.config`` for ``sandtrade backtest``) does not load the runtime.
"""
