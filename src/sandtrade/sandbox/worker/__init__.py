"""The worker side of the sandbox: untrusted once confined. Started as
``python -I -m sandtrade.sandbox.worker``.

Wing rule: nothing here imports the host, the store, transport, signals, the sandbox's host
side or a plugin, directly or not (checked by ``lint-imports``; what a booted worker holds is
printed by ``sandtrade doctor --worker-modules``).
"""

from sandtrade.sandbox.worker.boot import main
from sandtrade.sandbox.worker.confine import confine

__all__ = ["confine", "main"]
