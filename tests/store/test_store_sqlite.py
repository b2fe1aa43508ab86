"""SQLiteStore: round trips, pagination, atomic commits, errors that name what is wrong."""

from __future__ import annotations

import math
import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from sandtrade.errors import StoreError
from sandtrade.models import (
    Account,
    BrokerChange,
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    TimeInForce,
)
from sandtrade.store import JsonText, RunRecord, SQLiteStore, Store

T0 = datetime(2026, 3, 2, 14, 30, 0, 123456, tzinfo=UTC)


def make_account(account_id: str = "acct", cash: float = 100_000.0) -> Account:
    """A plain paper account."""
    return Account(id=account_id, cash=cash, initial_cash=100_000.0, created_at=T0)


def make_order(order_id: str, account: str = "acct", symbol: str = "AAPL",
               status: OrderStatus = OrderStatus.ACCEPTED, qty: float = 10.0) -> Order:
    """A market buy order in ``status``."""
    return Order(id=order_id, account=account, symbol=symbol, side=OrderSide.BUY, qty=qty,
                 status=status, created_at=T0)


def make_fill(fill_id: str, order_id: str, account: str = "acct", qty: float = 1.0,
              price: float = 100.0) -> Fill:
    """A buy fill of ``order_id``."""
    return Fill(id=fill_id, order_id=order_id, account=account, symbol="AAPL",
                side=OrderSide.BUY, qty=qty, price=price, time=T0)


@pytest.fixture
def account(store: SQLiteStore) -> Account:
    """The account ``acct``, already stored."""
    acct = make_account()
    store.create_account(acct)
    return acct


# --------------------------------------------------------------------------- the interface


def test_sqlite_store_satisfies_the_store_protocol(store: SQLiteStore) -> None:
    assert isinstance(store, Store)


def test_wal_journal_synchronous_full_and_foreign_keys_are_on(store: SQLiteStore,
                                                              db_path: Path) -> None:
    other = sqlite3.connect(db_path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()
    assert db_path.with_name(db_path.name + "-wal").exists()
    # synchronous and foreign_keys are per connection: look at the store's own.
    assert store.pragma("synchronous") == 2  # FULL
    assert store.pragma("foreign_keys") == 1
    busy_timeout = store.pragma("busy_timeout")
    assert isinstance(busy_timeout, int) and busy_timeout > 0


def test_pragma_takes_a_name_only_and_assigns_nothing(store: SQLiteStore) -> None:
    with pytest.raises(StoreError, match=r"'synchronous = OFF' is not a pragma name"):
        store.pragma("synchronous = OFF")
    assert store.pragma("synchronous") == 2  # still FULL


def test_in_memory_store_works() -> None:
    with SQLiteStore(":memory:") as mem:
        mem.create_account(make_account())
        assert mem.get_account("acct") == make_account()


def test_closed_store_raises_naming_the_call_and_the_file(store: SQLiteStore,
                                                          db_path: Path) -> None:
    store.close()
    store.close()  # twice is harmless
    with pytest.raises(StoreError, match=r"get_account\('acct'\): the store .*sandtrade.db "
                                         r"is closed"):
        store.get_account("acct")


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StoreError, match=r"cannot open SQLite database .*notes\.db"):
        SQLiteStore(bogus)


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"nowhere.*does its directory exist"):
        SQLiteStore(tmp_path / "nowhere" / "st.db")


# --------------------------------------------------------------------------- accounts


def test_account_round_trips_exactly(store: SQLiteStore) -> None:
    acct = Account(id="paper-1.main", cash=12_345.678901234567, initial_cash=20_000.0,
                   currency="EUR", realized_pnl=-1.5e-7, commissions=3.25, equity=19_999.99,
                   buying_power=39_999.98, long_market_value=7654.321, short_market_value=-0.1,
                   created_at=datetime(2026, 1, 5, 9, 30, tzinfo=timezone(timedelta(hours=-5))))
    store.create_account(acct)
    assert store.get_account("paper-1.main") == acct


def test_creating_an_account_twice_is_an_error_naming_it(store: SQLiteStore,
                                                         account: Account) -> None:
    with pytest.raises(StoreError, match=r"account 'acct' already exists in .*sandtrade\.db"):
        store.create_account(make_account(cash=1.0))
    assert store.get_account("acct") == account


