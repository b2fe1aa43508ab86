"""The zygote: workers forked from a warm, unconfined template must be exactly as confined as
workers the host boots, must not reach the zygote or each other, and must not outlive the host.

Each test uses a real zygote (``Supervisor(zygote=True)``) and real children; the attempts on
the zygote and a sibling run inside a child after the real confinement
(``zygote_payload.py``)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from sandtrade.sandbox.supervisor import (
    NOBODY,
    WORKER_UID_BASE,
    SandboxKilled,
    Supervisor,
    Worker,
    worker_uid,
)
from sandtrade.sandbox.zygote import Zygote, ZygoteChild

from .conftest import LIMITS, Sandbox
from .test_worker_modules import EXPECTED_WITH_NUMPY, forbidden

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the process layer is tested as root "
                                "(the uid drop and RLIMIT_NPROC need it)")

PAYLOAD = Path(__file__).with_name("zygote_payload.py")
#: The layers every worker must have on on this kind of machine (test_process_layer's list).
LAYERS = ("uid_drop", "rlimit_nproc", "network_namespace", "no_new_privs", "pdeathsig",
          "no_core_dumps", "rlimit_cpu", "rlimit_as", "rlimit_nofile", "rlimit_fsize",
          "rlimit_core", "sched_batch", "landlock", "seccomp")


def eventually(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Wait until ``check()`` holds (polling; a loaded machine may be slow)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.05)


def gone(pid: int) -> bool:
    """The process ``pid`` has ended (no such process, or a zombie)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def supervisor() -> Iterator[Supervisor]:
    """A supervisor that forks its workers from a zygote."""
    sup = Supervisor(LIMITS, zygote=True)
    yield sup
    sup.close()


def start_check(sup: Supervisor, source: str, name: str = "z.py") -> Worker:
    return sup.start({"task": "check", "path": name, "source": source}, name=name)


def test_a_zygote_child_is_confined_like_a_booted_worker(supervisor: Supervisor,
                                                         sandbox: Sandbox) -> None:
    """Every layer on, a uid of its own, a network namespace of its own, no host environment,
    only its pipes and heartbeat open (not the zygote's socket or a sibling's pidfd), its own
    session, its private 0700 directory; and the zygote is its parent, not the host."""
    sibling = start_check(supervisor, "x = 1\n")  # the zygote holds this one's pidfd
    path = sandbox.write("""
        import datetime

        until = datetime.datetime.now() + datetime.timedelta(seconds=0.5)
        while datetime.datetime.now() < until:
            pass
    """)
    worker = supervisor.start({"task": "check", "path": str(path), "source": path.read_text()},
                              name=str(path))
    try:
        assert isinstance(worker.proc, ZygoteChild)
        zygote = supervisor.zygote
        assert zygote is not None and zygote.pid is not None
        proc = psutil.Process(worker.pid)
        parent = proc.ppid()
        uids, gids = proc.uids(), proc.gids()
        env = proc.environ()
        fds = {int(fd): os.readlink(f"/proc/{worker.pid}/fd/{fd}")
               for fd in os.listdir(f"/proc/{worker.pid}/fd")}
        netns = os.readlink(f"/proc/{worker.pid}/ns/net")
        sid, pgid = os.getsid(worker.pid), os.getpgid(worker.pid)
        workdir = Path(worker.workdir).stat()
        header, _ = worker.recv(timeout=15)
    finally:
        worker.close()
        sibling.close()
    assert header["type"] == "checked"
    for layer in LAYERS:
        assert worker.layers[layer].startswith("on"), (layer, worker.layers[layer])
    own = worker_uid(worker.pid)
    assert own == WORKER_UID_BASE + worker.pid != NOBODY
    assert worker.layers["uid_drop"] == f"on (uid {own}, its own)"
    assert set(uids) == {own} and set(gids) == {own}
    assert parent == zygote.pid != os.getpid()
    assert netns != os.readlink("/proc/self/ns/net")
    assert set(env) <= {"LC_CTYPE"}, env
    assert len(fds) == 4 and sorted(fds)[:3] == [0, 1, 2], fds  # 3 is mmap's own copy
    assert all(fds[k].startswith("pipe:") for k in (0, 1, 2))
    assert fds[max(fds)].startswith("/memfd:sandtrade-heartbeat"), fds
    assert sid == pgid == worker.pid != os.getsid(0)
    assert (workdir.st_uid, workdir.st_mode & 0o777) == (own, 0o700)
    assert not Path(worker.workdir).exists()
    assert worker.proc.returncode is not None  # reported by the zygote
    sandbox.assert_host_unharmed(env, header)


