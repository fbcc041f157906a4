"""The commit journal: an export or regenerate killed (SIGKILL) or interrupted (SIGINT) at
every step of its commit never leaves a pair that is served mixed, and the next open of the
repository completes it."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from aeserve.errors import MismatchedPairError
from aeserve.export import journal
from aeserve.export.journal import JOURNAL, recover, signals_held, steps_done, temp_dirs
from aeserve.repository import Repository
from aeserve.runtime.embedded import EmbeddedRuntime

# The child process counts the commit's renames (journal.os.replace) and kills or
# interrupts itself right after rename number K. "write" publishes a prepared export
# (config texts + ONNX bytes, pickled) with write_models; "regenerate" runs the real thing.
CHILD = textwrap.dedent("""
    import os, pickle, sys
    import tritonclient.grpc          # its threads are what defeated a signal mask
    from aeserve.export import journal, writer

    action, repo, after, sig, arg = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    real, count = os.replace, [0]

    def counting(src, dst):
        real(src, dst)
        if str(dst).endswith((".tmp", journal.JOURNAL)) or "regen-" in str(dst) and "/new/" in str(dst):
            return  # the journal itself, and regenerate's export into its staging directory
        count[0] += 1
        if count[0] == after:
            os.kill(os.getpid(), sig)

    journal.os.replace = counting
    if action == "write":
        with open(arg, "rb") as f:
            writer.write_models(repo, pickle.load(f))
    else:
        from aeserve.export import regenerate
        regenerate(arg, repo)
    print("finished", count[0])