def test_accounts_are_listed_by_id(store: SQLiteStore) -> None:
    for account_id in ("b", "c", "a"):
        store.create_account(make_account(account_id))
    assert [a.id for a in store.list_accounts()] == ["a", "b", "c"]


def test_missing_things_are_none(store: SQLiteStore) -> None:
    assert store.get_account("nope") is None
    assert store.get_order("nope") is None
    assert store.get_run("nope") is None


# --------------------------------------------------------------------------- broker state


def test_order_round_trips_exactly(store: SQLiteStore, account: Account) -> None:
    order = Order(id="o-1", account="acct", symbol="BTC-USD", side=OrderSide.SELL,
                  type=OrderType.STOP_LIMIT, qty=0.12345678, limit_price=61_000.5,
                  stop_price=61_200.25, tif=TimeInForce.DAY, reduce_only=True,
                  client_order_id="my-1", tag="exit", status=OrderStatus.PARTIALLY_FILLED,
                  filled_qty=0.1, avg_fill_price=61_100.123456789, created_at=T0,
                  updated_at=T0 + timedelta(microseconds=1), replaces="o-0")
    store.commit(BrokerChange(orders=[order]))
    assert store.get_order("o-1") == order


def test_fraction_order_round_trips_exactly(store: SQLiteStore, account: Account) -> None:
    order = Order(id="o-f", account="acct", symbol="SPY", side=OrderSide.BUY,
                  equity_fraction=0.3333333333333333)
    store.commit(BrokerChange(orders=[order]))
    assert store.get_order("o-f") == order


def test_fill_and_position_round_trip_exactly(store: SQLiteStore, account: Account) -> None:
    fill = Fill(id="f-1", order_id="o-1", account="acct", symbol="AAPL", side=OrderSide.BUY,
                qty=3.0, price=187.4299999999, commission=0.015, time=T0, bar_index=42)
    position = Position(account="acct", symbol="AAPL", qty=3.0, avg_price=187.4299999999,
                        realized_pnl=-0.015, market_price=188.0, multiplier=1.0)
    store.commit(BrokerChange(orders=[make_order("o-1")], fills=[fill], positions=[position]))
    assert store.list_fills("acct") == [fill]
    assert store.list_positions("acct") == [position]


def test_commit_updates_an_order_in_place(store: SQLiteStore, account: Account) -> None:
    store.commit(BrokerChange(orders=[make_order("o-1"), make_order("o-2")]))
    filled = make_order("o-1", status=OrderStatus.FILLED).model_copy(
        update={"filled_qty": 10.0, "avg_fill_price": 101.0})
    store.commit(BrokerChange(orders=[filled]))
    assert store.get_order("o-1") == filled
    assert [o.id for o in store.list_orders("acct")] == ["o-1", "o-2"]


def test_commit_upserts_accounts_and_positions(store: SQLiteStore, account: Account) -> None:
    long = Position(account="acct", symbol="AAPL", qty=5.0, avg_price=100.0)
    store.commit(BrokerChange(positions=[long], accounts=[make_account(cash=99_500.0)]))
    more = long.model_copy(update={"qty": 8.0})
    store.commit(BrokerChange(positions=[more], accounts=[make_account(cash=99_200.0)]))
    assert store.list_positions("acct") == [more]
    assert store.get_account("acct") == make_account(cash=99_200.0)


def test_commit_can_create_the_account_its_orders_belong_to(store: SQLiteStore) -> None:
    store.commit(BrokerChange(orders=[make_order("o-1", account="new")],
                              accounts=[make_account("new")]))
    assert store.get_order("o-1") == make_order("o-1", account="new")


def test_flat_positions_are_not_listed(store: SQLiteStore, account: Account) -> None:
    store.commit(BrokerChange(positions=[
        Position(account="acct", symbol="MSFT", qty=-2.0, avg_price=400.0),
        Position(account="acct", symbol="AAPL", qty=1.0, avg_price=180.0),
        Position(account="acct", symbol="TSLA", qty=0.0, realized_pnl=12.5),
    ]))
    assert [p.symbol for p in store.list_positions("acct")] == ["AAPL", "MSFT"]
    store.commit(BrokerChange(positions=[Position(account="acct", symbol="MSFT", qty=0.0)]))
    assert [p.symbol for p in store.list_positions("acct")] == ["AAPL"]


def test_empty_change_is_a_no_op(store: SQLiteStore) -> None:
    store.commit(BrokerChange())
    assert store.list_accounts() == []


