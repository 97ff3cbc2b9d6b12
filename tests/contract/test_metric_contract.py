"""Every registered metric keeps the metric contract (see metric_contract.py)."""

from __future__ import annotations

import pytest

from tests.contract.metric_contract import CHECKS
from untwine.metrics import METRICS


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__.removeprefix("check_"))
@pytest.mark.parametrize("name", list(METRICS))
def test_metric_keeps_the_contract(name, check):
    check(METRICS[name])
