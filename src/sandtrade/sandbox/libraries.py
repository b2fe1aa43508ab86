"""The operator's library whitelist and the workers' interpreter: ``[sandbox]`` settings.

``[sandbox] modules = [...]`` narrows what strategies may import on this host (the standard
modules the policy proxies, and the reviewed modules plugins contribute through
``sandtrade_strategy_modules``: numpy and talib built in); ``[accounts.NAME] modules``
narrows it further for one account's strategies. ``[sandbox] python`` is the interpreter the
workers run: checked when the host (or a one-shot command) starts, with a clear error when it
is missing, too old, or lacks what the worker imports (:func:`check_python`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field

from sandtrade.errors import SandtradeError
from sandtrade.strategy.modules import STANDARD_MODULES, StrategyModule

__all__ = ["SandboxSettings", "SandboxSetupError", "check_modules", "check_python"]


class SandboxSetupError(SandtradeError):
    """A ``[sandbox]`` setting the host cannot use; names the key and what is wrong."""


class SandboxSettings(BaseModel):
    """``[sandbox]``: what strategies may import and which interpreter runs them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    modules: list[str] | None = Field(
        None, description="the modules strategies may import, narrowed from everything "
        "available (the standard ones, and numpy, talib and those trusted plugins add); "
        "unset: all of them. `sandtrade doctor` lists them.")
    python: str | None = Field(
        None, description="the Python interpreter sandbox workers run (a path); unset: the "
        "host's own. Checked at start: it must be 3.11 or newer and import sandtrade and "
        "the strategy modules from the host's import path.")


def check_modules(wanted: Iterable[str] | None, plugin_modules: Mapping[str, StrategyModule],
                  *, key: str = "[sandbox] modules") -> list[str] | None:
    """``wanted`` (None: no narrowing), each name one strategies could import; else an error
    naming the key, the name and what is available."""
    if wanted is None:
        return None
    available = sorted({*STANDARD_MODULES, *plugin_modules})
    out = []
    for k, name in enumerate(wanted):
        if name not in available:
            raise SandboxSetupError(f"{key}[{k}]: {name!r} is not a module strategies can "
                                    f"import (available: {', '.join(available)}; a library "
                                    "is added by a trusted plugin's reviewed proxy, "
                                    "sandtrade_strategy_modules)")
        out.append(name)
    return out


#: What a worker's interpreter must import: the worker, and each strategy module's factory.
_PROBE = """
import importlib, json, sys
sys.path[:] = json.loads(sys.argv[1])
if sys.version_info < (3, 11):
    raise SystemExit("Python %d.%d is too old (3.11 or newer)" % sys.version_info[:2])
for name in json.loads(sys.argv[2]):
    try:
        importlib.import_module(name)
    except BaseException as e:
        raise SystemExit("cannot import %s: %s: %s" % (name, type(e).__name__, e))
print(json.dumps({"version": "%d.%d.%d" % sys.version_info[:3]}))
"""


def check_python(python: str, factories: Iterable[str] = (), *,
                 key: str = "[sandbox] python") -> str:
    """Check that ``python`` can run a worker: it exists, runs, is 3.11 or newer and imports
    sandtrade's worker and each of ``factories``' modules (``module:function``) from this
    process's import path, as a worker would. Returns its version; raises
    :class:`SandboxSetupError` naming the key and what is wrong."""
    if not os.path.isabs(python):
        raise SandboxSetupError(f"{key} = {python!r}: give the interpreter's absolute path")
    if not os.path.exists(python):
        raise SandboxSetupError(f"{key} = {python!r}: no such file")
    if not os.access(python, os.X_OK):
        raise SandboxSetupError(f"{key} = {python!r}: not executable")
    needed = ["sandtrade.sandbox.worker", *sorted({f.partition(":")[0] for f in factories})]
    try:
        proc = subprocess.run([python, "-I", "-c", _PROBE, json.dumps(sys.path),
                               json.dumps(needed)], capture_output=True, env={}, timeout=60,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SandboxSetupError(f"{key} = {python!r}: cannot run it: {e}") from None
    if proc.returncode != 0:
        why = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SandboxSetupError(f"{key} = {python!r}: cannot run sandbox workers: "
                                f"{why[-1] if why else f'exit status {proc.returncode}'}")
    try:
        return str(json.loads(proc.stdout)["version"])
    except (ValueError, KeyError, TypeError):
        raise SandboxSetupError(f"{key} = {python!r}: did not answer as Python does") from None
