"""The quality benchmark: a tiny budget end to end, its table, and that a rerun resumes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "quality.py"


def _quality(out, *extra):
    args = ["--models", "vae,infogan", "--seeds", "0", "--images", "32", "--batch-size", "8"]
    args += ["--samples", "100", "--metrics", "mig", "--out", str(out), *extra]
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600
    )


def test_quality_writes_rows_and_a_table_and_a_rerun_keeps_them(tmp_path):
    first = _quality(tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [(r["model"], r["seed"], r["steps"], r["images"]) for r in rows] == [
        ("vae", 0, 4, 32),
        ("infogan", 0, 4, 32),
    ]
    assert all(0 <= r["mig"] <= 1 and r["images_per_s"] > 0 for r in rows)
    table = (tmp_path / "results.md").read_text().splitlines()
    assert table[0].startswith("| model | seeds | images | images/s | mig |")
    assert table[2].startswith("| vae | 1 | 32 |") and table[3].endswith("| - | - | - |")
    again = _quality(tmp_path)
    assert again.returncode == 0 and json.loads(again.stdout)["rows"] == rows
    refused = _quality(tmp_path, "--set", "train.lr=1e-3")
    assert refused.returncode != 0 and "another budget or setting" in refused.stderr
