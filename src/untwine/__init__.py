"""untwine: disentangled representation learning, trained, measured and seen on one stack."""

from untwine.allocator import reuse_freed_memory
from untwine.config import RunConfig, resolve_config
from untwine.data import Dataset, GroundTruthDataset, load_dataset
from untwine.errors import UntwineError
from untwine.models import create_model
from untwine.report import report
from untwine.runs import load_run, read_config
from untwine.train import train
from untwine.viz import traverse

__version__ = "0.1.0"

__all__ = [
    "Dataset",
    "GroundTruthDataset",
    "RunConfig",
    "UntwineError",
    "create_model",
    "load_dataset",
    "load_run",
    "read_config",
    "report",
    "resolve_config",
    "reuse_freed_memory",
    "train",
    "traverse",
]
