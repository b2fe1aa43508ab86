"""Which modules strategies may import: the standard ones, and reviewed proxies of libraries.

The policy (:mod:`sandtrade.strategy.policy`) ships proxies of standard modules (``math``,
``statistics``, ``json``, ...). A library joins them only as a *reviewed proxy* from a trusted
host plugin, never as a bare module name: the hook ``sandtrade_strategy_modules`` returns
:class:`StrategyModule` records, each naming a factory (``package.module:function``) that
builds a facade module whose ``__all__`` is exactly what strategies may use. The host sends
the references to its workers; each worker imports and builds them before it confines itself
(:func:`build`), and the policy hands strategies a read-only proxy of the facade. numpy and
TA-Lib come this way, from the built-in plugin (:data:`BUILTIN_STRATEGY_MODULES`).

``[sandbox] modules = [...]`` (and ``[accounts.NAME] modules``) narrow what strategies may
import; :func:`narrowed` is that rule.
"""

from __future__ import annotations

import ast
import importlib
import re
import types
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["BUILTIN_STRATEGY_MODULES", "STANDARD_MODULES", "StrategyModule", "build",
           "imported_modules", "may_price_options", "narrowed"]


@dataclass(frozen=True)
class StrategyModule:
    """A module strategies may import, contributed by a trusted plugin.

    ``name`` is what a strategy writes after ``import``; ``factory`` names a function
    (``package.module:function``, importable from the host's import path) that takes no
    argument and returns the reviewed facade: a module whose ``__all__`` lists every name a
    strategy may use, none of them a module object. ``description`` is for people
    (``sandtrade doctor``).
    """

    name: str
    factory: str
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name.startswith("_"):
            raise ValueError(f"strategy module name {self.name!r} must be a plain identifier")
        module, _, function = self.factory.partition(":")
        if not module or not function:
            raise ValueError(f"strategy module {self.name}: factory {self.factory!r} must be "
                             "'package.module:function'")


#: The standard-library modules the policy exposes (reviewed in research/sandbox.md).
STANDARD_MODULES = ("bisect", "collections", "datetime", "decimal", "heapq", "itertools",
                    "json", "math", "re", "statistics")

#: numpy and TA-Lib, reviewed in :mod:`sandtrade.strategy.numeric`.
BUILTIN_STRATEGY_MODULES = (
    StrategyModule("numpy", "sandtrade.strategy.numeric:numpy_module",
                   "numpy: array creation from numbers, arithmetic, reductions, sorting, "
                   "linalg basics; no files, no raw memory, numeric dtypes only"),
    StrategyModule("talib", "sandtrade.strategy.numeric:talib_module",
                   "TA-Lib's function API on float64 arrays"),
)


def build(factory: str) -> types.ModuleType:
    """Import and call ``factory`` (``package.module:function``): the facade module it
    returns, checked (an ``__all__`` of names, none of them a module)."""
    module_name, _, function = factory.partition(":")
    found: object = importlib.import_module(module_name)
    for part in function.split("."):
        found = getattr(found, part)
    if not callable(found):
        raise TypeError(f"{factory} is not callable")
    facade = found()
    if not isinstance(facade, types.ModuleType):
        raise TypeError(f"{factory}() returned a {type(facade).__name__}, not a module")
    names = getattr(facade, "__all__", None)
    if not isinstance(names, (list, tuple)) or not all(type(n) is str for n in names):
        raise TypeError(f"{factory}(): the module must list its names in __all__")
    for n in names:
        if n.startswith("_") or isinstance(getattr(facade, n), types.ModuleType):
            raise TypeError(f"{factory}(): {n!r} cannot be exposed (an underscore name or a "
                            "module)")
    return facade


def narrowed(available: Iterable[str], *allowed: Iterable[str] | None) -> list[str]:
    """The names of ``available`` that every ``allowed`` list (None: no narrowing) keeps."""
    out = list(available)
    for keep in allowed:
        if keep is not None:
            wanted = set(keep)
            out = [n for n in out if n in wanted]
    return sorted(out)


#: Modules a strategy needs without importing them: ``ctx.history(..., as_array=True)``
#: hands out numpy arrays.
_IMPLIED = {"as_array": "numpy"}


def imported_modules(source: str) -> set[str] | None:
    """The top-level modules ``source`` imports (and numpy where it asks ``ctx.history`` for
    arrays), or None when it does not parse. Exact for strategies: ``import`` statements are
    their only way to a module (``__import__`` is an underscore name), so a worker that knows
    its task before it boots builds only these (importing numpy costs a cold worker ~0.15 s)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module.partition(".")[0])
    out.update(module for word, module in _IMPLIED.items() if word in source)
    return out


#: An OCC option symbol's date, right and strike (``AAPL250117C00150000``): a strategy that
#: trades an option by its symbol prices it.
_OPTION_SYMBOL = re.compile(r"\d{6}\s*[CPcp]\d{8}")


def may_price_options(source: str, symbols: Iterable[object] = ()) -> bool:
    """Whether a strategy may need option prices (QuantLib, which a worker must load before it
    confines itself): its source names ``options`` (``ctx.options``, the attribute's name in
    ``getattr``) or holds an option symbol, or it runs on an option's bars. A worker whose task
    is known before it boots loads QuantLib only then (70-90 ms of CPU); one that went
    without it and is asked for an option price anyway says why (``options.pricing``)."""
    return ("options" in source or _OPTION_SYMBOL.search(source) is not None
            or any(isinstance(s, str) and _OPTION_SYMBOL.search(s) for s in symbols))
