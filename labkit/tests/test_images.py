"""The image cache format: round trip, checksums, and one-line errors for damaged caches."""

import json

import numpy as np
import pytest

from labkit import images


@pytest.fixture
def pixels():
    return np.random.default_rng(0).integers(0, 256, size=(5, 3, 16, 16), dtype=np.uint8)


def test_round_trip_is_exact_and_memory_mapped(tmp_path, pixels):
    cache = images.save_cache(pixels, tmp_path / "c", source="unit test", skipped=[("k3", "bad")])
    assert isinstance(cache.images, np.memmap)
    np.testing.assert_array_equal(cache.images, pixels)
    assert (cache.count, cache.size) == (5, 16)
    assert cache.manifest["skipped"] == [["k3", "bad"]]
    assert cache.manifest["sha256"] == images.file_sha256(tmp_path / "c" / images.IMAGES_FILE)
    images.open_cache(tmp_path / "c", size=16, verify=True)


def test_to_unit_range_matches_the_authors_normalisation(pixels):
    # torchvision's ToTensor then Normalize((0.5,)*3, (0.5,)*3): (p / 255 - 0.5) / 0.5
    expected = (pixels.astype(np.float64) / 255 - 0.5) / 0.5
    np.testing.assert_allclose(images.to_unit_range(pixels).numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("size", [0, 8, 48, 100, True, 64.0, "64"])
def test_image_size_must_be_a_power_of_two_from_16(size):
    with pytest.raises(ValueError, match=r"^size=.*power of two >= 16$"):
        images.check_image_size(size)


def test_other_size_is_refused(tmp_path, pixels):
    images.save_cache(pixels, tmp_path / "c", source="t")
    with pytest.raises(ValueError, match="size=32 does not match .* made at size 16"):
        images.open_cache(tmp_path / "c", size=32)


def test_missing_damaged_and_tampered_caches(tmp_path, pixels):
    with pytest.raises(FileNotFoundError, match="no folder"):
        images.open_cache(tmp_path / "nowhere")
    folder = tmp_path / "c"
    images.save_cache(pixels, folder, source="t")
    manifest = folder / images.MANIFEST_FILE
    good = manifest.read_text()
    manifest.write_text("{not json")
    with pytest.raises(ValueError, match="is damaged"):
        images.open_cache(folder)
    manifest.write_text(json.dumps({**json.loads(good), "count": 4}))
    with pytest.raises(ValueError, match="manifest says"):
        images.open_cache(folder)
    manifest.write_text(good)
    data = np.load(folder / images.IMAGES_FILE, mmap_mode="r+")
    data[0, 0, 0, 0] ^= 1
    data.flush()
    del data
    images.open_cache(folder)  # without verify the checksum is not read
    with pytest.raises(ValueError, match="checksum"):
        images.open_cache(folder, verify=True)
    manifest.unlink()
    with pytest.raises(FileNotFoundError, match="manifest.json' is missing"):
        images.open_cache(folder)
