"""aeserve.checkpoint: plain-data files, weights_only loading, checksums, atomic writes."""

from __future__ import annotations

import argparse
import json
import os
import zipfile

import pytest
import torch

from aeserve import checkpoint
from aeserve.card import ModelCard
from aeserve.errors import CheckpointError
from aeserve.models import build_model


def small_model(family: str = "vae", arch: str = "mlp", latent: int = 3, seed: int = 0):
    torch.manual_seed(seed)
    hp = {"hidden": [16], "channels": [4, 8], "dense": 12}
    card = ModelCard(family, arch, (1, 8, 8), latent, "bernoulli", "test",
                     {"hparams": json.dumps(hp), "metrics.test_mse": "0.5"})
    return build_model(card)


def raw_payload(model) -> dict:
    card = model.card.to_dict()
    enc = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    dec = {k: v.clone() for k, v in model.decoder.state_dict().items()}
    return {"format": checkpoint.FORMAT, "format_version": checkpoint.FORMAT_VERSION, "card": card,
            "encoder": enc, "decoder": dec, "sha256": checkpoint.digest(card, enc, dec)}


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("family", ["ae", "dae", "sparse", "contractive", "vae"])
def test_roundtrip_rebuilds_identical_model(tmp_path, family, arch):
    model = small_model(family, arch).eval()
    path = checkpoint.save(model, tmp_path / "sub" / "m.pt")
    assert path == tmp_path / "sub" / "m.pt" and os.listdir(tmp_path / "sub") == ["m.pt"]
    loaded = checkpoint.load(path)
    assert not loaded.training and type(loaded) is type(model)
    assert loaded.card == model.card and loaded.card.metrics["test_mse"] == 0.5
    assert checkpoint.read_card(path) == model.card
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        for a, b in zip(torch.atleast_1d(model.encoder(x)), torch.atleast_1d(loaded.encoder(x))):
            assert torch.equal(a, b)
        z = torch.randn(5, 3)
        assert torch.equal(model.decoder(z), loaded.decoder(z))


def test_file_is_plain_data_loadable_with_weights_only(tmp_path):
    path = checkpoint.save(small_model(), tmp_path / "m.pt")
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # like any new file, not mkstemp's 0600
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "aeserve-checkpoint" and raw["format_version"] == 1
    assert set(raw) == {"format", "format_version", "card", "encoder", "decoder", "sha256"}
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in raw["card"].items())
    assert raw["card"]["aeserve.family"] == "vae"
    assert all(isinstance(v, torch.Tensor) for v in (*raw["encoder"].values(), *raw["decoder"].values()))
    assert len(raw["sha256"]) == 64


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found: .*nope.pt"):
        checkpoint.load(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="is not a file"):
        checkpoint.load(tmp_path)


@pytest.mark.parametrize("cut", [0, 10, 0.5, -1])
def test_truncated_file(tmp_path, cut):
    path = checkpoint.save(small_model(), tmp_path / "m.pt")
    data = path.read_bytes()
    n = int(len(data) * cut) if isinstance(cut, float) else (cut if cut >= 0 else len(data) + cut)
    path.write_bytes(data[:n])
    with pytest.raises(CheckpointError, match="truncated or not a torch zip file"):
        checkpoint.load(path)


def test_foreign_files(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"definitely not a checkpoint\n" * 10)
    with pytest.raises(CheckpointError, match="truncated or not a torch zip file"):
        checkpoint.load(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.ones(3)}, other)
    with pytest.raises(CheckpointError, match="not an aeserve checkpoint"):
        checkpoint.load(other)
    zipped = tmp_path / "plain.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoint.load(zipped)


def test_non_plain_pickle_is_refused_without_executing(tmp_path):
    payload = raw_payload(small_model())
    payload["extra"] = argparse.Namespace(evil=True)
    path = tmp_path / "evil.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"objects other than plain data.*argparse.Namespace.*weights_only=True"):
        checkpoint.load(path)


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_other_format_version(tmp_path, version):
    payload = raw_payload(small_model())
    payload["format_version"] = version
    path = tmp_path / "v.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=rf"format_version {version!r}; this aeserve reads version 1"):
        checkpoint.load(path)