""")


def run_child(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def pair_state(root: Path) -> str:
    """The export id an embedded runtime serves for model m as the repository lies on disk
    (without the repair an open does), or 'refused': never a mixture."""
    with mock.patch.object(journal, "recover", lambda root: []):
        rt = EmbeddedRuntime(root)
        try:
            rt.encode("m", np.zeros((1, 1, 8, 8), np.float32))
            rt.decode("m", np.zeros((1, 3), np.float32))
        except MismatchedPairError:
            return "refused"
        return rt.model_info("m").card.export_id


def tiny_model(seed: int):
    import torch

    from aeserve.card import ModelCard
    from aeserve.models import build_model

    torch.manual_seed(seed)
    card = ModelCard("vae", "mlp", (1, 8, 8), 3, "bernoulli", "toy", {"hparams": '{"hidden": [8]}'})
    return build_model(card).eval()


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict:
    """Repository ``first`` with export A of m (version 1); export B (version 2) prepared as a pickle."""
    from aeserve.export import export_model

    base = tmp_path_factory.mktemp("journal")
    first, second = base / "first", base / "second"
    export_model(tiny_model(1), first, "m", max_batch=4, kind="cpu")
    shutil.copytree(first, second)
    export_model(tiny_model(2), second, "m", max_batch=4, kind="cpu")
    files = {n: ((second / n / "config.pbtxt").read_text(), (second / n / "2" / "model.onnx").read_bytes())
             for n in ("m_encoder", "m_decoder")}
    (base / "b.pkl").write_bytes(pickle.dumps(files))
    return {"first": first, "b": base / "b.pkl", "id_a": Repository(first).model("m").card.export_id,
            "id_b": Repository(second).model("m").card.export_id}


def test_export_commit_has_four_steps(tmp_path, exports):
    repo = tmp_path / "repo"
    shutil.copytree(exports["first"], repo)
    done = run_child("write", repo, 0, 0, exports["b"])
    assert done.stdout.split() == ["finished", "4"], done.stderr[-800:]  # 2 version dirs, then 2 configs
    assert exports["id_a"] != exports["id_b"] and pair_state(repo) == exports["id_b"]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
@pytest.mark.parametrize("step", [1, 2, 3, 4])
def test_export_interrupted_at_every_step(tmp_path, exports, sig, step):
    repo = tmp_path / "repo"
    shutil.copytree(exports["first"], repo)
    done = run_child("write", repo, step, sig, exports["b"])
    if sig == signal.SIGINT:  # held until the commit is over, then Ctrl-C as usual
        assert "KeyboardInterrupt" in done.stderr and "finished" not in done.stdout, done.stderr[-800:]
        assert temp_dirs(repo) == [] and pair_state(repo) == exports["id_b"]
        return
    assert done.returncode == -signal.SIGKILL, done.stderr[-800:]
    assert pair_state(repo) in (exports["id_a"], exports["id_b"], "refused")   # as left: never mixed
    assert [JOURNAL in os.listdir(t) for t in temp_dirs(repo)] == [True]
    Repository(repo)                                                         # the next open repairs it
    assert temp_dirs(repo) == [] and pair_state(repo) == exports["id_b"]
    assert Repository(repo).model("m").versions == (1, 2)


@pytest.mark.parametrize("step", [pytest.param(1, marks=pytest.mark.slow), 2,
                                  pytest.param(3, marks=pytest.mark.slow), pytest.param(4, marks=pytest.mark.slow)])
def test_regenerate_killed_at_every_step(tmp_path, exports, step):
    from aeserve import checkpoint

    checkpoint.save(tiny_model(5), tmp_path / "m.pt")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps([{"checkpoint": "m.pt", "name": "m", "max_batch": 4, "kind": "cpu",
                                     "instances": 1, "preferred_batch_sizes": [4], "queue_delay_us": 0,
                                     "version": 1}]))
    repo = tmp_path / "repo"
    shutil.copytree(exports["first"], repo)
    (repo / "other_encoder").mkdir()          # not the manifest's: survives
    # steps: encoder out, encoder in, decoder out, decoder in
    done = run_child("regenerate", repo, step, signal.SIGKILL, manifest)
    assert done.returncode == -signal.SIGKILL, done.stderr[-800:]
    one_part_out = not (repo / "m_encoder").exists() or not (repo / "m_decoder").exists()
    before = None if one_part_out else pair_state(repo)
    assert one_part_out == (step in (1, 3))  # one part is out: the model is missing, not mixed
    Repository(repo)
    after = pair_state(repo)
    assert after not in (exports["id_a"], "refused") and temp_dirs(repo) == []
    assert before in (None, exports["id_a"], "refused", after)   # old, refused or (last step) new
    assert (repo / "other_encoder").is_dir()


def test_steps_done_and_rollback_on_failure(tmp_path, monkeypatch):
    a, b, c = (tmp_path / n for n in "abc")
    for p in (a, b):
        p.write_text(p.name)
    (tmp_path / "c").write_text("old c")
    steps = [(a, tmp_path / "a2"), (b, c)]
    assert steps_done(steps) == 0
    staging = tmp_path / f".x{journal.TMP_PREFIX}1-"
    staging.mkdir()
    real, calls = os.replace, []

    def failing(src, dst):
        calls.append(dst)
        if dst == c:
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(journal.os, "replace", failing)
    with pytest.raises(OSError, match="No space"):
        journal.commit(tmp_path / "x", staging, steps)
    monkeypatch.undo()
    assert a.read_text() == "a" and c.read_text() == "old c" and not (tmp_path / "a2").exists()
    assert not (staging / JOURNAL).exists()


def test_recover_leaves_live_writers_alone(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    mine = tmp_path / f".repo{journal.TMP_PREFIX}{os.getpid()}-x"
    mine.mkdir()
    (mine / JOURNAL).write_text("{}")
    assert recover(repo) == [] and mine.is_dir()


SIGINT_CHILD = textwrap.dedent("""
    import os, signal, subprocess, sys, time
    import tritonclient.grpc           # starts threads that do not block SIGINT
    from aeserve.export.journal import signals_held
    with signals_held():
        subprocess.run(["kill", "-INT", str(os.getpid())])   # from outside, as Ctrl-C is
        time.sleep(0.3)
        print("held block finished", flush=True)
    print("not reached")
""")


def test_signals_held_with_grpc_threads():
    done = subprocess.run([sys.executable, "-c", SIGINT_CHILD], capture_output=True, text=True, timeout=60)
    assert "held block finished" in done.stdout and "not reached" not in done.stdout
    assert "KeyboardInterrupt" in done.stderr


def test_signals_held_restores_handlers():
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with signals_held():
            os.kill(os.getpid(), signal.SIGINT)
            assert signal.getsignal(signal.SIGINT) is not before
    assert signal.getsignal(signal.SIGINT) is before
