"""``evaluate``: every quality figure of one model, measured through the Client.

    from aeserve.eval import evaluate, format_table, write_json
    report = evaluate("mnist_vae", limit=1000)                        # embedded over model_repository/
    report = evaluate("mnist_vae", url="grpc://localhost:8001")        # the same, against Triton
    print(format_table(report)); write_json(report, "report.json")

Sections (``sections=`` picks some; default all that apply to the model):

``reconstruction``  MSE / PSNR of ``client.reconstruct`` on the test split, PCA (k = latent) beside it
``likelihood``      VAE: ELBO and IWAE bound with ``k`` samples on ``likelihood_n`` images (nats);
                    Bernoulli models are scored on dynamically binarized images by default
``denoising``       PSNR of noisy input and ``client.denoise`` output: Gaussian 0.3/0.5, masking 0.25/0.5
``anomaly``         one-class protocol, ``<dataset>_oneclass<c>`` models and their seed ensembles (``train_one_class=True`` trains them)
``generation``      the project's classifier on ``client.generate``: confident share, label entropy, Fréchet distance
``compression``     ``client.compress`` bytes/image and PSNR vs PNG, WebP, JPEG; optional rate-distortion plot
``inpainting``      inpainting models: PSNR in the hole (25% centre box, 3 random 8x8 patches) vs Telea and PCA
``superresolution`` upscaling models: PSNR/SSIM at each factor vs bicubic (Pillow)
``anomaly_map``     pixel AUROC of ``client.anomaly_map`` on test images with a pasted foreign patch
``features``        test accuracy of the encoder's features with 100, 1,000 and all labels (probe; fine-tuned
                    with ``finetune_ckpt``) vs logistic regression on pixels and on PCA

A section that does not apply, or whose prerequisites are missing (no classifier, no
one-class models), is reported as ``{"skipped": reason}``; the others still run. A server
or runtime failure (unreachable, timeout, model not ready, inference error) is never a
skip: it is raised. Raises ModelNotFoundError / ServerError (ServerUnavailableError,
TimeoutError, ...) / InferenceError (from the Client), ConfigError for an unknown
section, DataError / InputError when the data does not fit the model.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Sequence

from ..checks import check_int
from ..errors import AeserveError, ClientClosedError, ConfigError, DataError, InferenceError, InputError, ServerError, SplitNotFoundError
from ..progress import progress_bar
from . import report as rep

_log = logging.getLogger(__name__)
SECTIONS = ("reconstruction", "likelihood", "denoising", "anomaly", "generation", "compression",
            "inpainting", "superresolution", "anomaly_map", "features")
MAX_GENERATE = 10000


class _Data:
    """Test split (limited to ``limit``) plus a lazily loaded training split."""

    def __init__(self, name: str, limit: int | None, input_shape: tuple[int, ...]):
        from ..data import load_dataset

        self._load, self.name, self.split = load_dataset, name, "test"
        try:
            self.test = load_dataset(name, "test", limit=limit)
        except SplitNotFoundError:  # a user file (.npy, PNG folder) without splits: use all of it
            self.test, self.split = load_dataset(name, "all", limit=limit), "all"
        self.name = self.test.name  # canonical ("fmnist" -> "fashion-mnist"), or the path
        if tuple(self.test.input_shape) != tuple(input_shape):
            raise InputError(f"data {name!r} has samples of shape {self.test.input_shape}; the model expects "
                             f"{tuple(input_shape)}: pass --data with matching data")
        self._train = None

    @property
    def train(self):
        """The training split (DataError for user data without one)."""
        if self._train is None:
            self._train = self._load(self.name, "train")
        return self._train


def _check_sections(sections: Sequence[str] | None) -> tuple[str, ...]:
    if sections is None:
        return SECTIONS
    if isinstance(sections, str):
        sections = [s for s in sections.split(",") if s]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown or not sections:
        raise ConfigError(f"unknown section(s) {', '.join(unknown) or '(none given)'}; "
                          f"expected some of {', '.join(SECTIONS)}")
    return tuple(s for s in SECTIONS if s in sections)


def _positive(name: str, v: Any) -> int:
    return check_int(v, name, minimum=1)


def _positive_or_none(name: str, v: Any) -> int | None:
    return None if v is None else check_int(v, name, minimum=1)


def evaluate(model: str | None = None, data: str | None = None, url: str | None = None, *,
             repository: str | os.PathLike[str] | None = None, limit: int | None = None,
             sections: Sequence[str] | str | None = None, k: int = 5000, likelihood_n: int = 100,
             binarize: bool | None = None, seed: int = 0, baselines: bool = True,
             train_one_class: bool = False, one_class_repository: str | os.PathLike[str] | None = None,
             one_class_members: int | None = None, n_generate: int | None = None, temperature: float = 1.0,
             classifier: str | os.PathLike[str] | None = None, compression_n: int = 1000,
             plot: str | os.PathLike[str] | None = None, progress: bool = True,
             log: Callable[[str], None] | None = None, finetune_ckpt: str | os.PathLike[str] | None = None,
             finetune_steps: int | None = None) -> dict[str, Any]:
    """Evaluate ``model`` on the test split of ``data`` (default: the card's dataset).

    Returns the report dict (see ``aeserve.eval.report``): ``model``, ``target``, ``card``,
    ``data``, ``sections`` (one dict per section), ``anchors`` (published figures), ``seconds``
    per section, ``options``. (``benchmarks/targets.py`` checks a report against the
    project's targets for the shipped models.)
    Progress messages go to ``log`` (default: this module's logger at INFO, silent unless
    logging is configured).
    """
    from .. import __version__
    from ..client import Client

    chosen = _check_sections(sections)
    limit, n_generate = _positive_or_none("limit", limit), _positive_or_none("n_generate", n_generate)
    k, likelihood_n = _positive("k", k), _positive("likelihood_n", likelihood_n)
    compression_n = _positive("compression_n", compression_n)
    one_class_members = _positive_or_none("one_class_members", one_class_members)
    say = log or _log.info
    started = time.perf_counter()
    with Client(url, model, repository=repository) as client:
        card = client.card
        ds = _Data(data or card.dataset, limit, card.input_shape)
        x, y = ds.test.x, ds.test.y
        out: dict[str, Any] = {
            "model": client.model, "version": client.version, "target": client.runtime.target,
            "card": {"family": card.family, "arch": card.arch, "latent_dim": card.latent_dim,
                     "likelihood": card.likelihood, "dataset": card.dataset, "hparams": card.hparams,
                     "train": card.train},
            "data": {"name": ds.test.name, "split": ds.split, "n": len(x), "limit": limit},
            "sections": {}, "seconds": {},
        }
        pca = None
        binarized = card.likelihood == "bernoulli" if binarize is None else bool(binarize)
        for section in chosen:
            t0 = time.perf_counter()
            say(f"[eval] {section} ...")
            try:
                if baselines and pca is None and section in ("reconstruction", "denoising"):
                    pca = _fit_pca(ds, card.latent_dim, seed, say)
                    baselines = pca is not None
                result = _SECTION_RUNNERS[section](
                    client=client, ds=ds, dataset=ds.name, x=x, y=y, pca=pca, k=k, likelihood_n=likelihood_n,
                    binarized=binarized, seed=seed, train_one_class=train_one_class,
                    one_class_repository=one_class_repository, one_class_members=one_class_members,
                    url=url, n_generate=n_generate,
                    temperature=temperature, classifier=classifier,
                    compression_n=compression_n, plot=plot, progress=progress, say=say,
                    finetune_ckpt=finetune_ckpt, finetune_steps=finetune_steps)
            except (ServerError, InferenceError, ClientClosedError):
                raise  # the server or runtime failed: an error, never a skipped section
            except AeserveError as e:
                result = {"skipped": str(e)}
            out["sections"][section] = result
            out["seconds"][section] = round(time.perf_counter() - t0, 2)
    out["anchors"] = rep.ANCHORS
    out["seconds"]["total"] = round(time.perf_counter() - started, 2)
    out["options"] = {"k": k, "likelihood_n": likelihood_n, "binarize": binarized, "seed": seed,
                      "baselines": baselines, "temperature": temperature, "compression_n": compression_n,
                      "n_generate": n_generate, "sections": list(chosen), "url": url}
    out["aeserve_version"] = __version__
    return out


# ---- sections ------------------------------------------------------------------------------
def _fit_pca(ds: _Data, k: int, seed: int, say: Callable[[str], None]):
    from .reconstruction import PCABaseline

    try:
        return PCABaseline.fit(ds.train.x, k, seed=seed)
    except AeserveError as e:
        say(f"[eval] no PCA baseline: {e}")
        return None


def _reconstruction(*, client, x, pca, **_: Any) -> dict[str, Any]:
    from .reconstruction import reconstruction

    return reconstruction(client, x, pca)


def _denoising(*, client, x, pca, seed, **_: Any) -> dict[str, Any]:
    from .reconstruction import denoising

    return denoising(client, x, pca, seed=seed)


def _likelihood(*, client, x, k, likelihood_n, binarized, seed, progress, **_: Any) -> dict[str, Any]:
    from .likelihood import binarize as binarize_images
    from .likelihood import likelihood

    if not client.card.is_vae:
        return {"skipped": f"likelihood bounds need a VAE; {client.model!r} is family {client.card.family!r}"}
    xs = x[:likelihood_n]
    if binarized:
        xs = binarize_images(xs, seed=seed)
    bar = progress_bar(total=len(xs), desc=f"IWAE k={k}", unit="img", enabled=bool(progress))
    try:
        return likelihood(client, xs, k=k, seed=seed, binarized=binarized, progress=bar.update)
    finally:
        bar.close()


def _anomaly(*, dataset, x, y, url, train_one_class, one_class_repository, one_class_members, seed, progress, say,
             **_: Any) -> dict[str, Any]:
    from .one_class import MEMBERS, ONE_CLASS_DIR, one_class_protocol
    from .one_class import train_one_class as train_models

    if y is None:
        return {"skipped": f"the one-class protocol needs labels; data {dataset!r} has none"}
    repo = one_class_repository or ONE_CLASS_DIR
    members = one_class_members or MEMBERS
    if train_one_class:
        if url is not None:
            return {"skipped": "--train writes a local repository; evaluate it without --url, or serve it"}
        train_models(dataset, repo, seed=seed, members=members, progress=progress, log=say)
    return one_class_protocol(dataset, x, y, url=url, repository=repo, members=members)


def evaluate_one_class(dataset: str = "mnist", url: str | None = None, *, limit: int | None = None,
                       train: bool = False, repository: str | os.PathLike[str] | None = None, seed: int = 0,
                       members: int | None = None, progress: bool = True,
                       log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Only the one-class protocol on ``dataset`` (no main model): a report whose only section
    is ``anomaly`` (see ``aeserve.eval.one_class``). ``train`` trains the models first;
    ``members``: models per class (default ``one_class.MEMBERS``). Raises InputError for a
    ``limit`` or ``members`` that is not a positive integer, and what the protocol raises."""
    from .. import __version__
    from ..data import load_dataset
    from .one_class import ONE_CLASS_DIR

    limit, members = _positive_or_none("limit", limit), _positive_or_none("members", members)
    say = log or _log.info
    started = time.perf_counter()
    test = load_dataset(dataset, "test", limit=limit)
    section = _anomaly(dataset=test.name, x=test.x, y=test.y, url=url, train_one_class=train,
                       one_class_repository=repository, one_class_members=members, seed=seed, progress=progress,
                       say=say)
    out: dict[str, Any] = {
        "model": "one-class protocol", "target": url or f"embedded:{repository or ONE_CLASS_DIR}", "card": None,
        "data": {"name": test.name, "split": "test", "n": len(test), "limit": limit},
        "sections": {"anomaly": section}, "seconds": {"total": round(time.perf_counter() - started, 2)},
        "options": {"train": train, "seed": seed, "url": url}, "aeserve_version": __version__,
    }
    return out


def _generation(*, client, ds, x, y, n_generate, seed, temperature, classifier, **_: Any) -> dict[str, Any]:
    from ..classifier import default_classifier_path
    from .generation import generation_quality

    path = classifier or default_classifier_path(ds.name)
    n = n_generate or min(len(x), MAX_GENERATE)
    try:
        reference = ds.train.x[:min(n, len(x))]
    except DataError:
        reference = None
    return generation_quality(client, x, n=n, seed=seed, temperature=temperature, classifier=path,
                              y_test=y, x_reference=reference)


def _compression(*, client, x, compression_n, plot, **_: Any) -> dict[str, Any]:
    from .compression import compression

    return compression(client, x[:compression_n], plot=plot)


def _train_or_none(ds: _Data):
    try:
        return ds.train
    except DataError:
        return None


def _inpainting(*, client, ds, x, seed, **_: Any) -> dict[str, Any]:
    from .inpainting import inpainting

    if client.card.restores != "inpaint":
        return {"skipped": f"{client.model!r} is not an inpainting model (restores {client.card.restores})"}
    train = _train_or_none(ds)
    return inpainting(client, x, None if train is None else train.x, seed=seed)


def _superresolution(*, client, x, **_: Any) -> dict[str, Any]:
    from .superres import superresolution

    if client.card.restores != "upscale":
        return {"skipped": f"{client.model!r} is not an upscaling model (restores {client.card.restores})"}
    return superresolution(client, x)


def _anomaly_map(*, client, ds, x, seed, **_: Any) -> dict[str, Any]:
    from ..data import load_dataset
    from .anomaly_map import localisation

    foreign = {"mnist": "fashion-mnist", "fashion-mnist": "mnist"}.get(ds.name)
    if foreign is None:
        return {"skipped": f"no foreign dataset to paste patches from for {ds.name!r} (mnist or fashion-mnist)"}
    train = _train_or_none(ds)
    out = localisation(client, x, load_dataset(foreign, "test").x, None if train is None else train.x, seed=seed)
    return {"foreign": foreign, **out}


def _features(*, client, ds, y, seed, finetune_ckpt, finetune_steps, progress, **_: Any) -> dict[str, Any]:
    from .features import feature_accuracy

    train = _train_or_none(ds)
    if y is None or train is None or train.y is None:
        return {"skipped": f"feature accuracy needs labelled train and test splits; {ds.name!r} has none"}
    return feature_accuracy(client, train, ds.test, seed=seed, ckpt=finetune_ckpt, finetune_steps=finetune_steps,
                            progress=progress)


_SECTION_RUNNERS: dict[str, Callable[..., dict[str, Any]]] = {
    "reconstruction": _reconstruction, "likelihood": _likelihood, "denoising": _denoising,
    "anomaly": _anomaly, "generation": _generation, "compression": _compression,
    "inpainting": _inpainting, "superresolution": _superresolution, "anomaly_map": _anomaly_map,
    "features": _features,
}
