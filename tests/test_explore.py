"""The explorer: its API over tiny trained runs (every endpoint, every kind of bad input), the
CLI's door, and the page in a real browser where chromium is installed."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import shutil
import socket
import sys
import threading
import time

import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient
from PIL import Image

import untwine
from tests.conftest import run_cli, write_survey
from untwine.errors import UntwineError
from untwine.explore import Explorer
from untwine.explore.app import MOST_UPLOAD_BYTES, create_app

TINY = ["--steps", "30", "--batch-size", "8", "--no-progress", "model.hidden=[64]"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two tiny β-VAEs on dSprites (3 and 4 latents), the first evaluated and reported."""
    made = []
    for latents in ("3", "4"):
        run = tmp_path_factory.mktemp("run") / f"z{latents}"
        run_cli("train", "--out", str(run), "--latent-dim", latents, "--seed", latents, *TINY)
        made.append(run)
    run_cli("evaluate", str(made[0]), "--metrics", "mig", "--samples", "200")
    return made


@pytest.fixture(scope="module")
def client(two_runs):
    return TestClient(create_app(Explorer(two_runs)))


def _png(data_url: str) -> np.ndarray:
    assert data_url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))


def test_describe_names_every_latent_by_kl_with_its_factor_and_the_scores(client, two_runs):
    info = client.get("/api/describe").json()
    assert info["dataset"]["name"] == "dsprites" and info["dataset"]["size"] == 737280
    assert info["dataset"]["factor_names"][0] == "shape" and info["dataset"]["by_factors"]
    first, second = info["runs"]
    assert [first["name"], second["name"]] == ["z3", "z4"]
    assert sorted(latent["index"] for latent in second["latents"]) == [0, 1, 2, 3]
    kls = [latent["information"] for latent in first["latents"]]
    assert kls == sorted(kls, reverse=True)  # ordered by KL
    assert all(latent["collapsed"] == (latent["information"] < 0.01) for latent in first["latents"])
    assert set(first["scores"]) >= {"mig"} and second["scores"] == {}  # z4 is not evaluated
    assert all(
        latent["factor"] in (None, *info["dataset"]["factor_names"]) for latent in first["latents"]
    )


def test_an_observation_by_index_or_by_factors_is_the_same_image_with_each_runs_code(client):
    by_index = client.get("/api/observation", params={"index": 1234}).json()
    factors = ",".join(map(str, by_index["factors"]))
    by_factors = client.get("/api/observation", params={"factors": factors}).json()
    assert by_factors["index"] == 1234 and by_factors["image"] == by_index["image"]
    assert _png(by_index["image"]).shape == (64, 64)
    assert [len(code) for code in by_index["codes"]] == [3, 4]
    random = client.get("/api/observation", params={"seed": 7}).json()
    assert random == client.get("/api/observation", params={"seed": 7}).json()


def test_a_decoded_png_follows_the_slider(client):
    code = client.get("/api/observation", params={"index": 50}).json()["codes"][0]
    still = client.get("/api/decode.png", params={"run": 0, "z": ",".join(map(str, code))})
    assert still.status_code == 200 and still.headers["content-type"] == "image/png"
    moved = list(code)
    moved[0] += 2.5
    turned = client.get("/api/decode.png", params={"run": 0, "z": ",".join(map(str, moved))})
    a, b = (np.asarray(Image.open(io.BytesIO(r.content)), dtype=int) for r in (still, turned))
    assert a.shape == (64, 64) and np.abs(a - b).sum() > 0


def test_a_batch_decode_matches_single_decodes(client):
    codes = [[0.0, 0.0, 0.0], [1.0, -1.0, 0.5]]
    batch = client.post("/api/decode", json={"run": 0, "codes": codes}).json()["decoded"]
    for code, decoded in zip(codes, batch, strict=True):
        single = client.get("/api/decode.png", params={"run": 0, "z": ",".join(map(str, code))})
        assert np.array_equal(
            _png(decoded["image"]), np.asarray(Image.open(io.BytesIO(single.content)))
        )


def test_an_uploaded_image_is_prepared_as_folder_data_and_encoded(client):
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (90, 120, 3), np.uint8))
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG")
    answer = client.post("/api/encode", content=buffer.getvalue()).json()
    assert _png(answer["image"]).shape == (64, 64)  # centre-cropped, resized, grey as the data
    assert [len(code) for code in answer["codes"]] == [3, 4]


