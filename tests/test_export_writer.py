"""Atomic versioned repository writes: a killed or interrupted export leaves the repository as it was."""

from __future__ import annotations

import hashlib
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from aeserve.card import ModelCard
from aeserve.errors import ExportError, RepositoryError
from aeserve.export import journal, writer
from aeserve.export.journal import recover
from aeserve.export.writer import TMP_PREFIX, next_version, temp_dirs, write_models
from aeserve.repository import Repository, parse_config

CARD = "".join(f'parameters {{ key: "{k}" value {{ string_value: "{v}" }} }}\n'
               for k, v in ModelCard("ae", "mlp", (1, 8, 8), 4, "bernoulli", "toy").to_dict().items())
CONFIG = 'name: "{name}"\nbackend: "onnxruntime"\nmax_batch_size: {mb}\n' + CARD.replace("{", "{{").replace("}", "}}")


def files(name: str = "m", mb: int = 8, payload: bytes = b"onnx") -> dict[str, tuple[str, bytes]]:
    return {f"{name}_{r}": (CONFIG.format(name=f"{name}_{r}", mb=mb), payload + r.encode())
            for r in ("encoder", "decoder")}


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "")
            for p in sorted(root.rglob("*"))}


def test_new_model_then_next_versions(tmp_path):
    repo = tmp_path / "a" / "repo"
    assert write_models(repo, files(mb=8))[0] == 1
    version, paths = write_models(repo, files(mb=16, payload=b"v2"))
    assert version == 2 and paths["m_encoder"] == repo / "m_encoder" / "2" / "model.onnx"
    assert (repo / "m_encoder" / "1" / "model.onnx").read_bytes() == b"onnxencoder"
    assert paths["m_encoder"].read_bytes() == b"v2encoder"
    assert parse_config((repo / "m_decoder" / "config.pbtxt").read_text()).max_batch_size == 16
    assert temp_dirs(repo) == []


def test_models_are_listed_by_name_when_one_name_prefixes_another(tmp_path):
    for name in ("m", "m_b", "a"):     # directory order: a_, m_b_decoder, m_b_encoder, m_decoder, ...
        write_models(tmp_path, files(name))
    assert Repository(tmp_path).models() == ["a", "m", "m_b"]


def test_next_version_counts_every_numeric_dir(tmp_path):
    (tmp_path / "m_encoder" / "3").mkdir(parents=True)  # even without a model file: never reused
    (tmp_path / "m_decoder" / "1").mkdir(parents=True)
    assert next_version(tmp_path, ["m_encoder", "m_decoder"]) == 4
    assert write_models(tmp_path, files())[0] == 4


def test_repository_not_a_directory(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RepositoryError, match="not a directory"):
        write_models(tmp_path / "file", files())
    assert (tmp_path / "file").read_text() == "x"


def test_failed_rename_rolls_back(tmp_path, monkeypatch):
    write_models(tmp_path, files())
    before = snapshot(tmp_path)
    real, calls = os.replace, []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the decoder's config, after the encoder's was replaced
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(journal.os, "replace", flaky)
    with pytest.raises(ExportError, match="nothing was changed: .*No space left"):
        write_models(tmp_path, files(mb=99))
    monkeypatch.undo()
    assert snapshot(tmp_path) == before
    assert temp_dirs(tmp_path) == []
    assert Repository(tmp_path).model("m").versions == (1,)


def test_stale_temp_dirs_of_dead_writers_are_removed(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout)
    stale = [tmp_path / f".repo{TMP_PREFIX}{dead}-abc", repo / f"{TMP_PREFIX}{dead}-def"]
    live = [tmp_path / f".repo{TMP_PREFIX}{os.getpid()}-xyz", tmp_path / f".other{TMP_PREFIX}{dead}-abc"]
    for p in stale + live:
        p.mkdir()
    assert sorted(recover(repo)) == sorted(stale)
    assert all(p.is_dir() for p in live) and not any(p.exists() for p in stale)


def test_staging_inside_root_when_parent_unusable(tmp_path, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(journal.os, "access", lambda p, mode: False if Path(p) == tmp_path else real_access(p, mode))
    seen = []
    real_write = writer.write_file
    monkeypatch.setattr(writer, "write_file", lambda path, data: (seen.append(path), real_write(path, data)))
    write_models(tmp_path / "repo", files())
    assert seen and all(p.is_relative_to(tmp_path / "repo") and TMP_PREFIX in str(p) for p in seen)
    assert temp_dirs(tmp_path / "repo") == [] and Repository(tmp_path / "repo").models() == ["m"]


# ---- killing a writer process halfway through staging ----------------------------------
# (kills inside the commit itself, at every step: tests/test_export_journal.py)

SCRIPT = textwrap.dedent("""
    import pickle, sys, time
    from pathlib import Path
    import tritonclient.grpc          # as in a real export: gRPC's threads are running
    from aeserve.export import writer

    repo, files, marker, pause_after = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    real, written = writer.write_file, []

    def pausing(path, data):
        real(path, data)
        written.append(path)
        if len(written) == pause_after:   # halfway: the temp dir holds part of the export
            marker.write_text(str(path))
            time.sleep(120)

    writer.write_file = pausing
    writer.write_models(repo, pickle.loads(files.read_bytes()))
    print("finished")
""")


def run_and_interrupt(tmp_path: Path, repo: Path, name: str, pause_after: int, sig: int) -> subprocess.CompletedProcess:
    marker = tmp_path / f"marker-{name}-{pause_after}-{sig}"
    staged_files = tmp_path / f"files-{name}.pkl"
    staged_files.write_bytes(pickle.dumps(files(name, payload=b"v2")))
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(repo), str(staged_files), str(marker), str(pause_after)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"export subprocess never reached the pause point: rc={proc.returncode}\n{err[-2000:]}")
        time.sleep(0.05)
    staged = temp_dirs(repo)
    assert len(staged) == 1 and staged[0].parent == repo.parent  # really halfway; staged next to the root
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def base_repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("atomic") / "repo"
    write_models(repo, files("m"))
    return repo


@pytest.mark.parametrize("name, pause_after", [("m", 3), ("fresh", 1)])
def test_sigkill_halfway_leaves_repository_as_it_was(tmp_path, base_repo, name, pause_after):
    before = snapshot(base_repo)
    done = run_and_interrupt(tmp_path, base_repo, name, pause_after, signal.SIGKILL)
    assert done.returncode == -signal.SIGKILL and "finished" not in done.stdout
    assert snapshot(base_repo) == before                       # no partial version, configs intact
    assert Repository(base_repo).models() == ["m"]
    assert Repository(base_repo).model("m").versions == (1,)
    assert not (base_repo / "m_encoder" / "2").exists() and not (base_repo / "fresh_encoder").exists()
    recover(base_repo)                                         # what the next open does first
    assert temp_dirs(base_repo) == []


def test_ctrl_c_halfway_leaves_nothing(tmp_path, base_repo):
    before = snapshot(base_repo)
    done = run_and_interrupt(tmp_path, base_repo, "m", 2, signal.SIGINT)
    assert done.returncode != 0 and "KeyboardInterrupt" in done.stderr
    assert snapshot(base_repo) == before
    assert temp_dirs(base_repo) == []         # cleaned up on the way out
