"""aeserve.limits: what one call may allocate, checked before it does; configurable per
Client or by environment variable."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import aeserve
from aeserve import compress
from aeserve.errors import ConfigError, SizeLimitError
from aeserve.limits import ENV, Limits


def test_defaults_env_and_bad_values(monkeypatch):
    assert Limits().max_output_bytes == 4 << 30
    monkeypatch.setenv(ENV["max_output_bytes"], "1_000")
    monkeypatch.setenv(ENV["max_payload_images"], "7")
    assert Limits.from_env() == Limits(max_output_bytes=1000, max_payload_images=7)
    monkeypatch.setenv(ENV["max_payload_images"], "many")
    with pytest.raises(ConfigError, match="AESERVE_MAX_PAYLOAD_IMAGES must be a positive integer"):
        Limits.from_env()
    with pytest.raises(ConfigError, match="max_output_bytes must be an integer >= 1"):
        Limits(max_output_bytes=0)


def test_check_bytes_message():
    with pytest.raises(SizeLimitError, match=r"x would allocate 2 KiB, more than the limit of 1000 bytes"):
        Limits(max_output_bytes=1000).check_bytes(2048, "x")
    Limits(max_output_bytes=1000).check_bytes(1000, "x")


def test_client_limits_keyword_and_environment(client_repo, monkeypatch):
    with aeserve.Client(repository=client_repo, model="t_vae", limits=Limits(max_output_bytes=10 * 3136)) as c:
        assert c.generate(9).shape[0] == 9
        with pytest.raises(SizeLimitError, match=r"generate\(n=11\)"):
            c.generate(11)
        with c.with_model("t_ae") as sibling:           # siblings keep the limits
            with pytest.raises(SizeLimitError):
                sibling.decode(np.zeros((11, 2), np.float32))   # caught where the output is allocated
    monkeypatch.setenv(ENV["max_output_bytes"], str(5 * 3136))
    with aeserve.Client(repository=client_repo, model="t_vae") as c, pytest.raises(SizeLimitError):
        c.generate(6)
    with pytest.raises(ConfigError, match="limits must be"):
        aeserve.Client(repository=client_repo, limits={"max_output_bytes": 1})


def test_tiny_payload_declaring_many_images_is_refused_before_decoding(client_repo):
    with aeserve.Client(repository=client_repo, model="t_ae") as c:
        blob = compress.encode_payload(np.zeros((300_000, 2), np.float32), model="t_ae", version=c.version,
                                       card=c.card)
        assert len(blob) < 10_000                       # valid, and ~0.9 GB once decoded
        tracemalloc.start()
        with pytest.raises(SizeLimitError, match=r"-byte payload declares 300000 images"):
            c.decompress(blob)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 20 << 20                          # nothing of the decoded size was allocated
        small = compress.encode_payload(np.zeros((1001, 2), np.float32), model="t_ae", version=c.version,
                                        card=c.card)
        assert c.decompress(small).shape == (1001, 1, 28, 28)
    with aeserve.Client(repository=client_repo, model="t_ae", limits=Limits(max_payload_images=1000)) as c:
        with pytest.raises(SizeLimitError, match="declares 1001 images, more than the limit of 1000"):
            c.decompress(small)
