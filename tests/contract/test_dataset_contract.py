"""Every registered dataset keeps the dataset contract (see dataset_contract.py)."""

from __future__ import annotations

import pytest

from tests.contract.dataset_contract import CHECKS
from untwine.data import DATASETS


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__.removeprefix("check_"))
@pytest.mark.parametrize("name", DATASETS.names())
def test_dataset_keeps_the_contract(name, check, tmp_path):
    check(name, tmp_path)
