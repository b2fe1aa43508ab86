"""sandtrade: run strategy code you don't fully trust against a paper-trading broker.

The public face is small: the domain types in :mod:`sandtrade.models`, the back-test runners
in :mod:`sandtrade.backtest.runner`, the client in :mod:`sandtrade.client`, the plugin API
(:mod:`sandtrade.hookspecs`, :mod:`sandtrade.plugin_api`) and the ``sandtrade`` command line.

The package is laid out in wings and rooms whose imports go one way, down (checked by
``lint-imports``; ``docs/architecture.md`` is the map)::

    cli                                       the command line
    host : hookspecs : plugin_api             the trusted host; the plugin API
    client                                    the Python client library
    rpc | http                                transport: knows the rooms, no room knows it
    v1                                        generated gRPC stubs
    sandbox | signals                         sandbox host side + worker/ (untrusted); signals
    backtest
    broker | auth | market | strategy         domain rooms, independent of each other
    store                                     persistence behind one interface
    models : signal_model : errors : streams  the floor: types every room shares

``sandbox/worker/`` is the untrusted wing: what a worker loads before it confines itself. It
may not import the host, the plugin API, the store, transport, signals, auth, market or any
plugin.
"""

from sandtrade.errors import SandtradeError

__version__ = "0.1.0"

__all__ = ["SandtradeError", "__version__"]
