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
    assert labels.dtype == torch.int64 and labels.bincount().tolist() == [3] * 10
    # shuffled on load (files come in class order): the first ten are not one class
    assert len(set(labels[:10].tolist())) > 3
    # pixel values survive the round trip through PNG, with their labels
    expected = _images(3, seed=0 * 10 + 3)[1]
    matches = [i for i in range(len(images)) if torch.equal(images[i], expected)]
    assert len(matches) == 1 and labels[matches[0]] == 0
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
    first = _images(20, seed=0)[0]
    assert sum(torch.equal(image, first) for image in images) == 1
    test_images, test_labels = data.cifar10("test", root=batches, download=False)
    assert len(test_images) == 20 and test_labels.bincount().tolist() == [2] * 10


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


def _write(path, array):
    Image.fromarray(array).save(path)


@pytest.mark.parametrize("breakage, message", [
    ("empty class", r"no images in frog"),
    ("corrupt image", r"0000\.png cannot be read as an image"),
    ("wrong size", r"0001\.png is 64x64 pixels; CIFAR-10 images are 32x32"),
])
def test_broken_imagefolder_names_the_problem(imagefolder, breakage, message):
    frog = imagefolder / "train" / "frog"
    if breakage == "empty class":
        for path in frog.iterdir():
            path.unlink()
    elif breakage == "corrupt image":
        (frog / "0000.png").write_bytes((frog / "0000.png").read_bytes()[:40])
    else:
        _write(frog / "0001.png", np.zeros((64, 64, 3), dtype=np.uint8))
    with pytest.raises(data.DataNotFoundError, match=message):
        data.cifar10("train", root=imagefolder, download=False)


def test_truncated_batch_file_says_to_download_again(batches):
    path = batches / "cifar-10-batches-py" / "data_batch_2"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(data.DataNotFoundError, match=r"data_batch_2 cannot be read.*Delete"):
        data.cifar10("train", root=batches, download=False)


def test_labels_outside_cifar10_are_refused(batches):
    path = batches / "cifar-10-batches-py" / "test_batch"
    with open(path, "rb") as handle:
        batch = pickle.load(handle)
    batch[b"labels"] = [label + 10 for label in batch[b"labels"]]
    with open(path, "wb") as handle:
        pickle.dump(batch, handle)
    with pytest.raises(data.DataNotFoundError, match=r"labels 10\.\.19; CIFAR-10's are 0\.\.9"):
        data.cifar10("test", root=batches, download=False)


def test_a_broken_decoded_cache_is_rebuilt(imagefolder):
    first = data.cifar10("train", root=imagefolder, download=False)
    (cached,) = (data.cache_dir() / "data").glob("imagefolder-train-*.pt")
    cached.write_bytes(b"")
    with pytest.warns(RuntimeWarning, match="cannot be read"):
        again = data.cifar10("train", root=imagefolder, download=False)
    assert torch.equal(first[0], again[0])


def test_a_moved_file_changes_the_decoded_cache(imagefolder):
    first = data.cifar10("train", root=imagefolder, download=False)
    source = imagefolder / "train" / "cat" / "0000.png"
    source.rename(imagefolder / "train" / "dog" / "0099.png")
    second = data.cifar10("train", root=imagefolder, download=False)
    assert first[1].bincount().tolist() != second[1].bincount().tolist()


def test_a_failed_download_leaves_nothing_behind(tmp_path, monkeypatch):
    import torchvision.datasets

    class Offline:
        def __init__(self, root, **kwargs):
            from pathlib import Path

            Path(root).mkdir(parents=True)  # as torchvision does before fetching
            Path(root, "cifar-10-python.tar.gz").write_bytes(b"partial")
            raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", Offline)
    target = tmp_path / "new" / "cifar10"
    with pytest.raises(data.DataNotFoundError, match="could not be downloaded"):
        data.cifar10("train", root=target, download=True)
    assert not (tmp_path / "new").exists()
