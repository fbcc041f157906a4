"""aeserve.serve: derived repository, the Python-backend model template, the launcher's
checks and error paths, the native-mode plumbing, and ``aeserve serve`` on the command line
(ready, Ctrl-C, nothing left behind)."""

from __future__ import annotations

import importlib.machinery
import json
import signal
import subprocess
import sys
import tempfile
import time
import types
import urllib.request

import numpy as np
import onnxruntime as ort
import pytest
from google.protobuf import json_format
from serve_helpers import fake_tritonserver

from aeserve.errors import InputError, RepositoryError, ServerError, ServerUnavailableError
from aeserve.repository import Repository, parse_config
from aeserve.serve import free_ports, serve
from aeserve.serve.derived import TEMPLATE, derive_config, derive_repository
from aeserve.serve.options import resolve_mode
from aeserve.serve.process import group_members, shm_segments

# ---- derived repository ----------------------------------------------------------------


def test_derived_config_keeps_contract_and_switches_backend(serving_repository):
    m = Repository(serving_repository).model(Repository(serving_repository).models()[0])
    src = m.decoder_config
    out = derive_config(src)
    assert out.backend == "python" and out.platform == "" and out.default_model_filename == ""
    count = max(g.count for g in src.instance_group) if src.instance_group else 1
    assert [(g.kind, g.count) for g in out.instance_group] == [(out.instance_group[0].KIND_CPU, count)]
    for field in ("name", "max_batch_size", "input", "output", "dynamic_batching", "parameters", "version_policy"):
        assert getattr(out, field) == getattr(src, field), field
    assert src.backend == "onnxruntime"  # input untouched
    src.instance_group[0].count = 3
    assert derive_config(src).instance_group[0].count == 3


def test_derive_repository_layout(serving_repository, tmp_path):
    names = derive_repository(serving_repository, tmp_path / "derived")
    assert names == sorted(d.name for d in serving_repository.iterdir() if (d / "config.pbtxt").is_file())
    for n in names:
        d = tmp_path / "derived" / n
        cfg = parse_config((d / "config.pbtxt").read_text())
        assert cfg.backend == "python" and cfg.name == n
        for v in (p for p in (serving_repository / n).iterdir() if p.name.isdigit()):
            assert (d / v.name / "model.py").read_text() == TEMPLATE.read_text()
            assert (d / v.name / "model.onnx").read_bytes() == (v / "model.onnx").read_bytes()


def test_derive_repository_refuses_what_it_cannot_serve(tmp_path):
    with pytest.raises(RepositoryError, match="does not exist"):
        derive_repository(tmp_path / "nope", tmp_path / "d1")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RepositoryError, match="holds no model"):
        derive_repository(tmp_path / "empty", tmp_path / "d2")
    (tmp_path / "r" / "m" / "1").mkdir(parents=True)
    (tmp_path / "r" / "m" / "config.pbtxt").write_text('name: "m"\nbackend: "tensorrt"\nmax_batch_size: 4\n')
    with pytest.raises(RepositoryError, match="tensorrt.*cannot be served"):
        derive_repository(tmp_path / "r", tmp_path / "d3")
    (tmp_path / "r" / "m" / "config.pbtxt").write_text('name: "other"\nbackend: "onnxruntime"\n')
    with pytest.raises(RepositoryError, match="does not match its directory"):
        derive_repository(tmp_path / "r", tmp_path / "d4")
    (tmp_path / "r" / "m" / "config.pbtxt").write_text('name: "m"\nbackend: "onnxruntime"\n')
    with pytest.raises(RepositoryError, match="no version directory"):
        derive_repository(tmp_path / "r", tmp_path / "d5")


# ---- the Python-backend model, run outside Triton with a stand-in for pb_utils ----------


def fake_pb_utils() -> types.ModuleType:
    pb = types.ModuleType("triton_python_backend_utils")

    class Tensor:
        def __init__(self, name, array):
            self.name, self.array = name, array

        def as_numpy(self):
            return self.array

    class Request:
        def __init__(self, tensors, wanted=()):
            self.tensors, self.wanted = {t.name: t for t in tensors}, list(wanted)

        def requested_output_names(self):
            return self.wanted

    class InferenceResponse:
        def __init__(self, output_tensors, error=None):
            self.outputs, self.error = {t.name: t.array for t in output_tensors}, error

    pb.Tensor, pb.Request, pb.InferenceResponse = Tensor, Request, InferenceResponse
    pb.TritonError = lambda msg: msg
    pb.TritonModelException = RuntimeError
    pb.get_input_tensor_by_name = lambda request, name: request.tensors.get(name)
    pb.Logger = types.SimpleNamespace(log_info=lambda msg: None)
    return pb


