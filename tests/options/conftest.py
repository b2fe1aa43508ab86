"""A synthetic chain on a fixed day, shared by the options tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sandtrade.options import OptionChain, OptionsSettings, synthetic_chain

NOW = datetime(2025, 12, 8, 15, 0, tzinfo=UTC)


@pytest.fixture
def settings() -> OptionsSettings:
    return OptionsSettings(strike_step=5.0, strikes_each_side=12)


@pytest.fixture
def chain(settings: OptionsSettings) -> OptionChain:
    return synthetic_chain("XYZ", 100.0, NOW, settings)