def test_list_orders_filters_by_status_and_open_only(store: SQLiteStore,
                                                     account: Account) -> None:
    statuses = [OrderStatus.ACCEPTED, OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED,
                OrderStatus.CANCELED, OrderStatus.NEW, OrderStatus.FILLED]
    store.commit(BrokerChange(orders=[make_order(f"o-{i}", status=s)
                                      for i, s in enumerate(statuses)]))
    assert [o.id for o in store.list_orders("acct", status=OrderStatus.FILLED)] == ["o-1", "o-5"]
    assert [o.id for o in store.list_orders("acct", open_only=True)] == ["o-0", "o-2", "o-4"]
    assert store.list_orders("acct", status=OrderStatus.FILLED, open_only=True) == []
    # An order that reaches a terminal status leaves the open list.
    store.commit(BrokerChange(orders=[make_order("o-2", status=OrderStatus.CANCELED)]))
    assert [o.id for o in store.list_orders("acct", open_only=True)] == ["o-0", "o-4"]


def test_list_orders_only_returns_the_accounts_orders(store: SQLiteStore,
                                                      account: Account) -> None:
    store.create_account(make_account("other"))
    store.commit(BrokerChange(orders=[make_order("o-1"), make_order("x-1", account="other")]))
    assert [o.id for o in store.list_orders("acct")] == ["o-1"]
    assert [o.id for o in store.list_orders("other")] == ["x-1"]


def test_list_orders_paginates_in_creation_order(store: SQLiteStore, account: Account) -> None:
    # Ids deliberately out of alphabetical order: the order is insertion, not id.
    ids = [f"{chr(ord('z') - i)}-{i}" for i in range(25)]
    for order_id in ids:
        store.commit(BrokerChange(orders=[make_order(order_id)]))
    pages: list[list[str]] = []
    after: str | None = None
    while page := store.list_orders("acct", limit=10, after=after):
        pages.append([o.id for o in page])
        after = page[-1].id
        # Updating an order already seen must not move it to a later page.
        store.commit(BrokerChange(orders=[make_order(page[0].id, status=OrderStatus.FILLED)]))
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [order_id for page in pages for order_id in page] == ids


def test_list_fills_paginates_in_execution_order(store: SQLiteStore, account: Account) -> None:
    store.commit(BrokerChange(orders=[make_order("o-a"), make_order("o-b")]))
    ids = []
    for i in range(7):
        order_id = "o-a" if i % 2 else "o-b"
        ids.append((f"f-{9 - i}", order_id))
        store.commit(BrokerChange(fills=[make_fill(f"f-{9 - i}", order_id)]))
    first = store.list_fills("acct", limit=4)
    rest = store.list_fills("acct", limit=4, after=first[-1].id)
    assert [(f.id, f.order_id) for f in first + rest] == ids
    assert store.list_fills("acct", after=rest[-1].id) == []
    of_a = store.list_fills("acct", order_id="o-a", limit=2)
    of_a += store.list_fills("acct", order_id="o-a", after=of_a[-1].id)
    assert [f.id for f in of_a] == [fill_id for fill_id, order_id in ids if order_id == "o-a"]


def test_paging_after_an_unknown_id_is_an_error(store: SQLiteStore, account: Account) -> None:
    with pytest.raises(StoreError, match=r"after='ghost' is not the id of an order of account "
                                         r"'acct'.*last order of the previous page"):
        store.list_orders("acct", after="ghost")
    with pytest.raises(StoreError, match=r"after='ghost' is not the id of a fill"):
        store.list_fills("acct", after="ghost")


def test_paging_after_another_accounts_id_is_an_error(store: SQLiteStore,
                                                      account: Account) -> None:
    store.create_account(make_account("other"))
    store.commit(BrokerChange(orders=[make_order("x-1", account="other")]))
    with pytest.raises(StoreError, match=r"after='x-1' is not the id of an order of "
                                         r"account 'acct'"):
        store.list_orders("acct", after="x-1")


def test_limit_below_one_is_an_error(store: SQLiteStore) -> None:
    with pytest.raises(StoreError, match=r"list_orders\('acct'\): limit must be .* at least 1, "
                                         r"got 0"):
        store.list_orders("acct", limit=0)
    with pytest.raises(StoreError, match="got -1"):
        store.list_runs(limit=-1)