@pytest.fixture()
def backend_model(serving_repository, tmp_path, monkeypatch):
    repo = Repository(serving_repository)
    m = repo.model(repo.models()[0])
    derive_repository(serving_repository, tmp_path / "d")
    pb = fake_pb_utils()
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", pb)
    v = str(m.versions[-1])
    model_dir = tmp_path / "d" / m.encoder_name
    loader = importlib.machinery.SourceFileLoader("derived_model", str(model_dir / v / "model.py"))
    module = types.ModuleType(loader.name)
    loader.exec_module(module)
    inst = module.TritonPythonModel()
    cfg = json_format.MessageToDict(parse_config((model_dir / "config.pbtxt").read_text()),
                                    preserving_proto_field_name=True)
    inst.initialize({"model_config": json.dumps(cfg), "model_repository": str(model_dir),
                     "model_version": v, "model_instance_kind": "CPU"})
    return inst, pb, m


def test_backend_model_batches_requests_and_splits_back(backend_model):
    inst, pb, m = backend_model
    outs = [o.name for o in m.encoder_config.output]
    rng = np.random.default_rng(1)
    xs = [rng.random((n, *m.card.input_shape), dtype=np.float32) for n in (2, 5, 1)]
    ref = ort.InferenceSession(str(m.encoder_path()), providers=["CPUExecutionProvider"])
    calls = []
    real_run = inst.session.run
    inst.session = types.SimpleNamespace(run=lambda names, feeds: calls.append(len(feeds["x"])) or real_run(names, feeds))
    responses = inst.execute([pb.Request([pb.Tensor("x", x)]) for x in xs])
    assert calls == [8]  # one ONNX Runtime run for the three requests
    for x, r in zip(xs, responses):
        assert r.error is None and sorted(r.outputs) == sorted(outs)
        for name, want in zip(outs, ref.run(outs, {"x": x})):
            np.testing.assert_allclose(r.outputs[name], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e39, -0.5, 1.5])
def test_backend_model_refuses_what_the_client_refuses(backend_model, bad):
    """NaN/Inf, values that overflow FP32 (1e39 arrives as inf) and images outside [0, 1]
    get an error response naming the input; the other requests of the batch are answered."""
    inst, pb, m = backend_model
    good = np.full((2, *m.card.input_shape), 0.5, np.float32)
    x = np.full((1, *m.card.input_shape), 0.5, np.float64)
    x.flat[7] = bad
    responses = inst.execute([pb.Request([pb.Tensor("x", good)]), pb.Request([pb.Tensor("x", x)])])
    assert responses[0].error is None and len(responses[0].outputs)
    err = responses[1].error
    assert err is not None and "bad request: input 'x'" in err and not responses[1].outputs
    assert ("NaN/Inf" in err) if not -1 <= bad <= 2 else ("expected images in [0, 1]" in err)


def test_backend_model_refuses_non_finite_outputs(backend_model):
    inst, pb, m = backend_model
    outs = [o.name for o in m.encoder_config.output]
    real_run = inst.session.run

    def run(names, feeds):
        res = real_run(names, feeds)
        res[0][-1, 0] = np.nan  # the last request's first output goes bad
        return res

    inst.session = types.SimpleNamespace(run=run)
    x = np.zeros((2, *m.card.input_shape), np.float32)
    responses = inst.execute([pb.Request([pb.Tensor("x", x)]), pb.Request([pb.Tensor("x", x[:1])])])
    assert responses[0].error is None
    assert f"output {outs[0]!r} is not finite" in responses[1].error


def test_backend_model_answers_bad_requests_individually(backend_model):
    inst, pb, m = backend_model
    outs = [o.name for o in m.encoder_config.output]
    x = np.zeros((3, *m.card.input_shape), np.float32)
    responses = inst.execute([pb.Request([]), pb.Request([pb.Tensor("x", x)], wanted=outs[:1])])
    assert "missing input tensor 'x'" in responses[0].error
    assert responses[1].error is None and list(responses[1].outputs) == outs[:1]
    assert responses[1].outputs[outs[0]].shape == (3, m.card.latent_dim)


def test_backend_model_threads_share_the_cores_among_instances(backend_model, monkeypatch):
    """Unset, AESERVE_TRITON_ORT_THREADS defaults to the usable cores divided among the
    config's instances (at least one each); set, it wins."""
    import aeserve.ort_session as ort_session

    threads = backend_model[0].initialize.__globals__["session_threads"]
    monkeypatch.delenv("AESERVE_TRITON_ORT_THREADS", raising=False)
    monkeypatch.setattr(ort_session, "usable_cores", lambda: 4)
    assert threads({"instance_group": [{"count": 2, "kind": "KIND_CPU"}]}) == 2
    assert threads({"instance_group": [{"count": 1}, {"count": 2}]}) == 1
    assert threads({"instance_group": [{"count": 8}]}) == 1
    assert threads({}) == 4
    monkeypatch.setenv("AESERVE_TRITON_ORT_THREADS", "3")
    assert threads({"instance_group": [{"count": 2}]}) == 3


# ---- launcher checks and error paths (no server needed) --------------------------------


