"""Config resolution: defaults filled, overrides applied, mistakes caught at the door."""

from __future__ import annotations

import pytest

from untwine.config import apply_overrides, first_difference, read_yaml, resolve_config, write_yaml
from untwine.errors import UntwineError

from .conftest import VAES


def test_an_empty_config_resolves_to_complete_defaults():
    config = resolve_config({}).to_dict()
    assert config["data"] == {"name": "dsprites"}
    assert config["model"] == {
        "name": "betavae",
        "latent_dim": 10,
        "arch": "mlp",
        "hidden": (1200, 1200),
        "likelihood": "bernoulli",
        "likelihood_scale": 1.0,
        "learn_scale": False,
        "activation": "relu",
        "beta": 16.0,
        "beta_schedule": "constant",
        "beta_period": 10000,
    }
    assert config["train"]["steps"] == 20000 and config["train"]["lr"] == 1e-3


def test_overrides_parse_values_as_yaml_including_exponents():
    raw = apply_overrides(
        {"model": {"name": "betavae"}}, ["model.beta=6", "train.lr=5e-4", "train.device=cpu"]
    )
    config = resolve_config(raw)
    assert config.model.options["beta"] == 6.0 and config.train.lr == 5e-4
    assert config.train.device == "cpu"


def test_yaml_round_trip_gives_the_same_config(tmp_path):
    config = resolve_config(apply_overrides({}, ["model.name=vae", "train.steps=7"]))
    (tmp_path / "c.yaml").write_text(write_yaml(config))
    assert resolve_config(read_yaml(tmp_path / "c.yaml")) == config


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"optimizer": {}}, "unknown config section 'optimizer'"),
        ({"train": {"stepz": 5}}, "unknown option 'stepz' for train"),
        ({"train": {"steps": -5}}, "train.steps must be at least 1"),
        ({"train": {"lr": 0}}, "train.lr must be positive"),
        ({"train": {"device": "tpu"}}, "train.device must be one of auto, cpu, cuda"),
        ({"model": {"name": "vae", "beta": 4}}, "unknown option 'beta' for model 'vae'"),
        ({"model": {"name": "gan"}}, "unknown model 'gan'; available: adagvae, adamlvae"),
        ({"data": {"name": "mnist"}}, "unknown dataset 'mnist'"),
        ({"model": [1, 2]}, "section 'model' must be a mapping"),
    ],
)
def test_mistakes_are_named_precisely(raw, message):
    with pytest.raises(UntwineError, match=message):
        resolve_config(raw)


@pytest.mark.parametrize("item", ["beta=4", "model.beta", "=4", "optim.lr=1"])
def test_malformed_overrides_are_refused(item):
    with pytest.raises(UntwineError):
        apply_overrides({}, [item])


def test_unreadable_or_invalid_yaml_is_a_user_error(tmp_path):
    with pytest.raises(UntwineError, match="cannot read config file"):
        read_yaml(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("train: [steps: 3\n")
    with pytest.raises(UntwineError, match="not valid YAML"):
        read_yaml(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(UntwineError, match="must hold a mapping"):
        read_yaml(tmp_path / "list.yaml")


@pytest.mark.parametrize("name", VAES)
def test_vaes_default_to_the_measured_backbone_and_the_user_still_wins(name):
    chosen = resolve_config({"model": {"name": name}})
    assert (chosen.model.options["arch"], chosen.train.batch_size, chosen.train.lr) == (
        "mlp",
        256,
        1e-3,
    )
    told = resolve_config({"model": {"name": name, "arch": "conv64"}, "train": {"batch_size": 64}})
    assert (told.model.options["arch"], told.train.batch_size, told.train.lr) == (
        "conv64",
        64,
        1e-3,
    )


def test_first_difference_names_what_changes_the_run_and_passes_what_does_not():
    old = resolve_config({"model": {"beta": 4}}).to_dict()
    resumed = resolve_config({"model": {"beta": 4}, "train": {"steps": 9, "device": "cpu"}})
    assert first_difference(old, resumed.to_dict()) is None
    built = {**old, "model": {**old["model"], "observation_shape": [1, 64, 64]}}
    assert first_difference(built, old) is None  # read off the data, not a setting
    changed = resolve_config({"model": {"beta": 6}, "train": {"lr": 1e-3}}).to_dict()
    assert first_difference(old, changed) == ("model.beta", 4.0, 6.0)
