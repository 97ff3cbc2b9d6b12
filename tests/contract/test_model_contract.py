"""Every registered model keeps the model contract (see model_contract.py)."""

from __future__ import annotations

import pytest

from tests.contract.model_contract import CHECKS
from untwine.models import MODELS


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__.removeprefix("check_"))
@pytest.mark.parametrize("name", MODELS.names())
def test_model_keeps_the_contract(name, check, tmp_path):
    check(name, tmp_path)
