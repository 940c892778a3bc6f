import pickle
import urllib.error

import numpy as np
import pytest
import torch
from convbook import data
from convbook.data import CLASSES
from PIL import Image


def _images(n, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)


@pytest.fixture
def imagefolder(tmp_path):
    root = tmp_path / "folder"
    for split, per_class in (("train", 3), ("test", 2)):
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i, image in enumerate(_images(per_class, seed=label * 10 + per_class)):
                Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{i:04d}.png")
    return root


@pytest.fixture
def batches(tmp_path):
    root = tmp_path / "pickles"
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        images = _images(20, seed=k).numpy().reshape(20, -1)
        labels = [i % 10 for i in range(20)]
        with open(folder / name, "wb") as handle:
            pickle.dump({b"data": images, b"labels": labels}, handle)
    return root


def test_imagefolder_layout(imagefolder):
    images, labels = data.cifar10("train", root=imagefolder, download=False)
    assert images.shape == (30, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64 and labels.tolist() == sorted(labels.tolist())
    assert labels.bincount().tolist() == [3] * 10
    # pixel values survive the round trip through PNG
    expected = _images(3, seed=0 * 10 + 3)[1]
    assert torch.equal(images[1], expected)
    test_images, _ = data.cifar10("test", root=imagefolder, download=False)
    assert len(test_images) == 20


def test_imagefolder_second_read_comes_from_cache(imagefolder):
    first = data.cifar10("train", root=imagefolder, download=False)
    assert list((data.cache_dir() / "data").glob("imagefolder-train-*.pt"))
    second = data.cifar10("train", root=imagefolder, download=False)
    assert torch.equal(first[0], second[0])


def test_torchvision_layout(batches):
    images, labels = data.cifar10("train", root=batches, download=False)
    assert images.shape == (100, 3, 32, 32) and images.dtype == torch.uint8 and len(labels) == 100
    assert torch.equal(images[0], _images(20, seed=0)[0])
    test_images, test_labels = data.cifar10("test", root=batches, download=False)
    assert len(test_images) == 20 and test_labels[:3].tolist() == [0, 1, 2]


def test_environment_variable_selects_root(batches, monkeypatch):
    monkeypatch.setenv("CONVBOOK_DATA", str(batches))
    images, _ = data.cifar10("test", download=False)
    assert len(images) == 20


def test_balanced_subset_and_device(imagefolder):
    images, labels = data.cifar10("train", root=imagefolder, n=20, device="cpu", download=False)
    assert len(labels) == 20
    assert labels.bincount(minlength=10).tolist() == [2] * 10
    again, _ = data.cifar10("train", root=imagefolder, n=20, download=False)
    assert torch.equal(images, again)


def test_missing_data_without_download_says_what_to_set(tmp_path):
    with pytest.raises(data.DataNotFoundError, match="CONVBOOK_DATA"):
        data.cifar10("train", root=tmp_path / "nothing", download=False)


def test_no_network_gives_one_clear_message(tmp_path, monkeypatch):
    def offline(root):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(data, "_download", offline)
    with pytest.raises(data.DataNotFoundError) as info:
        data.cifar10("train", root=tmp_path / "empty", download=True)
    message = str(info.value)
    assert "could not be downloaded" in message and "CONVBOOK_DATA" in message
    # in a notebook the error renders as its message alone, without library frames
    assert info.value._render_traceback_() == [f"DataNotFoundError: {message}"]


def test_bad_split_and_subset(imagefolder):
    with pytest.raises(ValueError, match="'train' or 'test'"):
        data.cifar10("validation", root=imagefolder)
    with pytest.raises(ValueError, match="positive whole number"):
        data.cifar10("train", root=imagefolder, n=0)


def test_load_describes_source(imagefolder):
    loaded = data.load(10, 10, root=imagefolder)
    assert loaded.describe().startswith("CIFAR-10 (")
    assert "10 training / 10 test images" in loaded.describe()
    assert isinstance(np.asarray(loaded.train[0]), np.ndarray)