# --------------------------------------------------------------------------- atomic commits


def test_duplicate_fill_rolls_back_the_whole_change(store: SQLiteStore, account: Account) -> None:
    half = make_order("o-1", status=OrderStatus.PARTIALLY_FILLED).model_copy(
        update={"filled_qty": 5.0})
    position = Position(account="acct", symbol="AAPL", qty=5.0, avg_price=100.0)
    store.commit(BrokerChange(orders=[half], fills=[make_fill("f-1", "o-1", qty=5.0)],
                              positions=[position], accounts=[make_account(cash=99_500.0)]))

    replayed = BrokerChange(
        orders=[make_order("o-1", status=OrderStatus.FILLED).model_copy(
            update={"filled_qty": 10.0})],
        fills=[make_fill("f-2", "o-1", qty=5.0), make_fill("f-1", "o-1", qty=5.0)],
        positions=[position.model_copy(update={"qty": 10.0})],
        accounts=[make_account(cash=99_000.0)],
    )
    with pytest.raises(StoreError, match=r"fill 'f-1' of order 'o-1' is already stored.*"
                                         r"Nothing of this change was written"):
        store.commit(replayed)

    assert store.get_order("o-1") == half
    assert [f.id for f in store.list_fills("acct")] == ["f-1"]
    assert store.list_positions("acct") == [position]
    assert store.get_account("acct") == make_account(cash=99_500.0)


def test_the_same_fill_twice_in_one_change_is_refused(store: SQLiteStore,
                                                      account: Account) -> None:
    fill = make_fill("f-1", "o-1")
    with pytest.raises(StoreError, match="'f-1' of order 'o-1' is already stored"):
        store.commit(BrokerChange(orders=[make_order("o-1")], fills=[fill, fill]))
    assert store.get_order("o-1") is None
    assert store.list_fills("acct") == []


def test_a_fill_of_an_unknown_order_is_refused(store: SQLiteStore, account: Account) -> None:
    with pytest.raises(StoreError, match=r"fill 'f-1' of order 'o-9' refers to an order that is "
                                         r"not stored"):
        store.commit(BrokerChange(fills=[make_fill("f-1", "o-9")],
                                  accounts=[make_account(cash=1.0)]))
    assert store.get_account("acct") == account


def test_an_order_of_an_unknown_account_is_refused(store: SQLiteStore) -> None:
    with pytest.raises(StoreError, match=r"order 'o-1' belongs to account 'ghost', which is not "
                                         r"in .*; create the account first"):
        store.commit(BrokerChange(orders=[make_order("o-1", account="ghost")]))


def test_an_order_may_not_move_to_another_account(store: SQLiteStore, account: Account) -> None:
    store.create_account(make_account("other"))
    store.commit(BrokerChange(orders=[make_order("o-1")]))
    with pytest.raises(StoreError, match=r"order 'o-1' is stored for account 'acct' and symbol "
                                         r"'AAPL'; an update may not move it to account 'other'"):
        store.commit(BrokerChange(orders=[make_order("o-1", account="other")]))
    assert store.get_order("o-1") == make_order("o-1")


def test_a_non_finite_number_is_refused_before_anything_is_written(store: SQLiteStore,
                                                                   account: Account) -> None:
    with pytest.raises(StoreError, match=r"account 'acct' has cash=nan; only finite numbers"):
        store.commit(BrokerChange(orders=[make_order("o-1")],
                                  accounts=[make_account(cash=math.nan)]))
    assert store.get_order("o-1") is None
    assert store.get_account("acct") == account


