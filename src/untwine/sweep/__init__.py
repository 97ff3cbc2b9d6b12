"""Sweeps: a study file expands to runs (model x hyperparameters x seeds), trained and scored on
this machine N at a time, recorded in a SQLite store so that a killed sweep resumes."""

from untwine.sweep.runner import run_study
from untwine.sweep.study import Study, StudyRun, load_study

__all__ = ["Study", "StudyRun", "load_study", "run_study"]
