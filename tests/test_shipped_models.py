"""Acceptance for the shipped `model_repository/`: valid configs and graphs, and it equals
(byte for byte) what `aeserve regenerate` rebuilds from `export/manifest.json`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from tritonclient.grpc import model_config_pb2 as pb

from aeserve.export.manifest import load_manifest, regenerate
from aeserve.export.onnx_graphs import find_random_ops, symbolic_batch
from aeserve.ort_session import cpu_session
from aeserve.repository import CONFIG_FILENAME, Repository, card_from_config, parse_config

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "export" / "manifest.json"
SHIPPED = ("mnist_vae", "mnist_vae_beta1", "mnist_dae", "mnist_ae2", "fashion_vae", "mnist_inpaint", "mnist_sr4")
CLASSIFIERS = ("mnist_vae_beta1",)      # <name>_classifier models from `aeserve finetune`


@pytest.fixture(scope="module")
def repo(shipped_repository) -> Repository:
    return Repository(shipped_repository)


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Repository:
    target = tmp_path_factory.mktemp("regen") / "model_repository"
    regenerate(MANIFEST, target)
    return Repository(target)


def graph_paths(repo: Repository) -> list[tuple[str, Path, pb.ModelConfig]]:
    out = []
    for name in repo.models():
        m = repo.model(name)
        for v in m.versions:
            out.append((m.encoder_name, m.encoder_path(v), m.encoder_config))
            out.append((m.decoder_name, m.decoder_path(v), m.decoder_config))
    for name in repo.classifiers():
        k = repo.classifier(name)
        out += [(k.triton_name, k.path(v), k.config) for v in k.versions]
    return out


def test_manifest_lists_the_shipped_models(repo):
    entries = load_manifest(MANIFEST)
    assert sorted(e.name for e in entries if not e.classifier) == sorted(SHIPPED)
    assert sorted(e.name for e in entries if e.classifier) == sorted(CLASSIFIERS) == repo.classifiers()
    assert all(e.checkpoint.is_file() for e in entries)
    assert sorted(repo.models()) == sorted(SHIPPED)
    for e in entries:
        if e.classifier:
            continue
        m = repo.model(e.name)
        assert m.versions == (e.version,)
        for cfg in (m.encoder_config, m.decoder_config):
            assert cfg.max_batch_size == e.max_batch and cfg.backend == "onnxruntime"
            assert [g.kind for g in cfg.instance_group] == [pb.ModelInstanceGroup.KIND_GPU]
            assert tuple(cfg.dynamic_batching.preferred_batch_size) == e.preferred_batch_sizes


def test_every_config_parses(shipped_repository):
    configs = sorted(shipped_repository.glob(f"*/{CONFIG_FILENAME}"))
    assert len(configs) == 2 * len(SHIPPED) + len(CLASSIFIERS)
    for path in configs:
        cfg = parse_config(path.read_text(), str(path))
        assert cfg.name == path.parent.name


def test_every_graph_is_valid_and_runs(repo):
    rng = np.random.default_rng(0)
    for triton_name, path, cfg in graph_paths(repo):
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto, full_check=True)
        assert all(symbolic_batch(proto).values()), triton_name
        assert find_random_ops(proto) == [], triton_name
        assert not any(i.data_location == onnx.TensorProto.EXTERNAL for i in proto.graph.initializer)
        # readable by the ONNX Runtime (1.19) inside the pinned Triton 24.10 image
        assert proto.ir_version <= 10 and all(o.version <= 21 for o in proto.opset_import if o.domain == "")
        sess = cpu_session(str(path))
        assert [i.name for i in sess.get_inputs()] == [i.name for i in cfg.input]
        assert [o.name for o in sess.get_outputs()] == [o.name for o in cfg.output]
        for n in (1, 64):
            inp = cfg.input[0]
            x = rng.random((n, *inp.dims), dtype=np.float32)
            outs = sess.run(None, {inp.name: x})
            for out, decl in zip(outs, cfg.output):
                assert out.shape == (n, *decl.dims) and out.dtype == np.float32, (triton_name, decl.name)
                assert np.all(np.isfinite(out))


def test_cards(repo):
    cards = {name: repo.model(name).card for name in SHIPPED}
    vae = cards["mnist_vae"]
    assert (vae.family, vae.arch, vae.latent_dim, vae.dataset) == ("vae", "conv", 16, "mnist")
    assert {"test_mse", "test_elbo"} <= set(vae.metrics)
    assert vae.hparams["beta"] == 0.1 and cards["mnist_vae_beta1"].hparams["beta"] == 1.0
    assert cards["mnist_dae"].family == "dae" and cards["mnist_ae2"].latent_dim == 2
    assert cards["fashion_vae"].family == "vae" and "fashion" in cards["fashion_vae"].dataset
    assert cards["mnist_inpaint"].restores == "inpaint" and cards["mnist_sr4"].restores == "upscale"
    assert cards["mnist_sr4"].get_json("restore.low_shapes") == [[1, 14, 14], [1, 7, 7]]
    clf = repo.classifier("mnist_vae_beta1").card
    assert clf.get("task") == "classifier" and clf.class_names == tuple(str(d) for d in range(10))
    assert clf.get("finetune.labels") == "100" and clf.metrics["test_accuracy"] >= 0.9
    for name, card in cards.items():
        assert card.name == name
        assert any(k.startswith("test_") for k in card.metrics), name
        assert {"mean", "std", "threshold"} <= set(card.anomaly), name
        onnx_props = {p.key: p.value for p in onnx.load(str(repo.model(name).encoder_path())).metadata_props}
        assert onnx_props == card.to_dict()


def test_regenerated_graphs_equal_the_committed_ones(repo, regenerated):
    assert sorted(regenerated.models()) == sorted(repo.models())
    rng = np.random.default_rng(1)
    for name in repo.models():
        shipped, fresh = repo.model(name), regenerated.model(name)
        assert fresh.card == shipped.card and fresh.versions == shipped.versions
        assert fresh.encoder_config == shipped.encoder_config and fresh.decoder_config == shipped.decoder_config
        x = rng.random((64, *shipped.card.input_shape), dtype=np.float32)
        z = rng.standard_normal((64, shipped.card.latent_dim), dtype=np.float32)
        for path_a, path_b, feed in ((shipped.encoder_path(), fresh.encoder_path(), {"x": x}),
                                     (shipped.decoder_path(), fresh.decoder_path(), {"z": z})):
            a, b = cpu_session(str(path_a)).run(None, feed), cpu_session(str(path_b)).run(None, feed)
            for got, want in zip(b, a):
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=f"{name}: {path_a.parent.parent.name}")


def test_regenerated_repository_is_byte_identical(shipped_repository, regenerated):
    """Regenerating anywhere (this checkout, another path) gives the committed bytes:
    the graphs carry no path of the machine that exported them."""
    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    shipped, fresh = files(shipped_repository), files(regenerated.root)
    assert sorted(fresh) == sorted(shipped)
    changed = [name for name in shipped if shipped[name] != fresh[name]]
    assert not changed, f"regenerate the repository (aeserve regenerate); these differ: {changed}"
    for name, data in shipped.items():
        assert str(ROOT).encode() not in data and b"site-packages" not in data, name


def test_each_pair_shares_one_export_id(repo):
    for name in repo.models():
        m = repo.model(name)
        ids = {card_from_config(m.encoder_config).export_id, card_from_config(m.decoder_config).export_id}
        for path in (m.encoder_path(), m.decoder_path()):
            ids.add({p.key: p.value for p in onnx.load(str(path)).metadata_props}["aeserve.export_id"])
        assert len(ids) == 1 and None not in ids, name
