"""A zygote whose children act as a payload that got past the language layer would: started in
place of the real zygote (``Zygote.command``) by ``test_zygote.py`` as ``python -I
zygote_payload.py FD``. It is the real zygote (:mod:`sandtrade.sandbox.worker.zygote`), and
each child confines itself with the real :func:`~sandtrade.sandbox.worker.boot.serve`; only
the task, once confined, is replaced by attempts on the processes the task names."""

import ctypes
import errno
import os
import runpy
from typing import Any

from sandtrade.sandbox.wire import read_frame, write_frame
from sandtrade.sandbox.worker import boot

PTRACE_ATTACH = 16


def attempts(task: dict[str, Any], limits: Any, stdin: Any, stdout: Any, *_: Any) -> None:
    if task.get("wait"):  # a sibling, waiting to be attacked
        read_frame(stdin)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    out: dict[str, Any] = {"uid": os.getuid()}
    for name, (pid, sig) in task["targets"].items():
        try:
            os.kill(pid, sig)
            out[f"kill {name}"] = "sent"
        except OSError as e:
            out[f"kill {name}"] = errno.errorcode.get(e.errno or 0, str(e.errno))
        if libc.ptrace(PTRACE_ATTACH, pid, None, None) == 0:
            out[f"ptrace {name}"] = "attached"
        else:
            out[f"ptrace {name}"] = errno.errorcode.get(ctypes.get_errno(), "?")
    write_frame(stdout, {"type": "checked", "hooks": [], "params": out})


boot.run_task = attempts  # type: ignore[assignment]
runpy.run_module("sandtrade.sandbox.worker.zygote", run_name="__main__")
