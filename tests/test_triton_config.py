"""config.pbtxt building: parses as Triton's ModelConfig, carries the card, validates settings."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from aeserve.card import ModelCard
from aeserve.errors import ConfigError
from aeserve.export.triton_config import ServingSettings, build_config, config_text, default_preferred_batch_sizes
from aeserve.repository import card_from_config, parse_config

CARD = ModelCard("vae", "conv", (1, 28, 28), 16, "bernoulli", "mnist",
                 {"name": "mnist_vae", "metrics.test_mse": "0.0123", "anomaly.quantiles": "[1.0,2.5]"})
ENCODER = SimpleNamespace(input_name="x", input_shape=(1, 28, 28), output_names=("mu", "logvar"), output_shape=(16,))
DECODER = SimpleNamespace(input_name="z", input_shape=(16,), output_names=("x_hat",), output_shape=(1, 28, 28))


def roundtrip(graph, settings: ServingSettings, name: str = "mnist_vae_encoder") -> pb.ModelConfig:
    text = config_text(build_config(name, graph, settings, CARD))
    return parse_config(text)


def test_encoder_config_fields():
    cfg = roundtrip(ENCODER, ServingSettings(max_batch=256, kind="gpu", instances=2, queue_delay_us=250))
    assert cfg.name == "mnist_vae_encoder" and cfg.backend == "onnxruntime" and cfg.max_batch_size == 256
    assert cfg.default_model_filename == "model.onnx"
    assert [(i.name, i.data_type, list(i.dims)) for i in cfg.input] == [("x", pb.TYPE_FP32, [1, 28, 28])]
    assert [(o.name, list(o.dims)) for o in cfg.output] == [("mu", [16]), ("logvar", [16])]
    assert all(o.data_type == pb.TYPE_FP32 for o in cfg.output)
    assert list(cfg.dynamic_batching.preferred_batch_size) == [64, 256]
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 250
    assert [(g.count, g.kind) for g in cfg.instance_group] == [(2, pb.ModelInstanceGroup.KIND_GPU)]
    assert len(cfg.model_warmup) == 0


def test_decoder_config_cpu_and_preferred_sizes():
    cfg = roundtrip(DECODER, ServingSettings(max_batch=64, kind="cpu", preferred_batch_sizes=(32, 8, 32)),
                    "mnist_vae_decoder")
    assert [(i.name, list(i.dims)) for i in cfg.input] == [("z", [16])]
    assert [(o.name, list(o.dims)) for o in cfg.output] == [("x_hat", [1, 28, 28])]
    assert cfg.instance_group[0].kind == pb.ModelInstanceGroup.KIND_CPU
    assert list(cfg.dynamic_batching.preferred_batch_size) == [8, 32]


def test_card_roundtrips_through_parameters():
    cfg = roundtrip(ENCODER, ServingSettings())
    assert card_from_config(cfg) == CARD
    assert cfg.parameters["aeserve.anomaly.quantiles"].string_value == "[1.0,2.5]"


def test_warmup_entries():
    cfg = roundtrip(ENCODER, ServingSettings(max_batch=32, warmup=True))
    assert [(w.name, w.batch_size) for w in cfg.model_warmup] == [("zeros_batch_1", 1), ("zeros_batch_32", 32)]
    inp = cfg.model_warmup[0].inputs["x"]
    assert inp.zero_data and inp.data_type == pb.TYPE_FP32 and list(inp.dims) == [1, 28, 28]


def test_text_is_plain_protobuf_text_format():
    text = config_text(build_config("m_encoder", ENCODER, ServingSettings(), CARD))
    assert 'backend: "onnxruntime"' in text and "max_batch_size: 256" in text
    assert text_format.Parse(text, pb.ModelConfig()) == build_config("m_encoder", ENCODER, ServingSettings(), CARD)


@pytest.mark.parametrize("max_batch, expected", [(1, (1,)), (3, (1, 3)), (256, (64, 256)), (100, (25, 100))])
def test_default_preferred_batch_sizes(max_batch, expected):
    assert default_preferred_batch_sizes(max_batch) == expected
    assert ServingSettings(max_batch=max_batch).resolved_preferred == expected


@pytest.mark.parametrize("kwargs, match", [
    ({"max_batch": 0}, "max_batch must be an integer >= 1, got 0"),
    ({"max_batch": 2.5}, "max_batch"),
    ({"max_batch": True}, "max_batch"),
    ({"kind": "GPU"}, "kind must be one of gpu, cpu"),
    ({"instances": 0}, "instances must be an integer >= 1"),
    ({"queue_delay_us": -5}, "queue_delay_us must be an integer >= 0"),
    ({"max_batch": 8, "preferred_batch_sizes": (4, 16)}, r"preferred batch sizes must be integers in 1..max_batch=8"),
    ({"preferred_batch_sizes": (0,)}, "preferred batch sizes"),
])
def test_bad_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ServingSettings(**kwargs)
