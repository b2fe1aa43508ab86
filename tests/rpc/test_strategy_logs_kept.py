"""Strategy logs are kept in the store: a host started again shows what its strategies
wrote before (with whose each line is: a strategy's text never passes for the host's), each
strategy's log stays within its bound in lines and bytes however much it writes, and the
host's notes are bounded apart so that a flood cannot push them out."""

from __future__ import annotations

import sqlite3

import grpc

from sandtrade.host.runtime import STORE_FILE, HostRuntime
from sandtrade.sandbox.logbook import LogBounds
from sandtrade.v1 import strategies_pb2 as spb
from sandtrade.v1 import strategies_pb2_grpc

from .conftest import WAIT, Market, Metadata
from .test_strategies import eventually, replay, restarted, start, upload, wait_running

Stub = strategies_pb2_grpc.StrategyServiceStub

LIAR = """\
def on_bar(ctx, bar):
    print("bar", bar.close)
    print("stopped")  # what the host would say: still the strategy's own line
"""


def _log(stub: Stub, metadata: Metadata, name: str) -> list[tuple[str, int]]:
    call = stub.StreamStrategyLogs(spb.StreamStrategyLogsRequest(name=name, tail=1000),
                                   metadata=metadata, timeout=WAIT)
    return [(m.line, m.origin) for m in call]


def test_a_restarted_host_shows_the_log_written_before_with_its_origins(
        channel: grpc.Channel, operator: Metadata, runtime: HostRuntime,
        market: Market) -> None:
    stub = Stub(channel)
    upload(stub, operator, "liar", LIAR)
    start(stub, operator, "liar")
    wait_running(stub, operator, "liar")
    market.publish(10.0)
    market.publish(11.0)
    before = eventually(lambda: _log(stub, operator, "liar"),
                        lambda got: ("bar 11.0", spb.LOG_ORIGIN_STRATEGY) in got,
                        "the strategy's lines")

    with restarted(runtime) as host2, grpc.insecure_channel(host2.rpc.address) as ch2:
        stub2 = Stub(ch2)
        replay(host2, market)
        after = _log(stub2, operator, "liar")
        assert after[:len(before)] == before, "the old lines, in order, with their origins"
        strategy_lines = [line for line, origin in after if origin == spb.LOG_ORIGIN_STRATEGY]
        assert strategy_lines[:4] == ["bar 10.0", "stopped", "bar 11.0", "stopped"]
        host_notes = [line for line, origin in after if origin == spb.LOG_ORIGIN_HOST]
        assert host_notes[0].startswith("uploaded")
        assert "stopped" not in host_notes[:2], host_notes
        # what the host said at its shutdown is there too, as the host's
        assert any(n.startswith("stopped") for n in host_notes), host_notes


FLOOD = """\
def on_bar(ctx, bar):
    for k in range(150):
        print("flood", k, "x" * 300)
"""


def test_a_flooding_strategy_never_grows_its_stored_log_past_the_bound(
        channel: grpc.Channel, operator: Metadata, runtime: HostRuntime,
        market: Market) -> None:
    manager = runtime.strategies
    assert manager is not None
    bounds = LogBounds(lines=100, bytes=20_000, note_lines=10, note_bytes=2_000)
    manager.logbook.bounds = bounds
    stub = Stub(channel)
    upload(stub, operator, "flood", FLOOD)
    start(stub, operator, "flood")
    wait_running(stub, operator, "flood")
    db = sqlite3.connect(runtime.data_dir / STORE_FILE)
    try:
        for k in range(6):
            market.publish(10.0 + k)
            manager.logbook.flush()
            rows = db.execute("SELECT ring, COUNT(*), SUM(bytes), MAX(LENGTH(line))"
                              " FROM strategy_logs GROUP BY ring").fetchall()
            for ring, lines, nbytes, _ in rows:
                max_lines, max_bytes = bounds.of(ring)
                assert lines <= max_lines and nbytes <= max_bytes, (k, rows)
        own = [line for line, origin in _log(stub, operator, "flood")
               if origin == spb.LOG_ORIGIN_STRATEGY]
        assert own and own[-1].startswith("flood 149"), own[-3:]
        notes = [line for line, origin in _log(stub, operator, "flood")
                 if origin == spb.LOG_ORIGIN_HOST]
        assert notes[0].startswith("uploaded"), "the flood did not push the host's note out"
        total = manager.logbook.written
        assert total >= 150 * 6 * 0.5, total  # the flood did reach the store (then trimmed)
    finally:
        db.close()