def test_a_zygote_child_cannot_signal_or_trace_the_zygote_a_sibling_or_the_host(
        monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox) -> None:
    """A payload in a confined child sends SIGKILL to the zygote and to a sibling, signal 0 to
    the host, and tries PTRACE_ATTACH on each: all refused, all still alive."""
    monkeypatch.setattr(Zygote, "command", (sys.executable, "-I", str(PAYLOAD)))
    sup = Supervisor(LIMITS, zygote=True)
    try:
        sibling = sup.start({"task": "check", "path": "s.py", "source": "", "wait": True},
                            name="sibling")
        zygote = sup.zygote
        assert zygote is not None and zygote.pid is not None
        attacker = sup.start({"task": "check", "path": "a.py", "source": "", "targets": {
            "zygote": [zygote.pid, signal.SIGKILL], "sibling": [sibling.pid, signal.SIGKILL],
            "host": [os.getpid(), 0]}}, name="attacker")
        try:
            header, _ = attacker.recv(timeout=15)
        finally:
            attacker.close()
        assert zygote.alive and not gone(zygote.pid)
        assert sibling.proc.poll() is None and not gone(sibling.pid)
        sibling.close()
    finally:
        sup.close()
    outcome = header["params"]
    assert outcome["uid"] == worker_uid(attacker.pid)
    for target in ("zygote", "sibling", "host"):
        assert outcome[f"kill {target}"] == "EPERM", outcome
        assert outcome[f"ptrace {target}"] == "EPERM", outcome
    sandbox.assert_host_unharmed(outcome)


