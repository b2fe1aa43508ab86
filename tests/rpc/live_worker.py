"""A fake live worker, plugged in with ``Supervisor.worker_command`` by ``test_live_loop.py``.

Run as ``python -I live_worker.py``. It speaks the live protocol as a worker would after an
escape from the language layer (nothing in it is confined), answering every event with a
``done`` that logs the event's type, and it makes its stdin pipe one page long before it says
``ready``, so that the host must write a warm-up of a few hundred bars in parts. What it does
besides is named in the strategy's source:

``# deaf``
    it never reads its stdin again after the task (the host's writes to it cannot finish);
``# durable: DB MARKER``
    on each ``bars`` event it reads, from the host's SQLite file ``DB``, the ``ctx.state``
    holding ``MARKER`` and logs ``durable STORED of SENT``: the ``n`` stored then, and the
    ``n`` it sent with its previous ``done`` (they must be equal: the host commits a state
    before it sends the next event); then it sends ``n + 1``.
``# posted flood``
    on each ``bars`` event it posts 5,000 malformed orders (what a loop of ``ctx.buy`` would).
``# posted cancel``
    on each ``bars`` event it posts a ``cancel`` (only ``submit`` and ``close`` may be posted).
``# odd calls``
    on each ``bars`` event it makes calls no real worker makes (an ``op`` that is a list, an
    object, a number, an unknown name; a known one with ``args`` that are a list) and logs
    each reply as ``reply OP ERROR``.
"""

from __future__ import annotations

import fcntl
import json
import re
import sqlite3
import sys
import time

from sandtrade.sandbox.wire import read_frame, write_frame

F_SETPIPE_SZ = 1031


def main() -> int:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    header, _ = read_frame(stdin)
    assert header["type"] == "boot", header
    fcntl.fcntl(0, F_SETPIPE_SZ, 4096)
    write_frame(stdout, {"type": "ready", "layers": {}})
    task, _ = read_frame(stdin)
    source = str(task["source"])
    if "# deaf" in source:
        while True:  # the host must end this process
            time.sleep(60)
    durable = re.search(r"# durable: (\S+) (\S+)", source)
    db = None
    marker = ""
    if durable is not None:
        db = sqlite3.connect(f"file:{durable[1]}?mode=ro", uri=True)
        marker = durable[2]
    n = int((task.get("state") or {}).get("n", 0))
    while True:
        try:
            header, _ = read_frame(stdin)
        except EOFError:
            return 0
        kind = header["type"]
        logs = [f"{kind} {header.get('count', 0)}"]
        done: dict[str, object] = {"type": "done", "logs": logs}
        if "# odd calls" in source and kind == "bars":
            for op, args in (([1], {}), ({"a": 1}, {}), (5, {}), ("fly", {}),
                             ("submit", [1]), ("position", {"symbol": ["AAA"]})):
                write_frame(stdout, {"type": "call", "op": op, "args": args})
                reply, _ = read_frame(stdin)
                logs.append(f"reply {json.dumps(op)} {reply.get('error')}")
        if "# posted flood" in source and kind == "bars":
            for k in range(5000):  # the default quota is 1,000 calls an event
                write_frame(stdout, {"type": "call", "op": "submit", "args": {}, "post": 1,
                                     "at": k})
        if "# posted cancel" in source and kind == "bars":
            write_frame(stdout, {"type": "call", "op": "cancel", "args": {"order_id": "x"},
                                 "post": 1, "at": 0})
        if db is not None and kind == "bars":
            row = db.execute("SELECT value FROM host_state WHERE value LIKE ?",
                             (f"%{marker}%",)).fetchone()
            stored = json.loads(row[0])["n"] if row else 0
            logs.append(f"durable {stored} of {n}")
            n += 1
            done["state_json"] = json.dumps({"marker": marker, "n": n}, sort_keys=True,
                                            separators=(",", ":"))
        write_frame(stdout, done)
        if kind == "stop":
            return 0


if __name__ == "__main__":
    sys.exit(main())
