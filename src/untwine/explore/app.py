"""The explorer's web layer: a page, its assets, and a JSON/PNG API over one Explorer.

Nothing a request sends reaches the file system: the runs are fixed when the app is made.
Every mistake in a request is a 4xx with {"error": one line}; never a traceback page.
"""

from __future__ import annotations

import base64
import io
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel

from untwine.data.folder import as_pixels
from untwine.errors import UntwineError
from untwine.explore.explorer import Explorer

STATIC = Path(__file__).parent / "static"
MOST_UPLOAD_BYTES = 10 * 2**20
MOST_UPLOAD_PIXELS = 40_000_000  # Pillow's bomb guard, tighter: a photo, not a trap


class DecodeRequest(BaseModel):
    run: int
    codes: list[list[float]]
    noise: int = 0  # a generator's noise sample (InfoGAN); a VAE has none


def create_app(explorer: Explorer) -> FastAPI:
    """The app serving `explorer`: the page at /, the API under /api."""
    app = FastAPI(title="untwine explorer", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(UntwineError)
    async def refused(request: Request, error: UntwineError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}"}, status_code=422)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/describe")
    def describe() -> dict[str, Any]:
        return explorer.describe()

    @app.get("/api/observation")
    def observation(
        index: int | None = None, factors: str | None = None, seed: int | None = None
    ) -> dict[str, Any]:
        """One observation to start from: by index, by factor values (`1,0,3,...`), or random."""
        if sum(x is not None for x in (index, factors, seed)) != 1:
            raise UntwineError("give one of index, factors or seed")
        if factors is not None:
            index = explorer.index_of(_integers(factors, "factors"))
        elif seed is not None:
            index = int(np.random.default_rng(abs(seed)).integers(len(explorer.dataset)))
        x = explorer.observation(index)
        return {
            "index": index,
            "factors": explorer.factors(index),
            **_shown(explorer, x[None])[0],
            "codes": explorer.encode(x),
        }

    @app.post("/api/encode")
    async def encode(request: Request) -> dict[str, Any]:
        """An uploaded image (the request's body), prepared as `folder:` data is, encoded."""
        if not explorer.images:
            raise UntwineError("uploads are for image datasets; this one is a table")
        body = await _body(request)
        channels, size, _ = explorer.dataset.observation_shape
        x = as_pixels(_image(body), size, channels)
        return {**_shown(explorer, x[None])[0], "codes": explorer.encode(x)}

    @app.get("/api/decode.png")
    def decode_png(run: int, z: str, noise: int = 0) -> Response:
        """One decoded image as PNG: what a slider's move asks for (z: comma-separated)."""
        if not explorer.images:
            raise UntwineError("a table's rows come from POST /api/decode")
        image = explorer.decode(run, [_numbers(z, "z")], noise)[0]
        return Response(_png(image), media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.post("/api/decode")
    def decode(request: DecodeRequest) -> dict[str, Any]:
        """Several codes decoded in one batch: traversal strips, side-by-side runs."""
        decoded = explorer.decode(request.run, request.codes, request.noise)
        return {"decoded": _shown(explorer, decoded)}

    return app


def _shown(explorer: Explorer, observations: np.ndarray) -> list[dict[str, Any]]:
    """Observations as the page shows them: PNG data URLs, or rows with their column names."""
    if explorer.images:
        return [
            {"image": "data:image/png;base64," + base64.b64encode(_png(x)).decode()}
            for x in observations
        ]
    names = explorer.dataset.feature_names or [f"x{i}" for i in range(observations.shape[1])]
    rows = explorer.in_units(observations)
    return [{"row": dict(zip(names, map(float, row), strict=True))} for row in rows]


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, "PNG")
    return buffer.getvalue()


def _numbers(text: str, name: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise UntwineError(f"{name} must be comma-separated numbers, got {text[:40]!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise UntwineError(f"{name} must hold finite numbers")
    return values


def _integers(text: str, name: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise UntwineError(f"{name} must be comma-separated integers, got {text[:40]!r}") from None


async def _body(request: Request) -> bytes:
    """The request's body, refused past MOST_UPLOAD_BYTES before it is all read."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MOST_UPLOAD_BYTES:
        raise UntwineError(f"an upload may be at most {MOST_UPLOAD_BYTES // 2**20} MB")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MOST_UPLOAD_BYTES:
            raise UntwineError(f"an upload may be at most {MOST_UPLOAD_BYTES // 2**20} MB")
    if not body:
        raise UntwineError("send the image as the request's body")
    return bytes(body)


def _image(data: bytes) -> Image.Image:
    """A decoded image, or a one-line error: not an image, corrupt, or a decompression bomb."""
    unreadable = (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError)
    try:
        with warnings.catch_warnings():  # its size is checked below, against a tighter limit
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except unreadable as error:
        raise UntwineError(f"cannot read the upload as an image ({type(error).__name__})") from None
    if image.width * image.height > MOST_UPLOAD_PIXELS:
        raise UntwineError(
            f"an image may have at most {MOST_UPLOAD_PIXELS:,} pixels, this one has "
            f"{image.width * image.height:,}"
        )
    try:
        image.load()
    except unreadable as error:
        raise UntwineError(f"the uploaded image is damaged ({type(error).__name__})") from None
    return image
