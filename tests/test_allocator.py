"""The allocator setting the untwine command and sweep workers run under."""

from __future__ import annotations

import subprocess
import sys

import pytest

FAULTS = """
import resource, sys, torch
from untwine.allocator import reuse_freed_memory
if sys.argv[1] == "reuse":
    assert reuse_freed_memory()
torch.ones(10 << 20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    torch.ones(10 << 20)  # 40 MB, freed at once: a conv layer's activations, batch after batch
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sets glibc's allocator")
def test_reusing_freed_memory_stops_large_blocks_faulting_in_again():
    pages = (40 << 20) // 4096
    default, reuse = _page_faults("default"), _page_faults("reuse")
    assert default > 15 * pages  # mapped afresh each time: 20 x 10,240 faults
    assert reuse < default / 3  # the first once or twice (more where the kernel reclaims)
