"""The process layer: what the worker's own confinement (``confine()``: rlimits, uid drop,
network namespace, no_new_privs, seccomp, ...) stops when the language layer is assumed gone.

The language layer keeps strategies away from ``os``; these tests act as a payload that got
past it would: a real worker started by the supervisor, and ``confine()`` applied to a
throw-away process that then tries what an escaped strategy would try."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from sandtrade.sandbox.supervisor import NOBODY, WORKER_UID_BASE, Supervisor, worker_uid

from .conftest import LIMITS, Sandbox

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the process layer is tested as root "
                                "(the uid drop and RLIMIT_NPROC need it)")

# ---------------------------------------------------------------- a real worker


def test_worker_reports_uid_drop_and_nproc_as_root(sandbox: Sandbox) -> None:
    """As root, RLIMIT_NPROC is ignored; the worker must drop to an unprivileged uid of its
    own first and report both layers on (with the others the research found working on this
    kind of machine)."""
    path = sandbox.write("x = 1\n")
    worker = Supervisor(LIMITS).start({"task": "check", "path": str(path),
                                       "source": path.read_text()}, name=str(path))
    try:
        layers = worker.layers
        header, _ = worker.recv(timeout=10)
    finally:
        worker.close()
    assert header["type"] == "checked"
    for layer in ("uid_drop", "rlimit_nproc", "network_namespace", "no_new_privs",
                  "pdeathsig", "no_core_dumps", "rlimit_cpu", "rlimit_as", "rlimit_nofile",
                  "rlimit_fsize", "rlimit_core", "sched_batch"):
        assert layers[layer].startswith("on"), (layer, layers[layer])
    uid = worker_uid(worker.pid)
    assert uid == WORKER_UID_BASE + worker.pid  # this machine maps the whole uid range
    assert layers["uid_drop"] == f"on (uid {uid}, its own)"
    sandbox.assert_host_unharmed(layers)


def test_worker_has_no_host_identity_environment_or_files(sandbox: Sandbox) -> None:
    """Looked at from outside while it runs: a uid/gid of its own, no supplementary groups, an
    empty environment (the host's secret variable absent), only stdin/stdout/stderr and the
    heartbeat page open (the host's open canary file not inherited), its own session, a
    private 0700 directory."""
    path = sandbox.write("""
        import datetime

        until = datetime.datetime.now() + datetime.timedelta(seconds=0.5)
        while datetime.datetime.now() < until:
            pass
    """)
    with sandbox.canary.open() as held_open:  # an fd the worker must not inherit
        worker = Supervisor(LIMITS).start({"task": "check", "path": str(path),
                                           "source": path.read_text()}, name=str(path))
        try:
            proc = psutil.Process(worker.pid)
            uids, gids = proc.uids(), proc.gids()
            env = proc.environ()
            fds = {int(fd): os.readlink(f"/proc/{worker.pid}/fd/{fd}")
                   for fd in os.listdir(f"/proc/{worker.pid}/fd")}
            sid, pgid = os.getsid(worker.pid), os.getpgid(worker.pid)
            groups = Path(f"/proc/{worker.pid}/status").read_text().split("Groups:")[1]
            workdir = Path(worker.workdir).stat()
            worker.recv(timeout=10)
        finally:
            worker.close()
        assert held_open.fileno() > 2
    own = worker_uid(worker.pid)
    assert own != NOBODY and set(uids) == {own} and set(gids) == {own}
    assert groups.split("\n")[0].strip() == ""
    assert set(env) <= {"LC_CTYPE"}, env
    assert sorted(fds)[:3] == [0, 1, 2] and all(fds[k].startswith("pipe:") for k in (0, 1, 2))
    assert all(fds[k].startswith("/memfd:sandtrade-heartbeat") for k in sorted(fds)[3:]), fds
    assert sid == pgid == worker.pid != os.getsid(0)
    assert (workdir.st_uid, workdir.st_mode & 0o777) == (own, 0o700)
    assert not Path(worker.workdir).exists()
    sandbox.assert_host_unharmed(env)


def test_worker_dies_with_its_supervisor(sandbox: Sandbox) -> None:
    """A worker must not outlive the host that started it (``PR_SET_PDEATHSIG``): a throw-away
    host starts a worker stuck in a loop, then is killed with SIGKILL."""
    path = sandbox.write("""
        while True:
            pass
    """)
    host = textwrap.dedent(f"""
        import sys
        from sandtrade.sandbox.limits import WorkerLimits
        from sandtrade.sandbox.supervisor import Supervisor
        limits = WorkerLimits(cpu_seconds=60, wall_seconds=60, event_seconds=60)
        w = Supervisor(limits).start({{"task": "check", "path": "loop.py",
                                       "source": {path.read_text()!r}}}, name="loop.py")
        print(w.pid, flush=True)
        w.recv()
    """)
    proc = subprocess.Popen([sys.executable, "-c", host], stdout=subprocess.PIPE, text=True)
    workdir = ""
    try:
        assert proc.stdout is not None
        worker_pid = int(proc.stdout.readline())
        workdir = psutil.Process(worker_pid).cwd()  # its killed host cannot remove it
        assert psutil.Process(worker_pid).status() != psutil.STATUS_ZOMBIE
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while psutil.pid_exists(worker_pid) and time.monotonic() < deadline:
            with contextlib.suppress(psutil.Error):
                if psutil.Process(worker_pid).status() == psutil.STATUS_ZOMBIE:
                    break
            time.sleep(0.05)
        alive = psutil.pid_exists(worker_pid) and \
            psutil.Process(worker_pid).status() != psutil.STATUS_ZOMBIE
        assert not alive, "the worker outlived its supervisor"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if workdir.startswith(tempfile.gettempdir() + "/sandtrade-worker-"):
            shutil.rmtree(workdir, ignore_errors=True)
    sandbox.assert_host_unharmed()


def test_worker_cannot_crash_the_supervisor_through_the_heartbeat_page(sandbox: Sandbox
                                                                       ) -> None:
    """A payload in the worker owns the shared heartbeat page's fd: shrinking it made the
    supervisor's next read die of SIGBUS. Played from a throw-away host (as root, through
    ``/proc/<worker>/fd``, which is what the worker's own fd allows)."""
    host = textwrap.dedent("""
        import os, time
        from sandtrade.sandbox.limits import WorkerLimits
        from sandtrade.sandbox.supervisor import Supervisor
        w = Supervisor(WorkerLimits(event_seconds=60)).start(
            {"task": "check", "path": "loop.py", "source": "while True:\\n    pass\\n"},
            name="loop.py")
        fds = [f"/proc/{w.pid}/fd/{fd}" for fd in os.listdir(f"/proc/{w.pid}/fd")]
        page = [fd for fd in fds if "sandtrade-heartbeat" in os.readlink(fd)][0]
        h = os.open(page, os.O_RDWR)
        for size in (0, 1 << 20):
            try:
                os.ftruncate(h, size)
                print("resized", size, flush=True)
            except OSError as e:
                print("refused", e.errno, flush=True)
        time.sleep(0.5)
        print("supervisor alive", w.beats(), flush=True)
        w.close()
    """)
    proc = subprocess.run([sys.executable, "-c", host], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout.splitlines() == [f"refused {errno.EPERM}", f"refused {errno.EPERM}",
                                        "supervisor alive 0"]
    sandbox.assert_host_unharmed(proc.stdout, proc.stderr)


def test_system_exit_from_a_hook_is_an_error_not_a_clean_exit(sandbox: Sandbox) -> None:
    """``raise SystemExit(0)`` (in ``safe_builtins``) would end the worker with status 0 and
    no result; it must be reported as the strategy's error."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            raise SystemExit(0)
    """, "SystemExit", line=2)
    sandbox.assert_host_unharmed(err)


def test_keyboard_interrupt_from_a_hook_is_an_error(sandbox: Sandbox) -> None:
    """``KeyboardInterrupt`` skips ``except Exception`` in the engine; the worker reports it."""
    err = sandbox.fails("""
        def on_start(ctx):
            raise KeyboardInterrupt("stop the host")
    """, "KeyboardInterrupt", line=2)
    sandbox.assert_host_unharmed(err)


# ---------------------------------------------------------------- confine() in a throw-away process

_CONFINED = '''
import errno, json, os, resource, socket, sys, threading
from sandtrade.sandbox.limits import WorkerLimits
from sandtrade.sandbox.worker import confine

root_only, writable_dir, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = {"netns_before": os.readlink("/proc/self/ns/net")}
out["report"] = confine(WorkerLimits())
out["uids"] = os.getresuid()


def attempt(name, fn):
    try:
        out[name] = {"ok": True, "value": repr(fn())[:300]}
    except BaseException as e:
        out[name] = {"ok": False, "error": type(e).__name__, "errno": getattr(e, "errno", None),
                     "text": str(e)[:300]}


def fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    return os.waitpid(pid, 0)


def connect():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(("127.0.0.1", port))
    return s.getsockname()


def write_file():
    with open(os.path.join(writable_dir, "written.txt"), "wb", buffering=0) as f:
        return f.write(b"x" * 10)


attempt("fork", fork)
attempt("root_only_file", lambda: open(root_only).read())
attempt("shadow", lambda: open("/etc/shadow").read())
attempt("passwd", lambda: open("/etc/passwd").read(10))
attempt("inet_connect", connect)
attempt("write_file", write_file)
attempt("setuid_root", lambda: os.setuid(0))
attempt("thread", lambda: threading.Thread(target=lambda: None).start())
attempt("raise_as", lambda: resource.setrlimit(resource.RLIMIT_AS, (2 ** 40, 2 ** 40)))
attempt("raise_fsize", lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (2 ** 30, 2 ** 30)))
attempt("net_devices", lambda: sorted(line.split(":")[0].strip()
                                     for line in open("/proc/net/dev").read().splitlines()[2:]))
attempt("netns_after", lambda: os.readlink("/proc/self/ns/net"))
attempt("exec", lambda: os.execv("/bin/true", ["true"]))
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def confined() -> Iterator[dict[str, Any]]:
    """Run ``confine(WorkerLimits())`` in a throw-away process (as root) and let it try every
    escape; the attempts' outcomes, plus ``listener``/``written`` seen from the host."""
    top = Path(tempfile.mkdtemp(prefix="sandtrade-confine-"))
    try:
        top.chmod(0o755)
        secret_dir = top / "readable-dir"
        secret_dir.mkdir(mode=0o755)
        root_only = secret_dir / "root-only.txt"
        root_only.write_text("root only")
        root_only.chmod(0o600)
        writable = top / "world-writable"
        writable.mkdir()
        writable.chmod(0o777)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.setblocking(False)
            proc = subprocess.run(
                [sys.executable, "-c", _CONFINED, str(root_only), str(writable),
                 str(listener.getsockname()[1])],
                capture_output=True, text=True, timeout=60, check=False)
            assert proc.returncode == 0, proc.stderr
            out: dict[str, Any] = json.loads(proc.stdout)
            try:
                listener.accept()
                out["listener"] = "accepted a connection"
            except BlockingIOError:
                out["listener"] = "no connection"
        written = writable / "written.txt"
        out["written"] = written.read_bytes() if written.exists() else None
        yield out
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _refused(outcome: dict[str, Any], *errnos: int) -> None:
    assert not outcome["ok"], outcome
    if errnos:
        assert outcome["errno"] in errnos, outcome


def test_confined_process_runs_as_nobody(confined: dict[str, Any], sandbox: Sandbox) -> None:
    """``confine()`` as root ends as ``nobody`` (real, effective and saved uid)."""
    assert confined["uids"] == [NOBODY, NOBODY, NOBODY]
    assert confined["report"]["uid_drop"].startswith("on")
    assert confined["report"]["rlimit_nproc"].startswith("on")
    sandbox.assert_host_unharmed(confined)


def test_confined_process_cannot_fork(confined: dict[str, Any], sandbox: Sandbox) -> None:
    """``os.fork()`` (RLIMIT_NPROC 0 after the uid drop; seccomp too where installed)."""
    _refused(confined["fork"], errno.EAGAIN, errno.EPERM)
    sandbox.assert_host_unharmed(confined)


def test_confined_process_cannot_start_threads(confined: dict[str, Any],
                                               sandbox: Sandbox) -> None:
    """A thread is a task too: RLIMIT_NPROC 0 stops it (``can't start new thread``)."""
    _refused(confined["thread"])
    assert confined["thread"]["error"] == "RuntimeError"
    sandbox.assert_host_unharmed(confined)


def test_confined_process_cannot_exec(confined: dict[str, Any], sandbox: Sandbox) -> None:
    """``os.execv("/bin/true")``: a new program would start without the interpreter's state."""
    _refused(confined["exec"], errno.EPERM, errno.EACCES, errno.EAGAIN)
    sandbox.assert_host_unharmed(confined)


def test_confined_process_cannot_read_a_root_only_file(confined: dict[str, Any],
                                                       sandbox: Sandbox) -> None:
    """A 0600 root file in a world-readable directory: only the uid drop protects it."""
    _refused(confined["root_only_file"], errno.EACCES)
    sandbox.assert_host_unharmed(confined)


def test_confined_process_cannot_read_shadow(confined: dict[str, Any], sandbox: Sandbox) -> None:
    """``/etc/shadow`` (root:shadow 0640) after the uid drop and ``setgroups([])``."""
    _refused(confined["shadow"], errno.EACCES)
    sandbox.assert_host_unharmed(confined)


def test_confined_process_cannot_read_etc_passwd(confined: dict[str, Any],
                                                 sandbox: Sandbox) -> None:
    """``/etc/passwd`` is world-readable: only a filesystem layer (Landlock) can refuse it."""
    if not confined["report"].get("landlock", "").startswith("on"):
        pytest.xfail("no Landlock layer yet: world-readable files stay readable to a payload "
                     f"that escapes the language layer ({confined['report'].get('landlock')})")
    _refused(confined["passwd"], errno.EACCES)
    sandbox.assert_host_unharmed(confined)


def test_confined_process_cannot_connect_to_the_host(confined: dict[str, Any],
                                                     sandbox: Sandbox) -> None:
    """``socket(AF_INET).connect(("127.0.0.1", port))`` to a port the host listens on."""
    _refused(confined["inet_connect"], errno.ENETUNREACH, errno.EPERM, errno.EACCES,
             errno.ECONNREFUSED)
    assert confined["listener"] == "no connection"
    sandbox.assert_host_unharmed(confined)


def test_confined_process_has_its_own_network_namespace(confined: dict[str, Any],
                                                        sandbox: Sandbox) -> None:
    """The network namespace itself (independent of seccomp): a new one, with loopback only."""
    assert confined["report"]["network_namespace"].startswith("on")
    if confined["netns_after"]["ok"]:
        assert confined["netns_after"]["value"] != repr(confined["netns_before"])
    if confined["report"]["landlock"].startswith("on"):
        # Landlock hides /proc/net/dev too: the device list cannot be read from inside.
        _refused(confined["net_devices"], errno.EACCES)
    else:
        assert confined["net_devices"] == {"ok": True, "value": "['lo']"}, \
            confined["net_devices"]
    sandbox.assert_host_unharmed(confined)


def test_confined_process_cannot_write_files(confined: dict[str, Any], sandbox: Sandbox) -> None:
    """Writing into a world-writable directory: Landlock refuses the open (``EACCES``); without
    it, RLIMIT_FSIZE 0 makes any byte ``EFBIG``."""
    landlock = confined["report"]["landlock"].startswith("on")
    _refused(confined["write_file"], errno.EACCES if landlock else errno.EFBIG)
    assert confined["written"] in (None, b"")
    sandbox.assert_host_unharmed(confined)


def test_confined_process_cannot_become_root_again(confined: dict[str, Any],
                                                   sandbox: Sandbox) -> None:
    """``os.setuid(0)`` after the drop."""
    _refused(confined["setuid_root"], errno.EPERM)
    sandbox.assert_host_unharmed(confined)


def test_confined_process_cannot_raise_its_limits(confined: dict[str, Any],
                                                  sandbox: Sandbox) -> None:
    """Raising RLIMIT_AS / RLIMIT_FSIZE past the hard limits set by ``confine()``."""
    for name in ("raise_as", "raise_fsize"):
        _refused(confined[name])
        assert confined[name]["error"] == "ValueError", confined[name]
    sandbox.assert_host_unharmed(confined)
