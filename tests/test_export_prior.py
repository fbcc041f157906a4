"""Fitted priors through export: manifest ``prior`` files, ``export --prior``, and ``recard`` versions."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
import torch

from aeserve import checkpoint
from aeserve.card import ModelCard
from aeserve.errors import CardError, ConfigError
from aeserve.export import regenerate
from aeserve.export.recard import write_card_version
from aeserve.models import build_model
from aeserve.prior import LatentPrior
from aeserve.prior_fit import fit_prior
from aeserve.repository import Repository

ENTRY = {"checkpoint": "checkpoints/a.pt", "name": "a", "max_batch": 16, "kind": "cpu", "instances": 1,
         "preferred_batch_sizes": [4, 16], "queue_delay_us": 50, "version": 1, "prior": "priors/a.json"}


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    card = ModelCard("ae", "mlp", (1, 8, 8), 3, "bernoulli", "toy", {"hparams": '{"hidden": [16]}'})
    checkpoint.save(build_model(card), d / "checkpoints" / "a.pt")
    rng = np.random.default_rng(0)
    codes = np.concatenate([rng.normal(-3, 1, (150, 3)), rng.normal(3, 0.5, (150, 3))])
    prior, report = fit_prior(codes, np.repeat([0, 1], 150), budget_bytes=2048)
    assert report["per_class"]["0"]["components"] >= 1 and report["card_bytes"] <= 2048
    (d / "priors").mkdir()
    (d / "priors" / "a.json").write_text(json.dumps(prior.card_entries()))
    (d / "manifest.json").write_text(json.dumps([ENTRY]))
    return d


@pytest.fixture(scope="module")
def regenerated(export_dir, tmp_path_factory):
    repo = tmp_path_factory.mktemp("regen") / "repo"
    regenerate(export_dir / "manifest.json", repo)
    return repo


def copy_of(repo, tmp_path):
    shutil.copytree(repo, tmp_path / "repo")
    return tmp_path / "repo"


def test_regenerate_embeds_the_prior_file(export_dir, regenerated):
    m = Repository(regenerated).model("a")
    want = json.loads((export_dir / "priors" / "a.json").read_text())
    assert m.card.get("prior") == want["prior"] and m.card.get("prior.sha256") == want["prior.sha256"]
    for path in (m.encoder_path(), m.decoder_path()):
        meta = {p.key: p.value for p in onnx.load(path).metadata_props}
        assert meta["aeserve.prior"] == want["prior"]
    assert LatentPrior.from_card(m.card).classes == (0, 1)


def test_bad_prior_files_leave_the_repository_alone(export_dir, regenerated, tmp_path):
    repo = copy_of(regenerated, tmp_path)
    before = sorted(p.name for p in repo.rglob("*"))
    bad = tmp_path / "bad"
    (bad / "priors").mkdir(parents=True)
    (bad / "checkpoints").symlink_to(export_dir / "checkpoints")
    (bad / "manifest.json").write_text(json.dumps([ENTRY]))
    with pytest.raises(ConfigError, match="does not exist"):
        regenerate(bad / "manifest.json", repo)
    entries = json.loads((export_dir / "priors" / "a.json").read_text())
    (bad / "priors" / "a.json").write_text(json.dumps({**entries, "prior.sha256": "0" * 64}))
    with pytest.raises(CardError, match="fingerprint"):
        regenerate(bad / "manifest.json", repo)
    (bad / "priors" / "a.json").write_text(json.dumps({"prior": 3}))
    with pytest.raises(ConfigError, match="object of strings"):
        regenerate(bad / "manifest.json", repo)
    assert sorted(p.name for p in repo.rglob("*")) == before


def test_write_card_version_checks_entries(regenerated, tmp_path):
    repo = copy_of(regenerated, tmp_path)
    with pytest.raises(CardError, match="str to str"):
        write_card_version(repo, "a", {"prior.extra": 1})
    with pytest.raises(CardError, match="unknown family"):
        write_card_version(repo, "a", {"family": "gan"})
    assert write_card_version(repo, "a", {"note": "refit"}) == 2
    m = Repository(repo).model("a")
    assert m.versions == (1, 2) and m.card.get("note") == "refit" and m.card.get("prior")
