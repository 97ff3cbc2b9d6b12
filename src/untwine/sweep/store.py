"""The results store: one SQLite file in the study directory, a row per run.

Each row holds the run's config (and its hash), its status (`pending`, `done`, `failed`), its
scores and its error. Every change is committed at once, so a killed sweep loses nothing.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from untwine.config import first_difference, resolve_config
from untwine.errors import UntwineError
from untwine.sweep.study import StudyRun

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    name TEXT PRIMARY KEY,
    config_hash TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    metrics TEXT,
    error TEXT,
    train_s REAL,
    updated REAL NOT NULL
)
"""


class ResultStore:
    """The runs of one study directory, as rows of `study.db`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, isolation_level=None)  # autocommit
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute(SCHEMA)
            (verdict,) = self._db.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError as error:
            verdict = str(error)
        if verdict != "ok":
            self._db.close()
            raise UntwineError(
                f"{self.path} is damaged ({verdict}); every run's folder under "
                f"{self.path.parent / 'runs'} still holds its weights: move {self.path.name} "
                "away and rerun the same command to score the finished runs again, not retrain "
                "them"
            )

    def close(self) -> None:
        self._db.close()

    def add(self, runs: list[StudyRun]) -> None:
        """Add new runs as pending; a run whose `train.steps` grew is pending again.

        Any other change to a stored run's config is refused: its directory holds what the old
        config trained.
        """
        for run in runs:
            new = json.loads(json.dumps(run.config.to_dict()))  # tuples as the store has them
            row = self._row(run.name)
            if row is None:
                self._write(run.name, run, "pending")
                continue
            # read with today's defaults, as a run directory's config is: an option added
            # since the run trained takes the default that trains as before
            old = json.loads(json.dumps(resolve_config(json.loads(row["config"])).to_dict()))
            difference = first_difference(old, new)
            if difference:
                key, was, now = difference
                raise UntwineError(
                    f"{self.path.parent}: run {run.name} trained with {key}={was!r} (the study "
                    f"now says {now!r}); a study's runs keep their settings (only train.steps "
                    "may grow): use another --out"
                )
            if new["train"]["steps"] < old["train"]["steps"]:
                raise UntwineError(
                    f"{self.path.parent}: run {run.name} trained to train.steps="
                    f"{old['train']['steps']}, more than the study's {new['train']['steps']}"
                )
            grew = new["train"]["steps"] > old["train"]["steps"]
            status = "pending" if grew or row["status"] != "done" else "done"
            self._write(run.name, run, status, keep=status == "done")

    def status(self, name: str) -> str | None:
        row = self._row(name)
        return row["status"] if row else None

    def finish(self, name: str, metrics: dict[str, Any], train_s: float) -> None:
        self._db.execute(
            "UPDATE runs SET status='done', metrics=?, error=NULL, train_s=?, updated=? "
            "WHERE name=?",
            (json.dumps(metrics), train_s, time.time(), name),
        )

    def add_scores(self, name: str, scores: dict[str, Any]) -> None:
        """Merge `scores` into a finished run's metrics (a study-level score such as UDR)."""
        metrics = {**_as_dict(self._row(name))["metrics"], **scores}
        self._db.execute(
            "UPDATE runs SET metrics=?, updated=? WHERE name=?",
            (json.dumps(metrics), time.time(), name),
        )

    def fail(self, name: str, error: str) -> None:
        self._db.execute(
            "UPDATE runs SET status='failed', error=?, updated=? WHERE name=?",
            (error, time.time(), name),
        )

    def rows(self, names: list[str]) -> list[dict[str, Any]]:
        """The rows of `names`, in that order: name, status, metrics (a dict), error, train_s."""
        found = (self._row(name) for name in names)
        return [_as_dict(row) for row in found if row is not None]

    def every_run(self) -> list[dict[str, Any]]:
        """Every row in the order the runs were added, each with its config as a dict too."""
        rows = self._db.execute("SELECT * FROM runs ORDER BY rowid").fetchall()
        return [{**_as_dict(row), "config": json.loads(row["config"])} for row in rows]

    def _row(self, name: str) -> sqlite3.Row | None:
        return self._db.execute("SELECT * FROM runs WHERE name=?", (name,)).fetchone()

    def _write(self, name: str, run: StudyRun, status: str, keep: bool = False) -> None:
        """Insert or replace a run's config and status; `keep` keeps its scores."""
        config = json.dumps(run.config.to_dict(), sort_keys=True)
        if keep:
            self._db.execute(
                "UPDATE runs SET config_hash=?, config=?, status=? WHERE name=?",
                (run.config_hash, config, status, name),
            )
            return
        self._db.execute(
            "INSERT OR REPLACE INTO runs (name, config_hash, config, status, updated) "
            "VALUES (?, ?, ?, ?, ?)",
            (name, run.config_hash, config, status, time.time()),
        )


def _as_dict(row: sqlite3.Row) -> dict[str, Any]:
    """A stored run as the study reads it: name, status, metrics (a dict), error, train_s."""
    return {
        "name": row["name"],
        "status": row["status"],
        "metrics": json.loads(row["metrics"]) if row["metrics"] else {},
        "error": row["error"],
        "train_s": row["train_s"],
    }