def test_commits_from_many_threads_all_land(store: SQLiteStore, account: Account) -> None:
    def place(thread: int) -> None:
        for i in range(25):
            order_id = f"t{thread}-{i}"
            store.commit(BrokerChange(orders=[make_order(order_id)],
                                      fills=[make_fill(f"f-{order_id}", order_id)]))

    threads = [threading.Thread(target=place, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.list_orders("acct", limit=1000)) == 100
    assert len(store.list_fills("acct")) == 100


def test_two_stores_on_one_file_see_each_others_commits(store: SQLiteStore, db_path: Path,
                                                        account: Account) -> None:
    with SQLiteStore(db_path) as second:
        second.commit(BrokerChange(orders=[make_order("o-1")]))
        store.commit(BrokerChange(fills=[make_fill("f-1", "o-1")]))
        assert store.get_order("o-1") == make_order("o-1")
        assert [f.id for f in second.list_fills("acct")] == ["f-1"]


# --------------------------------------------------------------------------- runs


def make_run(run_id: str, started_at: datetime = T0, **kw: object) -> RunRecord:
    """A finished back-test run."""
    return RunRecord(id=run_id, kind="backtest", strategy="sma_cross.py",
                     started_at=started_at, **kw)  # type: ignore[arg-type]


def test_run_round_trips_exactly(store: SQLiteStore) -> None:
    run = make_run(
        "r-1", finished_at=T0 + timedelta(seconds=3.5),
        params={"fast": 10, "slow": 30, "symbols": ["AAPL", "MSFT"], "nested": {"a": None}},
        stats={"Return [%]": 12.345678901234567, "# Trades": 4, "Duration": "830 days 00:00:00",
               "Win Rate [%]": 0.1 + 0.2, "big": 2**70, "flag": True},
        trades=[{"symbol": "AAPL", "size": 10.0, "pnl": -3.25, "exit_time": None}],
        status="failed", error="sma_cross.py:12: ZeroDivisionError",
    )
    store.save_run(run)
    assert store.get_run("r-1") == run


def test_runs_keep_nan_and_infinite_stats(store: SQLiteStore) -> None:
    store.save_run(make_run("r-1", stats={"Sharpe Ratio": math.nan, "Profit Factor": math.inf}))
    got = store.get_run("r-1")
    assert got is not None
    assert math.isnan(got.stats["Sharpe Ratio"]) and got.stats["Profit Factor"] == math.inf


def test_saving_a_run_again_replaces_it(store: SQLiteStore) -> None:
    store.save_run(make_run("r-1", status="running"))
    done = make_run("r-1", status="finished", finished_at=T0 + timedelta(minutes=1),
                    stats={"Return [%]": 1.0})
    store.save_run(done)
    assert store.get_run("r-1") == done
    assert store.list_runs() == [done]


def test_runs_are_listed_most_recent_first(store: SQLiteStore) -> None:
    new_york = timezone(timedelta(hours=-5))
    store.save_run(make_run("middle", T0))
    store.save_run(make_run("newest", (T0 + timedelta(hours=1)).astimezone(new_york)))
    store.save_run(make_run("oldest", T0 - timedelta(days=1)))
    assert [r.id for r in store.list_runs()] == ["newest", "middle", "oldest"]
    assert [r.id for r in store.list_runs(limit=2)] == ["newest", "middle"]


def test_a_run_with_a_value_json_would_change_is_refused(store: SQLiteStore) -> None:
    with pytest.raises(StoreError, match=r"save_run\('r-1'\): stats\['Start'\] is "
                                         r"datetime.*a datetime; store JSON values only"):
        store.save_run(make_run("r-1", stats={"Start": T0}))
    with pytest.raises(StoreError, match=r"params\['window'\] is \(1, 2\), a tuple"):
        store.save_run(make_run("r-1", params={"window": (1, 2)}))
    with pytest.raises(StoreError, match=r"trades\[0\] has the key 3, which is not a string"):
        store.save_run(make_run("r-1", trades=[{3: "x"}]))
    assert store.get_run("r-1") is None


# --------------------------------------------------------------------------- host state


def nested_list(depth: int) -> list[object]:
    """A list nested ``depth`` deep: ``[[[...]]]``."""
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [985, 5_000, 100_000])
def test_commit_many_refuses_deep_values_without_recursion_error(
        store: SQLiteStore, account: Account, depth: int) -> None:
    """A host state value nested thousands deep is a StoreError naming the key, raised before
    anything is written (not a RecursionError from the middle of the commit); the same group
    without it commits."""
    change = BrokerChange(orders=[make_order("o-1")])
    state = {"feed:x:position": 7, "strategy:evil:state": {"a": nested_list(depth)}}
    with pytest.raises(StoreError, match=r"strategy:evil:state\['a'\]\[0\]\[0\].*… is nested "
                                         r"deeper than 200"):
        store.commit_many([change], state)
    assert store.get_order("o-1") is None
    assert store.get_state("feed:x:position") is None

    store.commit_many([change], {"feed:x:position": 7})
    assert store.get_order("o-1") is not None and store.get_state("feed:x:position") == 7


