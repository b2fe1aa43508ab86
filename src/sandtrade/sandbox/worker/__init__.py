"""The worker side of the sandbox: untrusted once confined. Started as
``python -I -m sandtrade.sandbox.worker``.

Wing rule: nothing here imports the host, the store, transport, signals, the sandbox's host
side or a plugin, directly or not (checked by ``lint-imports``; what a booted worker holds is
printed by ``sandtrade doctor --worker-modules``).
"""

import os

# One BLAS/OpenMP thread, set before numpy loads its BLAS: more threads would each map an
# arena (counted by RLIMIT_AS), a zygote must be single-threaded when it forks, and the
# supervisor accounts a worker's CPU as one strategy's. ``python -I`` with an empty
# environment: nothing else sets these.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
              "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_name] = "1"
# No pydantic plugins in a worker: they are third-party code found through entry points, and
# looking for them read every installed distribution's metadata on each boot (15-25 ms of
# CPU). Set in-process, as the above: the worker is still started with an empty environment.
os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"

from sandtrade.sandbox.worker.boot import main  # noqa: E402
from sandtrade.sandbox.worker.confine import confine  # noqa: E402

__all__ = ["confine", "main"]