@pytest.mark.parametrize(
    ("method", "path", "payload", "message"),
    [
        ("get", "/api/decode.png", {"run": 0, "z": "0,0"}, "each code must hold 3 numbers"),
        ("get", "/api/decode.png", {"run": 0, "z": "0,nan,0"}, "z must hold finite numbers"),
        ("get", "/api/decode.png", {"run": 0, "z": "0,a,0"}, "z must be comma-separated numbers"),
        ("get", "/api/decode.png", {"run": 5, "z": "0,0,0"}, "run must be 0 to 1, got 5"),
        ("get", "/api/observation", {"index": 737280}, "index must be 0 to 737279"),
        ("get", "/api/observation", {"index": -1}, "index must be 0 to 737279"),
        ("get", "/api/observation", {"factors": "0,0,0,0,32"}, "position_y takes 0 to 31"),
        ("get", "/api/observation", {"factors": "1,2"}, "give 5 factor values"),
        ("get", "/api/observation", {}, "give one of index, factors or seed"),
        ("get", "/api/observation", {"index": "x"}, "index: "),
        ("post", "/api/decode", {"run": 0, "codes": [[0, 0]]}, "each code must hold 3 numbers"),
        ("post", "/api/decode", {"run": 0, "codes": []}, "give 1 to 256 codes"),
        ("post", "/api/decode", {"run": 0, "codes": [[0, 0, 0]] * 257}, "give 1 to 256 codes"),
        ("post", "/api/decode", {"run": 0}, "codes: Field required"),
        ("post", "/api/encode", b"not an image", "cannot read the upload as an image"),
        ("post", "/api/encode", b"", "send the image as the request's body"),
    ],
)
def test_bad_requests_are_4xx_with_one_line(client, method, path, payload, message):
    if method == "get":
        response = client.get(path, params=payload)
    elif isinstance(payload, bytes):
        response = client.post(path, content=payload)
    else:
        response = client.post(path, json=payload)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert message in error and "\n" not in error


