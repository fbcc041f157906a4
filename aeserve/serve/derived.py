"""The derived repository the bundled Triton binary serves.

The ``nvidia-pytriton`` wheel ships ``tritonserver`` with the Python backend only, so each
ONNX model of a repository is re-expressed as a Python-backend model that runs the very
same ONNX file with ONNX Runtime::

    n = derive_repository("model_repository", "/tmp/x/repository")   # -> ["mnist_vae_decoder", ...]

Per Triton model: the same name, ``max_batch_size``, inputs/outputs, ``dynamic_batching``,
``version_policy`` and ``parameters`` (the model card), with ``backend: "python"``, no
``platform``/``optimization``/``default_model_filename``, and ``KIND_CPU`` instances (as many
as the original's largest instance group, default 1).
Each version directory gets the ONNX file (hard link, or copy across file systems) and
``model.py`` (the template ``backend_model.py.tmpl``).

Raises RepositoryError for a missing/empty repository, a malformed config, or a model
whose backend the bundled server cannot run (anything but ONNX or Python).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from ..errors import RepositoryError
from ..repository import CONFIG_FILENAME, MODEL_FILENAME, parse_config

TEMPLATE = Path(__file__).with_name("backend_model.py.tmpl")
ONNX_BACKENDS = ("onnxruntime",)
ONNX_PLATFORMS = ("onnxruntime_onnx",)


def is_onnx_config(config: model_config_pb2.ModelConfig) -> bool:
    """True if Triton would serve this config with its ONNX Runtime backend."""
    return config.backend in ONNX_BACKENDS or config.platform in ONNX_PLATFORMS


def derive_config(config: model_config_pb2.ModelConfig) -> model_config_pb2.ModelConfig:
    """Python-backend twin of an ONNX model config (see module docstring); input untouched."""
    count = max((g.count for g in config.instance_group), default=0) or 1
    out = model_config_pb2.ModelConfig()
    out.CopyFrom(config)
    out.backend = "python"
    for field in ("platform", "default_model_filename", "optimization", "instance_group", "cc_model_filenames"):
        out.ClearField(field)
    group = out.instance_group.add()
    group.kind = model_config_pb2.ModelInstanceGroup.KIND_CPU
    group.count = count
    return out


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def derive_model(model_dir: Path, dst_root: Path) -> str:
    """Write the derived twin of one Triton model directory under ``dst_root``; return its name."""
    cfg_path = model_dir / CONFIG_FILENAME
    config = parse_config(cfg_path.read_text(), str(cfg_path))
    name = config.name or model_dir.name
    if config.name and config.name != model_dir.name:
        raise RepositoryError(f"{cfg_path}: name {config.name!r} does not match its directory {model_dir.name!r}; "
                              "Triton requires them to be equal")
    dst = dst_root / model_dir.name
    if config.backend == "python":  # already servable as is
        shutil.copytree(model_dir, dst, symlinks=False)
        return name
    if not is_onnx_config(config):
        kind = config.backend or config.platform or "unspecified"
        raise RepositoryError(f"{cfg_path}: backend {kind!r} cannot be served by the bundled Triton binary "
                              "(it runs ONNX models through the Python backend); use a native tritonserver "
                              "(--mode native) or remove this model")
    versions = [p for p in sorted(model_dir.iterdir()) if p.name.isdigit() and (p / MODEL_FILENAME).is_file()]
    if not versions:
        raise RepositoryError(f"{model_dir} has no version directory with {MODEL_FILENAME}")
    dst.mkdir(parents=True)
    for v in versions:
        (dst / v.name).mkdir()
        _link_or_copy(v / MODEL_FILENAME, dst / v.name / MODEL_FILENAME)
        shutil.copyfile(TEMPLATE, dst / v.name / "model.py")
    config.name = name
    (dst / CONFIG_FILENAME).write_text(text_format.MessageToString(derive_config(config)))
    return name


def derive_repository(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> list[str]:
    """Build the derived repository of ``src`` in the new directory ``dst``; return the Triton model names.

    RepositoryError if ``src`` is not a directory, holds no model, or holds a model the
    bundled server cannot run. ``dst`` must not exist yet (it is created).
    """
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise RepositoryError(f"model repository {src} does not exist or is not a directory; "
                              "export a model with `aeserve export` or pass --repo")
    model_dirs = [d for d in sorted(src.iterdir()) if (d / CONFIG_FILENAME).is_file()]
    if not model_dirs:
        raise RepositoryError(f"model repository {src} holds no model (no */{CONFIG_FILENAME})")
    dst.mkdir(parents=True)
    return [derive_model(d, dst) for d in model_dirs]