def test_serve_refuses_bad_arguments(serving_repository, tmp_path):
    with pytest.raises(InputError, match="unknown serving mode 'gpu'"):
        serve(serving_repository, mode="gpu")
    with pytest.raises(InputError, match="must differ"):
        serve(serving_repository, http_port=9000, grpc_port=9000, metrics_port=9002)
    with pytest.raises(InputError, match="1..65535"):
        serve(serving_repository, http_port=70000)
    with pytest.raises(InputError, match="unknown model control"):
        serve(serving_repository, model_control="poll")
    with pytest.raises(RepositoryError, match="does not exist"):
        serve(tmp_path / "missing")


def test_serve_refuses_a_port_in_use(serving_repository):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        _, g, m = free_ports(3)
        with pytest.raises(ServerError, match=f"cannot listen on 127.0.0.1:{busy}"):
            serve(serving_repository, http_port=busy, grpc_port=g, metrics_port=m)


def test_native_mode_needs_tritonserver_on_path(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServerError, match="mode 'native' needs a tritonserver on PATH"):
        resolve_mode("native")
    assert resolve_mode("auto") == "bundled"


def test_native_mode_serves_the_repository_as_is(serving_repository, tmp_path, monkeypatch):
    record = fake_tritonserver(tmp_path, monkeypatch)
    assert resolve_mode("auto") == "native"
    h, g, m = free_ports(3)
    with serve(serving_repository, http_port=h, grpc_port=g, metrics_port=m, model_control="explicit") as server:
        assert server.mode == "native" and server.ready()
        argv = json.loads(record.read_text())
        assert f"--model-repository={serving_repository.resolve()}" in argv
        key = server.api_key
        assert len(key) >= 16 and server.model_control == "explicit"
        for a in (f"--http-port={h}", f"--grpc-port={g}", f"--metrics-port={m}", "--http-address=127.0.0.1",
                  "--model-control-mode=explicit", "--load-model=*", "--exit-timeout-secs=5",
                  f"--http-restricted-api=model-repository,logging,trace:aeserve-api-key={key}",
                  f"--grpc-restricted-protocol=model-repository,logging,trace:aeserve-api-key={key}"):
            assert a in argv
        assert not any(a.startswith("--backend-directory") for a in argv)
        pid, workdir = server.pid, server.workdir
    assert not group_members(pid) and not workdir.exists()


def test_not_ready_in_time_is_a_typed_error_and_leaves_nothing(serving_repository, tmp_path, monkeypatch):
    fake_tritonserver(tmp_path, monkeypatch, ready=False)
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # our own temp folder: others' servers come and go
    h, g, m = free_ports(3)
    t0 = time.monotonic()
    with pytest.raises(ServerUnavailableError, match="not ready within 1.5 s"):
        serve(serving_repository, http_port=h, grpc_port=g, metrics_port=m, ready_timeout=1.5)
    assert time.monotonic() - t0 < 10
    assert not list(temp.iterdir())


def test_a_model_that_fails_to_load_is_reported(serving_repository, tmp_path):
    bad = tmp_path / "bad"
    name = Repository(serving_repository).models()[0]
    for part in ("_encoder", "_decoder"):
        src = serving_repository / (name + part)
        (bad / (name + part)).mkdir(parents=True)
        for v in (p for p in src.iterdir() if p.name.isdigit()):
            (bad / (name + part) / v.name).mkdir()
            (bad / (name + part) / v.name / "model.onnx").write_bytes((v / "model.onnx").read_bytes())
        text = (src / "config.pbtxt").read_text()
        (bad / (name + part) / "config.pbtxt").write_text(text.replace('name: "x"', 'name: "pixels"'))
    h, g, m = free_ports(3)
    with pytest.raises(ServerError, match=r"pixels"):
        serve(bad, http_port=h, grpc_port=g, metrics_port=m, ready_timeout=60)


# ---- the command line -------------------------------------------------------------------


def test_cli_serve_ready_then_ctrl_c_leaves_nothing_behind(serving_repository):
    h, g, m = free_ports(3)
    cmd = [sys.executable, "-c", "from aeserve.cli import main; main()", "serve", "--repo", str(serving_repository),
           "--http-port", str(h), "--grpc-port", str(g), "--metrics-port", str(m)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in p.stdout:
            lines.append(line)
            if line.startswith("ready"):
                break
        text = "".join(lines)
        assert "mode: bundled" in text and f"http:    http://127.0.0.1:{h}" in text
        assert f"grpc:    grpc://127.0.0.1:{g}" in text and f"http://127.0.0.1:{m}/metrics" in text
        server_pid = int(text.split("(pid ")[1].split(",")[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{h}/v2/health/ready", timeout=5) as r:
            assert r.status == 200
        assert len(group_members(server_pid)) > 1  # server + Python-backend stubs
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0 and "stopped" in err
    assert not group_members(server_pid)
    assert not shm_segments(f"aeserve_{p.pid}_")


def test_cli_serve_reports_a_missing_repository(tmp_path):
    p = subprocess.run([sys.executable, "-c", "from aeserve.cli import main; main()", "serve", "--repo",
                        str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "error: model repository" in p.stderr and "does not exist" in p.stderr
