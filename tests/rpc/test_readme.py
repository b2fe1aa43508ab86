"""The README's client snippet runs as written against a real host."""

from __future__ import annotations

import re
from pathlib import Path

from sandtrade.models import Account
from sandtrade.runtime import HostRuntime

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_client_snippet_trades_on_a_real_host(tmp_path: Path) -> None:
    from sandtrade.config import load_settings

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    snippet = next(b for b in blocks if "from sandtrade.client import Client" in b)
    settings = load_settings(data_dir=tmp_path / "data", grpc="127.0.0.1:0",
                             market={"bars_per_second": 200})
    with HostRuntime(settings) as host:
        assert host.rpc is not None and host.auth is not None and host.store is not None
        host.store.create_account(Account(id="alice", cash=10_000, initial_cash=10_000))
        _, token = host.auth.create("alice", ("read", "trade"))
        snippet = snippet.replace("127.0.0.1:50051", host.rpc.address)
        snippet = snippet.replace('"orders.queue"', repr(str(tmp_path / "orders.queue")))
        printed: list[str] = []
        exec(compile(snippet, "README.md", "exec"),
             {"TOKEN": token, "print": lambda *a: printed.append(" ".join(map(str, a)))})
        assert printed[0].startswith("OrderStatus.ACCEPTED") or "accepted" in printed[0]
        order = host.store.find_client_order("alice", "my-order-1")
        assert order is not None and order.qty == 10
        assert float(printed[-1]) > 0