@pytest.mark.parametrize("what", ["weight", "card", "missing_key"])
def test_tampered_file_fails_checksum(tmp_path, what):
    payload = raw_payload(small_model())
    if what == "weight":
        name = next(iter(payload["decoder"]))
        payload["decoder"][name].view(-1)[0] += 1e-3
    elif what == "card":
        payload["card"]["aeserve.anomaly.threshold"] = "99"
    else:
        payload["encoder"].popitem()
    path = tmp_path / "t.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="failed its checksum"):
        checkpoint.load(path)
    with pytest.raises(CheckpointError, match="failed its checksum"):
        checkpoint.read_card(path)


@pytest.mark.parametrize("key, value, read, message", [
    # model built with latent 3: a re-signed card saying 4 no longer fits the weights
    ("latent_dim", "4", checkpoint.load, "encoder weights do not match the architecture in its card"),
    ("family", "gan", checkpoint.read_card, "invalid model card: unknown family 'gan'"),
])
def test_resigned_card_that_does_not_fit(tmp_path, key, value, read, message):
    payload = raw_payload(small_model(latent=3))
    payload["card"]["aeserve." + key] = value  # consistent checksum, bad card
    payload["sha256"] = checkpoint.digest(payload["card"], payload["encoder"], payload["decoder"])
    path = tmp_path / "c.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=message):
        read(path)


def test_malformed_structure(tmp_path):
    payload = raw_payload(small_model())
    payload["encoder"] = [1, 2, 3]
    path = tmp_path / "s.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="'encoder' must be a map of tensors"):
        checkpoint.load(path)


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError, OSError])
@pytest.mark.parametrize("where", ["serialise", "fsync"])
def test_interrupted_save_leaves_old_file_and_no_temp(tmp_path, monkeypatch, exc, where):
    model = small_model()
    path = checkpoint.save(model, tmp_path / "m.pt")
    before = path.read_bytes()
    real_save, real_fsync = torch.save, os.fsync

    def save_then_fail(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        raise exc("interrupted while serialising")

    def fsync_then_fail(fd):  # the temp file holds the data but was not renamed yet
        real_fsync(fd)
        raise exc("interrupted while writing")

    if where == "serialise":
        monkeypatch.setattr(torch, "save", save_then_fail)
    else:
        monkeypatch.setattr(os, "fsync", fsync_then_fail)
    expected = CheckpointError if (exc is OSError and where == "fsync") else exc
    with pytest.raises(expected):
        checkpoint.save(small_model(seed=1), path)
    with pytest.raises(expected):
        checkpoint.save(model, tmp_path / "new.pt")
    assert sorted(os.listdir(tmp_path)) == ["m.pt"]
    assert path.read_bytes() == before


def test_unwritable_destination(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CheckpointError, match="cannot write checkpoint"):
        checkpoint.save(small_model(), blocker / "m.pt")


def test_bad_model_or_map_location(tmp_path, monkeypatch):
    with pytest.raises(CheckpointError, match="expected an aeserve.models.Autoencoder"):
        checkpoint.save(torch.nn.Linear(2, 2), tmp_path / "m.pt")
    path = checkpoint.save(small_model(), tmp_path / "m.pt")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(CheckpointError, match="CUDA is not available here"):
        checkpoint.load(path, map_location="cuda")
    with pytest.raises(CheckpointError, match="unknown map_location 'gpu0'"):
        checkpoint.load(path, map_location="gpu0")


def test_load_leaves_the_global_rng_alone(tmp_path):
    card = ModelCard("ae", "mlp", (1, 6, 6), 2, "bernoulli", "toy", {"hparams": '{"hidden": [8]}'})
    path = checkpoint.save(build_model(card), tmp_path / "m.pt")
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    checkpoint.load(path)
    assert torch.equal(torch.rand(3), expected)
