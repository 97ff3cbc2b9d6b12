"""Explorer speed: one slider move, request to PNG, for the default β-VAE and the conv64 model,
and the time from `untwine explore` starting to its first page.

Prints one JSON object. The runs are made here (one training step each: the decoder's cost
does not depend on how long it trained) in a temporary folder. A move is timed as the page
asks for it, over HTTP to a real server process; beside it, the same decode and PNG encoding
in this process (no HTTP), so the figures can be read as a ratio on a noisy machine. Targets:
95th percentile at most 30 ms (default model) and 60 ms (conv64); first page within 5 s;
and, where chromium is installed, at least 15 images a second shown while a slider is dragged.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

TARGETS_MS = {"default": 30.0, "conv64": 60.0}
FIRST_PAGE_TARGET_S = 5.0
BROWSER_TARGET = 15.0  # images a second the page shows while a slider is dragged


def train_one_step(out: Path, arch: str) -> None:
    command = [sys.executable, "-m", "untwine", "train", "--out", str(out), "--steps", "1"]
    subprocess.run([*command, "--arch", arch, "--no-progress"], check=True, capture_output=True)


def start_server(run: Path) -> tuple[subprocess.Popen, str, float]:
    """`untwine explore RUN --port 0`; its URL and the seconds until / answered."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "untwine", "explore", str(run), "--port", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    url = re.search(r"http://\S+", line).group(0)
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return server, url, time.perf_counter() - started
        except OSError:
            time.sleep(0.02)


def time_moves(url: str, latent_dim: int, moves: int) -> list[float]:
    """Milliseconds per slider move: one latent walks -3..3 as a drag would."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=latent_dim)
    times = []
    for value in np.linspace(-3, 3, moves):
        z[0] = value
        query = ",".join(f"{v:.4f}" for v in z)
        start = time.perf_counter()
        urllib.request.urlopen(f"{url}api/decode.png?run=0&z={query}").read()
        times.append((time.perf_counter() - start) * 1000)
    return times


def time_in_process(run: Path, moves: int) -> list[float]:
    """The same decodes and PNG encodings without the server: the floor a move can reach."""
    from untwine.explore import Explorer
    from untwine.explore.app import _png

    explorer = Explorer([run])
    z = np.random.default_rng(0).normal(size=explorer.runs[0].model.latent_dim)
    times = []
    for value in np.linspace(-3, 3, moves):
        z[0] = value
        start = time.perf_counter()
        _png(explorer.decode(0, [z.tolist()])[0])
        times.append((time.perf_counter() - start) * 1000)
    return times


DRAG = """async () => {
  const img = document.getElementById("decoded-0");
  const slider = document.querySelector("#runs input[type=range]");
  let shown = 0;
  img.addEventListener("load", () => shown++);
  const start = performance.now();
  let step = 0;
  while (performance.now() - start < 3000) {  // a 60 Hz drag back and forth for 3 s
    slider.value = Math.sin(step++ / 20) * 3;
    slider.dispatchEvent(new Event("input"));
    await new Promise((done) => setTimeout(done, 16));
  }
  await new Promise((done) => setTimeout(done, 200));
  return shown / ((performance.now() - start) / 1000);
}"""


def browser_updates_per_s(url: str) -> float | None:
    """Images the page shows per second while a slider is dragged (None without chromium)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(url)
        page.wait_for_function("(document.getElementById('decoded-0') || {}).naturalWidth > 0")
        rate = page.evaluate(DRAG)
        browser.close()
    return round(float(rate), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=300)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for label, arch in (("default", "mlp"), ("conv64", "conv64")):
            run = Path(scratch) / label
            train_one_step(run, arch)
            server, url, first_page_s = start_server(run)
            try:
                time_moves(url, 10, 20)  # warm up
                served = time_moves(url, 10, args.moves)
                dragged = browser_updates_per_s(url)
            finally:
                server.terminate()
                server.wait(timeout=30)
            floor = time_in_process(run, args.moves)
            p95 = float(np.percentile(served, 95))
            results[label] = {
                "first_page_s": round(first_page_s, 2),
                "first_page_target_s": FIRST_PAGE_TARGET_S,
                "move_ms_median": round(float(np.median(served)), 2),
                "move_ms_p95": round(p95, 2),
                "move_target_ms_p95": TARGETS_MS[label],
                "meets_target": p95 <= TARGETS_MS[label]
                and first_page_s <= FIRST_PAGE_TARGET_S
                and (dragged is None or dragged >= BROWSER_TARGET),
                "in_process_ms_median": round(float(np.median(floor)), 2),
                "served_over_in_process": round(float(np.median(served) / np.median(floor)), 2),
                "moves_per_s": round(1000 / float(np.median(served)), 1),
                "browser_images_per_s_while_dragging": dragged,
                "browser_target_images_per_s": BROWSER_TARGET,
            }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
