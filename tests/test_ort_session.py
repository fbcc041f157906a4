"""aeserve.ort_session: the one set of ONNX Runtime session options."""

from __future__ import annotations

import eval_fixtures as fx
import numpy as np
import onnxruntime as ort
import pytest

from aeserve.ort_session import cpu_session, session_options


def test_options_turn_spinning_off_and_fix_threads_only_when_asked():
    opts = session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert opts.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    assert opts.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert opts.log_severity_level == 3
    assert opts.intra_op_num_threads == 0                     # ORT's default
    assert session_options(threads=2).intra_op_num_threads == 2


def test_cpu_session_from_a_path_or_bytes(tmp_path):
    fx.write_identity_ae(tmp_path, "ident")
    path = tmp_path / "ident_decoder" / "1" / "model.onnx"
    for source in (path, str(path), path.read_bytes()):
        sess = cpu_session(source, threads=1)
        assert sess.get_providers() == ["CPUExecutionProvider"]
        z = np.linspace(0, 1, 784, dtype=np.float32)[None]
        np.testing.assert_array_equal(sess.run(None, {"z": z})[0], z.reshape(1, 1, 28, 28))


def test_thread_layout_one_ort_thread_per_request_in_flight():
    from aeserve.ort_session import thread_layout, usable_cores

    assert thread_layout() == (usable_cores(), 1)
    assert thread_layout(4) == (4, 1)
    assert thread_layout(8, 4) == (4, 2)
    assert thread_layout(2, 4) == (4, 1)
    with pytest.raises(ValueError):
        thread_layout(0)


def test_spinning_only_when_asked_and_only_without_torch(monkeypatch):
    import sys

    from aeserve.ort_session import spinning_allowed

    assert session_options(2, spinning=True).get_session_config_entry("session.intra_op.allow_spinning") == "1"
    monkeypatch.setitem(sys.modules, "torch", object())
    assert not spinning_allowed()
    monkeypatch.delitem(sys.modules, "torch")
    assert spinning_allowed()