def test_non_finite_json_codes_are_refused(client):
    body = '{"run": 0, "codes": [[0, NaN, 0]]}'
    response = client.post(
        "/api/decode", content=body, headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500


def test_huge_or_corrupt_or_bomb_uploads_are_refused(client):
    too_big = client.post("/api/encode", content=b"\0" * (MOST_UPLOAD_BYTES + 1))
    assert too_big.status_code == 400 and "at most 10 MB" in too_big.json()["error"]
    buffer = io.BytesIO()
    Image.new("L", (64, 64)).save(buffer, "PNG")
    cut = client.post("/api/encode", content=buffer.getvalue()[:60])
    assert cut.status_code == 400 and "image" in cut.json()["error"]
    bomb = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(bomb, "PNG")  # 100M pixels in a few kB
    answer = client.post("/api/encode", content=bomb.getvalue())
    assert answer.status_code == 400 and "at most 40,000,000 pixels" in answer.json()["error"]


def test_the_page_and_its_assets_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and "untwine explorer" in page.text
    for asset in ("/static/explore.js", "/static/explore.css"):
        assert client.get(asset).status_code == 200
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN, no external font
    assert client.get("/static/../../runs.py").status_code == 404


def test_runs_on_different_data_cannot_sit_side_by_side(two_runs, tmp_path):
    other = tmp_path / "noisy"
    run_cli("train", "--out", str(other), "--dataset", "dsprites-noisy", *TINY)
    with pytest.raises(UntwineError, match="runs shown side by side must share their data"):
        Explorer([two_runs[0], other])


def test_the_cli_refuses_a_busy_port_and_a_study_without_the_score(two_runs, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        result = run_cli("explore", str(two_runs[0]), "--port", port, check=False)
    assert result.returncode == 2 and "try --port 0" in result.stderr
    study = tmp_path / "study"
    (study / "runs").mkdir(parents=True)
    shutil.copytree(two_runs[1], study / "runs" / "a")
    result = run_cli("explore", str(study), "--sort", "mig", check=False)
    assert result.returncode == 2
    assert result.stderr == "error: no run has a 'mig' score; run untwine evaluate first\n"


def test_knobs_written_by_the_report_are_reused(two_runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(two_runs[0], run)
    (run / "figures").mkdir(exist_ok=True)
    knobs = [{"latent": i, "factor": "shape", "score": 0.5} for i in range(3)]
    (run / "figures" / "knobs.json").write_text(json.dumps(knobs))
    latents = Explorer([run]).describe()["runs"][0]["latents"]
    assert {latent["factor"] for latent in latents} == {"shape"}


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def _serving(run_dirs):
    """The explorer for `run_dirs` on a free local port, in a thread; its URL."""
    server = uvicorn.Server(uvicorn.Config(create_app(Explorer(run_dirs)), log_level="warning"))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def served(two_runs):
    with _serving(two_runs) as url:
        yield url


@contextlib.contextmanager
def _browser_page(url):
    """A chromium page at `url` once the first decoded image shows; console errors collected."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.errors = []
        page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
        page.goto(url)
        page.wait_for_function("(document.getElementById('decoded-0') || {}).naturalWidth > 0")
        try:
            yield page
        finally:
            browser.close()


def _pixels(page, selector: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(page.locator(selector).screenshot())).convert("L"))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make browser)")
def test_in_a_browser_a_slider_turns_the_image_and_a_factor_moves_the_data(served, tmp_path):
    with _browser_page(served) as page:
        before = _pixels(page, "#decoded-0")
        first = page.locator("#runs input[type=range]").first
        first.focus()
        for _ in range(40):  # 40 steps of 0.05: two units along the strongest latent
            first.press("ArrowRight")
        page.wait_for_timeout(500)
        assert np.abs(_pixels(page, "#decoded-0").astype(int) - before).sum() > 0

        truth = _pixels(page, "#observation")
        scale = page.locator("#factor-1")  # scale: the true image grows, the codes follow it
        scale.focus()
        for _ in range(5):
            scale.press("ArrowRight")
        page.wait_for_timeout(800)
        assert np.abs(_pixels(page, "#observation").astype(int) - truth).sum() > 0
        assert page.locator("#message").text_content() == ""
        page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
        assert page.errors == []


def test_a_table_run_shows_rows_in_the_tables_own_units(tmp_path):
    lines = write_survey(tmp_path / "survey.csv", 200)
    run = tmp_path / "run"
    table = f"table:{tmp_path / 'survey.csv'}"
    run_cli("train", "--dataset", table, "--factors", "age,region", "--out", str(run), *TINY)
    client = TestClient(create_app(Explorer([run])))
    info = client.get("/api/describe").json()
    assert info["dataset"]["kind"] == "table" and info["dataset"]["feature_names"] == [
        "income",
        "hours",
    ]
    start = client.get("/api/observation", params={"index": 3}).json()
    income = float(lines[4].split(",")[2])
    assert start["row"]["income"] == pytest.approx(income, rel=1e-5)  # the table's units
    decoded = client.post("/api/decode", json={"run": 0, "codes": start["codes"]}).json()
    assert set(decoded["decoded"][0]["row"]) == {"income", "hours"}
    assert 500 < decoded["decoded"][0]["row"]["income"] < 5000  # dollars, not z-scores
    png = client.get("/api/decode.png", params={"run": 0, "z": "0,0,0"})
    assert png.status_code == 400 and "POST /api/decode" in png.json()["error"]
    upload = client.post("/api/encode", content=b"\x89PNG")
    assert upload.status_code == 400 and "table" in upload.json()["error"]


@pytest.fixture(scope="module")
def infogan_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("infogan") / "run"
    codes = ["model.continuous=4", "model.categorical=[10]"]
    run_cli(
        "train",
        "--model",
        "infogan",
        "--out",
        str(run),
        "--steps",
        "30",
        "--batch-size",
        "8",
        *codes,
    )
    return run


def test_an_infogan_shows_sliders_for_its_continuous_codes_and_choices_for_its_categories(
    infogan_run,
):
    client = TestClient(create_app(Explorer([infogan_run])))
    (run,) = client.get("/api/describe").json()["runs"]
    assert run["generator"] and run["latent_dim"] == 5
    continuous, (categorical,) = run["latents"][:4], run["latents"][4:]
    assert all(c["choices"] == 0 and (c["low"], c["high"]) == (-1, 1) for c in continuous)
    assert categorical["choices"] == 10 and all(c["information"] is None for c in run["latents"])
    start = client.get("/api/observation", params={"index": 9}).json()["codes"][0]
    assert start[4] in range(10)  # Q's reading of the category

    def image(z, noise=0):
        query = {"run": 0, "z": ",".join(map(str, z)), "noise": noise}
        response = client.get("/api/decode.png", params=query)
        assert response.status_code == 200, response.text
        return np.asarray(Image.open(io.BytesIO(response.content)), dtype=int)

    base = [0.0, 0.0, 0.0, 0.0, 0]
    assert np.array_equal(image(base), image(base))  # the same noise seed, the same image
    assert np.abs(image(base) - image(base, noise=1)).sum() > 0
    assert np.abs(image(base) - image([0.0, 0.0, 0.0, 0.0, 7])).sum() > 0
    for bad, message in (([0, 0, 0, 0, 10], "0 to 9"), ([0, 0, 0, 0, 1.5], "categorical")):
        response = client.get("/api/decode.png", params={"run": 0, "z": ",".join(map(str, bad))})
        assert response.status_code == 400 and message in response.json()["error"]
    response = client.get("/api/decode.png", params={"run": 0, "z": "0,0,0,0,0", "noise": -1})
    assert response.status_code == 400 and "noise must be a seed" in response.json()["error"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make browser)")
def test_in_a_browser_an_infogans_category_and_noise_change_its_image(infogan_run):
    with _serving([infogan_run]) as url, _browser_page(url) as page:
        before = _pixels(page, "#decoded-0")
        category = page.locator("#runs select").first
        current = category.input_value()
        category.select_option(str((int(current) + 5) % 10))
        page.wait_for_timeout(500)
        chosen = _pixels(page, "#decoded-0")
        assert np.abs(chosen.astype(int) - before).sum() > 0
        page.get_by_role("button", name="new noise").click()
        page.wait_for_timeout(500)
        assert np.abs(_pixels(page, "#decoded-0").astype(int) - chosen).sum() > 0
        assert page.errors == []


@pytest.fixture(scope="module")
def qlae_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("qlae") / "run"
    shape = ["model.hidden=[64]", "model.values_per_latent=5"]
    run_cli(
        "train", "--model", "qlae", "--out", str(run), "--steps", "30", "--batch-size", "8", *shape
    )
    return run


def test_a_quantised_latents_slider_spans_its_values_and_its_code_is_one_of_them(qlae_run):
    client = TestClient(create_app(Explorer([qlae_run])))
    (run,) = client.get("/api/describe").json()["runs"]
    values = untwine.load_run(qlae_run).latent_values().tolist()
    assert not run["generator"] and run["latent_dim"] == 10  # twice dSprites' factors
    for latent in run["latents"]:
        assert latent["measure"] == "H" and latent["values"] == pytest.approx(
            values[latent["index"]]
        )
        assert (latent["low"], latent["high"]) == (latent["values"][0], latent["values"][-1])
    start = client.get("/api/observation", params={"index": 5}).json()["codes"][0]
    assert all(min(abs(v - c) for v in values[d]) < 1e-6 for d, c in enumerate(start))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make browser)")
def test_in_a_browser_a_quantised_latents_slider_snaps_to_its_values(qlae_run):
    with _serving([qlae_run]) as url, _browser_page(url) as page:
        latent = page.evaluate("state.info.runs[0].latents[0]")
        slider = page.locator(f"#z-0-{latent['index']}")
        for _ in range(3):
            slider.focus()
            slider.press("ArrowRight")
            page.wait_for_timeout(200)
            value = page.evaluate(f"state.values[0][{latent['index']}]")
            assert min(abs(v - value) for v in latent["values"]) < 1e-9
        page.get_by_role("button", name="▶").first.click()
        page.wait_for_timeout(1000)
        value = page.evaluate(f"state.values[0][{latent['index']}]")
        assert min(abs(v - value) for v in latent["values"]) < 1e-9
        assert page.errors == []


def test_without_fastapi_the_cli_names_the_install(two_runs, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if `untwine[explore]` were absent
    result = run_cli("explore", str(two_runs[0]), check=False)
    assert result.returncode == 2
    assert result.stderr == (
        'error: the explorer needs FastAPI and uvicorn: pip install "untwine[explore]"\n'
    )


def test_listening_beyond_this_machine_warns_and_the_url_is_printed(two_runs, monkeypatch):
    served = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets: served.append(sockets))
    result = run_cli("explore", str(two_runs[0]), "--host", "0.0.0.0", "--port", "0")
    (listener,) = served[0]
    port = listener.getsockname()[1]
    listener.close()
    assert result.stdout == f"explorer: http://0.0.0.0:{port}/  (1 run(s); Ctrl-C stops it)\n"
    assert "warning: listening on 0.0.0.0: anyone who reaches this machine" in result.stderr