def test_the_zygote_and_its_children_die_with_the_host(sandbox: Sandbox) -> None:
    """A throw-away host forks a worker stuck in a loop from its zygote, then is killed with
    SIGKILL: neither the zygote nor the worker may outlive it."""
    host = textwrap.dedent("""
        from sandtrade.sandbox.limits import WorkerLimits
        from sandtrade.sandbox.supervisor import Supervisor
        limits = WorkerLimits(cpu_seconds=60, wall_seconds=60, event_seconds=60)
        sup = Supervisor(limits, zygote=True)
        w = sup.start({"task": "check", "path": "loop.py",
                       "source": "while True:\\n    pass\\n"}, name="loop.py")
        print(sup.zygote.pid, w.pid, w.workdir, flush=True)
        w.recv()
    """)
    proc = subprocess.Popen([sys.executable, "-c", host], stdout=subprocess.PIPE, text=True)
    zygote_pid = worker_pid = 0
    workdir = ""
    try:
        assert proc.stdout is not None
        first, second, workdir = proc.stdout.readline().split()
        zygote_pid, worker_pid = int(first), int(second)
        assert psutil.Process(worker_pid).ppid() == zygote_pid
        assert psutil.Process(zygote_pid).ppid() == proc.pid
        assert not gone(worker_pid) and not gone(zygote_pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        eventually(lambda: gone(zygote_pid), "the zygote died with its host")
        eventually(lambda: gone(worker_pid), "the worker died with its host")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in (worker_pid, zygote_pid):
            if pid and not gone(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if workdir.startswith("/tmp/sandtrade-worker-"):
            subprocess.run(["rm", "-rf", workdir], check=False)
    sandbox.assert_host_unharmed()


def test_the_zygote_is_single_threaded_whenever_it_forks(supervisor: Supervisor,
                                                         sandbox: Sandbox) -> None:
    """A fork copies only the calling thread: a lock held by another would stay held in the
    child forever. The zygote checks before each fork; the host sees it from outside too."""
    workers = [start_check(supervisor, "x = 1\n", f"w{k}.py") for k in range(4)]
    zygote = supervisor.zygote
    assert zygote is not None and zygote.pid is not None
    try:
        assert os.listdir(f"/proc/{zygote.pid}/task") == [str(zygote.pid)]
    finally:
        for w in workers:
            w.close()
    assert zygote.threads_at_fork == [1, 1, 1, 1]
    sandbox.assert_host_unharmed()


def test_a_zygote_child_holds_the_modules_of_a_booted_worker(sandbox: Sandbox) -> None:
    """``doctor --worker-modules`` is the same for a forked worker: the zygote adds no module
    (its own code is ``__main__``), and nothing of the host."""
    lists = []
    for zygote in (True, False):
        sup = Supervisor(LIMITS, report_modules=True, zygote=zygote)
        # numpy, talib and QuantLib (ctx.options): a zygote loads every strategy module and
        # the options library, a booted worker those its strategy uses
        worker = sup.start({"task": "check", "path": "e.py",
                            "source": "import numpy\nimport talib\n\n\ndef on_bar(ctx, bar):\n"
                                      "    ctx.options.chain()\n"}, name="e")
        try:
            assert isinstance(worker.proc, ZygoteChild) is zygote
            lists.append(worker.modules)
        finally:
            worker.close()
            sup.close()
    forked, booted = lists
    assert forked == booted
    assert forked is not None
    assert [m for m in forked if m.partition(".")[0] == "sandtrade"] == \
        sorted(EXPECTED_WITH_NUMPY)
    assert [m for m in forked if forbidden(m)] == []
    sandbox.assert_host_unharmed(forked)


def test_a_zygote_child_killed_from_outside_reads_as_killed(supervisor: Supervisor,
                                                            sandbox: Sandbox) -> None:
    """The host is not the child's parent: its exit status comes from the zygote, and the kill
    reason a person reads is the same as for a worker the host started."""
    worker = start_check(supervisor, "while True:\n    pass\n", "loop.py")
    os.kill(worker.pid, signal.SIGKILL)
    with pytest.raises(SandboxKilled) as info:
        worker.recv(timeout=15)
    worker.close()
    assert info.value.reason == "killed", info.value
    assert "killed by SIGKILL from outside the supervisor" in str(info.value)
    sandbox.assert_host_unharmed(info.value)


def test_workers_boot_on_their_own_when_the_zygote_fails(monkeypatch: pytest.MonkeyPatch,
                                                         sandbox: Sandbox) -> None:
    """A zygote that cannot start is no outage: the worker is started as a process of its own,
    and the supervisor says why (``sandtrade doctor`` prints it)."""
    monkeypatch.setattr(Zygote, "command", (sys.executable, "-I", "-c",
                                            "import sys; print('no zygote here', "
                                            "file=sys.stderr); sys.exit(3)"))
    sup = Supervisor(LIMITS, zygote=True)
    try:
        worker = sup.start({"task": "check", "path": "x.py", "source": "x = 1\n"}, name="x")
        try:
            header, _ = worker.recv(timeout=15)
        finally:
            worker.close()
    finally:
        sup.close()
    assert header["type"] == "checked"
    assert isinstance(worker.proc, subprocess.Popen)
    assert sup.worker_start.startswith("process: each worker boots on its own (the zygote "
                                       "failed:")
    assert "no zygote here" in sup.worker_start and "status 3" in sup.worker_start
    sandbox.assert_host_unharmed(header)


def test_doctor_says_how_workers_start() -> None:
    proc = subprocess.run([sys.executable, "-m", "sandtrade.cli", "doctor"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if "worker start" in line)
    assert "zygote: workers fork from a warm template" in row
