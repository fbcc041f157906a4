"""aeserve.serve.access: the API key and the restricted-API options (no server needed), and
the ``serve`` checks that come with it (``--log`` path, explicit mode on a public host)."""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
import time
import urllib.request

import pytest
from cli_helpers import run_cli
from serve_helpers import fake_tritonserver

from aeserve.errors import InputError
from aeserve.serve import admin_headers, free_ports, serve
from aeserve.serve.access import is_loopback, resolve_api_key, restricted_args


def test_loopback_hosts():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.10", "example.org", ""))


def test_key_is_generated_checked_and_required_off_loopback():
    a, b = (resolve_api_key(None, host="127.0.0.1", model_control="explicit") for _ in range(2))
    assert a != b and len(a) >= 16
    assert resolve_api_key("k" * 16, host="0.0.0.0", model_control="explicit") == "k" * 16
    assert resolve_api_key(None, host="0.0.0.0", model_control="none")  # nothing to load there
    with pytest.raises(InputError, match="needs an API key"):
        resolve_api_key(None, host="0.0.0.0", model_control="explicit")
    for bad in ("short", "k" * 15 + ",", "a:b=c" * 4, "k" * 15 + " ", 12345678901234567):
        with pytest.raises(InputError, match="at least 16 characters"):
            resolve_api_key(bad, host="127.0.0.1", model_control="explicit")


def test_restricted_args_cover_the_admin_apis():
    assert restricted_args("K" * 16, model_control="none") == [
        f"--http-restricted-api=logging,trace:aeserve-api-key={'K' * 16}",
        f"--grpc-restricted-protocol=logging,trace:aeserve-api-key={'K' * 16}"]
    assert restricted_args("K" * 16, model_control="explicit")[0].startswith(
        "--http-restricted-api=model-repository,logging,trace:")
    assert admin_headers("x") == {"aeserve-api-key": "x"}
    assert admin_headers("x", "grpc") == {"triton-grpc-protocol-aeserve-api-key": "x"}


def test_explicit_mode_on_a_public_host_without_key_is_refused(serving_repository, capsys, monkeypatch):
    monkeypatch.delenv("AESERVE_API_KEY", raising=False)
    with pytest.raises(InputError, match="not loopback"):
        serve(serving_repository, host="0.0.0.0", model_control="explicit")
    code, _, err = run_cli(["serve", "--repo", str(serving_repository), "--host", "0.0.0.0",
                            "--model-control", "explicit"], capsys)
    assert code == 2 and "needs an API key" in err
    code, out, _ = run_cli(["serve", "--help"], capsys)
    assert code == 0 and "WARNING" in out and "--api-key" in out and "AESERVE_API_KEY" in out


def _sigterm_when_ready(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1):
                break
        except OSError:
            time.sleep(0.05)
    time.sleep(0.3)
    os.kill(os.getpid(), signal.SIGTERM)


def test_cli_prints_the_generated_key_and_passes_a_given_one(serving_repository, tmp_path, monkeypatch, capsys):
    record = fake_tritonserver(tmp_path, monkeypatch)
    h, g, m = free_ports(3)
    argv = ["serve", "--repo", str(serving_repository), "--mode", "native", "--model-control", "explicit",
            "--http-port", str(h), "--grpc-port", str(g), "--metrics-port", str(m)]
    for env_key in (None, "E" * 20):
        if env_key:
            monkeypatch.setenv("AESERVE_API_KEY", env_key)
        # stop the foreground server once it is up: SIGTERM to ourselves acts as Ctrl-C
        stopper = threading.Thread(target=_sigterm_when_ready, args=(h,), daemon=True)
        stopper.start()
        code, out, err = run_cli(argv, capsys)
        stopper.join(5)
        assert code == 0 and "stopped" in err, err
        sent = next(a for a in json.loads(record.read_text()) if a.startswith("--http-restricted-api="))
        key = sent.rsplit("=", 1)[1]
        if env_key:
            assert key == env_key and env_key not in out and "api key: (as given)" in out
        else:
            assert f"api key: {key} (header aeserve-api-key; needed for: model-repository, logging, trace)" in out


def test_bad_log_path_is_a_typed_error_and_leaves_nothing(serving_repository, tmp_path, monkeypatch, capsys):
    fake_tritonserver(tmp_path, monkeypatch)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    h, g, m = free_ports(3)
    for bad in (tmp_path / "no-such-dir" / "triton.log", tmp_path):
        with pytest.raises(InputError, match="cannot write the server log"):
            serve(serving_repository, http_port=h, grpc_port=g, metrics_port=m, log=bad)
        code, _, err = run_cli(["serve", "--repo", str(serving_repository), "--log", str(bad), "--http-port", str(h),
                                "--grpc-port", str(g), "--metrics-port", str(m)], capsys)
        assert code == 2 and "error: cannot write the server log" in err and "Traceback" not in err
    assert not list(tmp_path.glob("aeserve-serve-*"))
