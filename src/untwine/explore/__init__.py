"""The explorer: a trained model's knobs turned in the browser (`untwine explore RUN`).

`explorer.py` holds what is served (runs, latents named and ordered, encode and decode);
`app.py` the web layer (FastAPI, from `untwine[explore]`); `static/` the page, served offline.
"""

from untwine.explore.explorer import Explorer

__all__ = ["Explorer"]
