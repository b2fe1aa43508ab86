"""The payoff picture: its numbers, and a page that opens offline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sandtrade.options import OptionChain, build_strategy
from sandtrade.options.picture import payoff_data, write_payoff_html

from .conftest import NOW


def test_payoff_page_is_self_contained_with_break_evens(tmp_path: Path,
                                                        chain: OptionChain) -> None:
    plan = build_strategy("iron_condor", chain, expiry="2026-01-16", short_delta=0.16, width=5)
    data = payoff_data(plan, now=NOW)
    assert data.breakevens == plan.breakevens and data.spot == 100.0
    # at expiry, between the shorts the condor keeps its credit; today it is worth less
    inside = min(range(len(data.prices)), key=lambda i: abs(data.prices[i] - 100))
    assert data.at_expiry[inside] == pytest.approx(plan.max_profit)
    assert data.today[inside] < data.at_expiry[inside]
    assert min(data.at_expiry) == pytest.approx(-(plan.max_loss or 0))
    page = write_payoff_html(data, tmp_path / "condor.html").read_text()
    assert "Plotly.newPlot" in page and "break-even" in page
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=\"?https?:", page)
