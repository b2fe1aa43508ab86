"""numpy and TA-Lib in live strategies, and the operator's library whitelist on a real host:
``[sandbox] modules`` narrows what every strategy may import, ``[accounts.NAME] modules`` what
one account's may; an upload that imports more is refused with its line, as ``check`` does."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.host.config import ConfigError
from sandtrade.host.runtime import HostRuntime
from sandtrade.market import iter_csv, sample_csv_path
from sandtrade.models import Bar
from sandtrade.sandbox.runner import SandboxRunner
from sandtrade.v1 import strategies_pb2 as spb

from .conftest import WAIT, Market, Metadata, StepSource, bearer, serving
from .test_strategies import (
    EXAMPLES,
    RUNNING,
    Stub,
    precondition_violations,
    refused,
    start,
    status,
    trade_key,
    upload,
)


@pytest.fixture
def strategies(channel: grpc.Channel) -> Stub:
    """A StrategyService client."""
    return Stub(channel)


USES_TALIB = "import talib\n\ndef on_bar(ctx, bar):\n    talib.SMA(ctx.history(5), 3)\n"
USES_NUMPY = "import numpy as np\n\ndef on_bar(ctx, bar):\n    np.mean(ctx.history(5))\n"


def test_numpy_and_talib_strategy_live_replay_trades_as_the_backtest(
        strategies: Stub, operator: Metadata, runtime: HostRuntime) -> None:
    """The numpy/TA-Lib SMA-cross example, started live in its sandbox and replayed through
    the host's feed, closes exactly the trades of a sandboxed back-test on the same bars."""
    source = (EXAMPLES / "numpy_sma_cross.py").read_text()
    params = {"fast": 5, "slow": 12}
    upload(strategies, operator, "npsma", source, account="s1", **params)
    start(strategies, operator, "npsma")
    bars = [Bar("AAA", b.time, b.open, b.high, b.low, b.close, b.volume)
            for b in iter_csv(sample_csv_path())][:300]
    assert isinstance(runtime.source, StepSource)
    for bar in bars:
        runtime.source.push(bar)
    runtime.source.wait_handled(len(bars), timeout=120)
    assert runtime.live is not None
    live = runtime.live.call(lambda b: list(b.closed_trades("s1")))

    request = BacktestRequest(strategy="numpy_sma_cross.py", data=[DataSpec(path="AAA")],
                              cash=runtime.settings.cash, params=params)
    result = SandboxRunner().run_source(source, request, {"AAA": bars})
    assert len(result.trades) >= 10, "the comparison is not vacuous"
    assert [trade_key(t) for t in live] == [trade_key(t) for t in result.trades]
    st = status(strategies, operator, "npsma")
    assert st.strategy.state == RUNNING and list(st.last_errors) == []


def test_the_whitelist_narrows_uploads_per_host_and_per_account(tmp_path: Path) -> None:
    """``[sandbox] modules = ["math", "numpy"]``: a talib strategy is refused at upload with
    its line; account ``strict`` (``modules = ["math"]``) may not import numpy either, while
    another account may."""
    with serving(tmp_path, sandbox={"modules": ["math", "numpy"]},
                 accounts={"strict": {"modules": ["math"]}}) as host:
        assert host.rpc is not None
        operator = bearer(host.operator_token_path.read_text().strip())
        with grpc.insecure_channel(host.rpc.address) as channel:
            stub = Stub(channel)
            err = refused(lambda: stub.UploadStrategy(spb.UploadStrategyRequest(
                name="ta", source=USES_TALIB, account="free", symbols=["AAA"]),
                metadata=operator, timeout=WAIT))
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert precondition_violations(err) == [
                ("ta.py:1", "import of 'talib' is not allowed (allowed: math, numpy)")]
            upload(stub, operator, "np", USES_NUMPY, account="free")
            err = refused(lambda: stub.UploadStrategy(spb.UploadStrategyRequest(
                name="np", source=USES_NUMPY, account="strict", symbols=["AAA"]),
                metadata=operator, timeout=WAIT))
            assert precondition_violations(err) == [
                ("np.py:1", "import of 'numpy' is not allowed (allowed: math)")]


def test_an_unknown_module_in_the_whitelist_stops_the_host_at_start(tmp_path: Path) -> None:
    """A name strategies could never import (no plugin provides it) is a configuration
    error naming the key, before anything starts."""
    with pytest.raises(ConfigError, match=r"\[accounts.bob\] modules\[1\]: 'pandas' is not a "
                       r"module strategies can import \(available: bisect, .*numpy.*talib"), \
            serving(tmp_path, accounts={"bob": {"modules": ["math", "pandas"]}}):
        pass


def test_a_strategy_stored_before_its_account_was_narrowed_may_not_import_it(
        tmp_path: Path) -> None:
    """The host restarted with ``[accounts.late] modules = ["math"]``: the numpy strategy
    ``late`` stored before is refused in a back-test too (the task carries the account's
    list), with its line."""
    with serving(tmp_path) as host:
        assert host.rpc is not None
        operator = bearer(host.operator_token_path.read_text().strip())
        with grpc.insecure_channel(host.rpc.address) as channel:
            upload(Stub(channel), operator, "np", USES_NUMPY, account="late")
    with serving(tmp_path, accounts={"late": {"modules": ["math"]}}) as host:
        assert host.rpc is not None
        market = Market(host)
        for k in range(5):
            market.publish(100.0 + k)
        with grpc.insecure_channel(host.rpc.address) as channel:
            stub = Stub(channel)
            err = refused(lambda: list(stub.RunBacktest(spb.RunBacktestRequest(name="np"),
                                                        metadata=operator, timeout=WAIT)))
    assert "np.py:1: import of 'numpy' is not allowed (allowed: math)" in (err.details() or "")