def test_a_cycle_in_a_state_value_is_refused(store: SQLiteStore) -> None:
    """A list that holds itself is refused by depth, not walked forever."""
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(StoreError, match=r"k\[0\]\[0\].*… is nested deeper than 200"):
        store.commit_many([], {"k": loop})


def test_checked_json_text_is_stored_as_it_is(store: SQLiteStore) -> None:
    """A JsonText value is written verbatim (its maker checked it) and read back as text or
    as a value."""
    store.commit_many([], {"strategy:s:state": JsonText('{"a":[1,2]}')})
    assert store.get_state_text("strategy:s:state") == '{"a":[1,2]}'
    assert store.get_state("strategy:s:state") == {"a": [1, 2]}
    assert store.get_state_text("missing") is None


def test_an_unreadable_stored_state_is_a_store_error_naming_the_key(store: SQLiteStore,
                                                                    db_path: Path) -> None:
    """A row too deep to parse (written before the checks existed) reads back as a
    StoreError naming the key, never a RecursionError; its text can still be read."""
    text = "[" * 100_000 + "]" * 100_000
    store.commit_many([], {"strategy:old:state": JsonText(text)})
    with pytest.raises(StoreError, match=r"host state 'strategy:old:state' cannot be read"):
        store.get_state("strategy:old:state")
    assert store.get_state_text("strategy:old:state") == text


# A group commit of many rows (a live bar's 200 strategies): what one refused row says, and
# what is kept, is as for a single row.


def test_a_large_group_is_stored_whole_and_in_order(store: SQLiteStore, account: Account) -> None:
    n = 203
    orders = [make_order(f"o-{i}", qty=float(i + 1)) for i in range(n)]
    fills = [make_fill(f"f-{i}", f"o-{i}", qty=float(i + 1)) for i in range(n)]
    position = Position(account="acct", symbol="AAPL", qty=float(n), avg_price=100.0)
    store.commit_many([BrokerChange(orders=orders), BrokerChange(
        fills=fills, positions=[position], accounts=[make_account(cash=5.0)])])
    assert [o.id for o in store.list_orders("acct", limit=1000)] == [o.id for o in orders]
    assert store.list_orders("acct", limit=1000) == orders
    assert store.list_fills("acct", limit=1000) == fills
    assert store.get_account("acct") == make_account(cash=5.0)
    # the same orders again, filled: updated in place, not added
    done = [o.model_copy(update={"status": OrderStatus.FILLED}) for o in orders]
    store.commit(BrokerChange(orders=done))
    assert store.list_orders("acct", limit=1000) == done


def test_in_a_group_the_order_of_an_unknown_account_is_named_and_nothing_is_kept(
        store: SQLiteStore, account: Account) -> None:
    orders = [make_order(f"o-{i}") for i in range(40)]
    orders[17] = make_order("o-17", account="ghost")
    with pytest.raises(StoreError, match=r"order 'o-17' belongs to account 'ghost', which is "
                                         r"not in .*; create the account first"):
        store.commit(BrokerChange(orders=orders))
    assert store.list_orders("acct") == []


def test_in_a_group_an_order_moving_to_another_account_is_named_and_nothing_is_kept(
        store: SQLiteStore, account: Account) -> None:
    store.create_account(make_account("other"))
    store.commit(BrokerChange(orders=[make_order("o-5")]))
    orders = [make_order(f"o-{i}") for i in range(10)]
    orders[5] = make_order("o-5", account="other")
    with pytest.raises(StoreError, match=r"order 'o-5' is stored for account 'acct' and symbol "
                                         r"'AAPL'; an update may not move it to account 'other'"):
        store.commit(BrokerChange(orders=orders))
    assert store.list_orders("acct") == [make_order("o-5")]


def test_in_a_group_a_fill_stored_before_is_named_and_nothing_is_kept(
        store: SQLiteStore, account: Account) -> None:
    store.commit(BrokerChange(orders=[make_order("o-1")], fills=[make_fill("f-3", "o-1")]))
    fills = [make_fill(f"f-{i}", "o-1") for i in range(10, 40)] + [make_fill("f-3", "o-1")]
    with pytest.raises(StoreError, match="'f-3' of order 'o-1' is already stored"):
        store.commit(BrokerChange(fills=fills, accounts=[make_account(cash=1.0)]))
    assert store.list_fills("acct") == [make_fill("f-3", "o-1")]
    assert store.get_account("acct") == account
