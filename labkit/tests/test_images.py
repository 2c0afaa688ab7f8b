"""Image data: the cache format (round trip, checksums, damaged caches), the authors'
preprocessing against a hand computation, the folder reader, and prepare (order, corrupt
records, --limit, resume after a kill or Ctrl-C, refusals, one-line errors)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labkit import images, lsun


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
def test_image_size_must_be_a_power_of_two_from_16(size, tmp_path):
    with pytest.raises(ValueError, match=r"^size must be a power of two >= 16 .*, got "):
        images.prepare(tmp_path, tmp_path / "cache", size=size, progress=False)


def test_other_size_is_refused(tmp_path, pixels):
    images.save_cache(pixels, tmp_path / "c", source="t")
    with pytest.raises(ValueError, match="size=32 does not match .* made at size 16"):
        images.open_cache(tmp_path / "c", size=32)


def test_missing_damaged_and_tampered_caches(tmp_path, pixels):
    with pytest.raises(FileNotFoundError, match="no such folder$"):
        images.open_cache(tmp_path / "nowhere")
    folder = tmp_path / "c"
    images.save_cache(pixels, folder, source="t")
    manifest = folder / images.MANIFEST_FILE
    good = manifest.read_text()
    manifest.write_text("{not json")
    with pytest.raises(ValueError, match=r"^path must be an undamaged image cache, got .* \(Expec"):
        images.open_cache(folder)
    manifest.write_text(json.dumps({**json.loads(good), "count": 4}))
    with pytest.raises(ValueError, match=r"manifest says uint8 \(4, 3, 16, 16\); delete .* and "
                                         r"prepare it again: python -m labkit lsun prepare --src "
                                         r"t --out .* --size 16$"):
        images.open_cache(folder)
    manifest.write_text(good)
    data = np.load(folder / images.IMAGES_FILE, mmap_mode="r+")
    data[0, 0, 0, 0] ^= 1
    data.flush()
    del data
    images.open_cache(folder)  # without verify the checksum is not read
    with pytest.raises(ValueError, match="images.npy does not match the checksum in its manifest"):
        images.open_cache(folder, verify=True)
    manifest.unlink()
    with pytest.raises(FileNotFoundError,
                       match="manifest.json is missing; make a cache there with"):
        images.open_cache(folder)


# ----------------------------------------------------------------------------- preprocessing
def triangle_weights(n_in: int, n_out: int) -> np.ndarray:
    """Bilinear (triangle) resampling from n_in to n_out samples, widened by the scale when
    shrinking and renormalised at the borders: w[i, j] ~ max(0, 1 - |c_j - x_i| / s) with
    c_j = j + 1/2 (source centres), x_i = (i + 1/2) s (output centres), s = n_in / n_out."""
    s = n_in / n_out
    x = (np.arange(n_out) + 0.5) * s
    w = np.maximum(0.0, 1 - np.abs(np.arange(n_in)[None, :] + 0.5 - x[:, None]) / max(s, 1))
    return w / w.sum(axis=1, keepdims=True)


def round_half_up(x):
    return np.floor(x + 0.5).clip(0, 255)


def test_preprocess_matches_a_hand_computed_resize_and_centre_crop():
    # 64 wide, 32 high, size 16: the shorter side halves (32 -> 16, 64 -> 32), then columns
    # 8..23 are kept. Halving with the triangle filter weights 4 neighbours 1/8, 3/8, 3/8, 1/8.
    rgb = np.random.default_rng(1).integers(0, 256, size=(32, 64, 3)).astype(float)
    w_x, w_y = triangle_weights(64, 32), triangle_weights(32, 16)
    np.testing.assert_allclose(w_x[5, 9:13], [1 / 8, 3 / 8, 3 / 8, 1 / 8])
    np.testing.assert_allclose(w_x[0, :3], [3 / 7, 3 / 7, 1 / 7])
    rows = round_half_up(np.einsum("xj,ijc->ixc", w_x, rgb))  # PIL: horizontal pass first,
    full = round_half_up(np.einsum("yi,ixc->yxc", w_y, rows))  # rounded to uint8 in between
    expected = full[:, 8:24].transpose(2, 0, 1)
    out = images.preprocess(Image.fromarray(rgb.astype(np.uint8)), 16)
    assert out.dtype == np.uint8 and out.shape == (3, 16, 16) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("width, height, top, left", [(16, 21, 2, 0), (21, 16, 0, 2),
                                                      (16, 23, 4, 0), (16, 16, 0, 0)])
def test_shorter_side_already_at_size_is_only_cropped_as_torchvision_rounds(width, height,
                                                                             top, left):
    # CenterCrop starts at int(round((side - size) / 2)): round(2.5) = 2, round(3.5) = 4
    rgb = np.random.default_rng(2).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    out = images.preprocess(Image.fromarray(rgb), 16)
    np.testing.assert_array_equal(out, rgb[top:top + 16, left:left + 16].transpose(2, 0, 1))


def test_other_modes_become_rgb():
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = images.preprocess(Image.fromarray(gray, "L"), 16)
    np.testing.assert_array_equal(out, np.stack([gray] * 3))
    rgba = np.dstack([np.stack([gray] * 3, axis=-1), np.zeros((16, 16), np.uint8)])
    np.testing.assert_array_equal(images.preprocess(Image.fromarray(rgba, "RGBA"), 16), out)


# ----------------------------------------------------------------------------------- readers
def write_picture(path, seed, size=(20, 16), fmt=None):
    rgb = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3),
                                               dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, fmt)
    return path


@pytest.fixture
def folder(tmp_path):
    """b.png, a/c.jpg, a/d.webp, z.PNG, a broken e.jpg, and files that are not images."""
    root = tmp_path / "pictures"
    write_picture(root / "b.png", 0)
    write_picture(root / "a" / "c.jpg", 1, (16, 24))
    write_picture(root / "a" / "d.webp", 2, (30, 17))
    write_picture(root / "z.PNG", 3)
    (root / "e.jpg").write_bytes(b"\xff\xd8\xff" + bytes(50))
    (root / "notes.txt").write_text("not an image")
    write_picture(root / ".hidden" / "f.png", 4)
    return root


def test_folder_reader_lists_images_in_sorted_order(folder):
    reader = images.FolderReader(folder)
    keys = ["a/c.jpg", "a/d.webp", "b.png", "e.jpg", "z.PNG"]
    assert list(reader.keys()) == keys and len(reader) == 5
    assert list(reader.records("a/d.webp", 2)) == [(k, (folder / k).read_bytes())
                                                   for k in keys[1:3]]
    assert reader["z.PNG"] == (folder / "z.PNG").read_bytes()
    with pytest.raises(KeyError):
        list(reader.records("a/zz.png", 1))


def test_open_source_tells_lmdb_folder_and_nothing_apart(tmp_path, folder):
    assert isinstance(images.open_source(folder), images.FolderReader)
    with images.open_source(lsun.make_fake_lmdb(tmp_path / "db", 2, size=16)) as reader:
        assert isinstance(reader, lsun.LmdbReader)
    with pytest.raises(FileNotFoundError, match=r"^src must be an LSUN LMDB folder \(holding "
                                                r"data.mdb\) or a folder of images, got '.*"
                                                r"missing': no such file or folder$"):
        images.open_source(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="^src must be .*: it holds neither data.mdb nor files"):
        images.open_source(tmp_path / "empty")


# ----------------------------------------------------------------------------------- prepare
@pytest.fixture(scope="module")
def lmdb_source(tmp_path_factory):
    """60 WebP pictures (shorter side 32) and 5 corrupt records."""
    return lsun.make_fake_lmdb(tmp_path_factory.mktemp("lsun") / "db", 60, size=32,
                               n_corrupt=5, seed=1)


def decode_all(path, size, limit=None):
    """The truth for prepare: every record decoded in key order, one by one; the bad keys."""
    good, bad = [], []
    with lsun.LmdbReader(path) as reader:
        for key, value in list(reader.records())[:limit]:
            try:
                good.append(images.decode(value, size))
            except Exception:  # noqa: BLE001
                bad.append(key.decode())
    return np.stack(good), bad


@pytest.mark.parametrize("workers", [1, 2])
def test_prepare_lmdb_keeps_order_and_reports_corrupt_records(tmp_path, lmdb_source, workers):
    expected, bad = decode_all(lmdb_source, 16)
    assert len(expected) == 60 and len(bad) == 5
    cache = images.prepare(lmdb_source, tmp_path / "c", size=16, workers=workers,
                           progress=False, chunk_size=8)
    np.testing.assert_array_equal(cache.images, expected)
    assert [key for key, _ in cache.manifest["skipped"]] == bad
    assert all(reason for _, reason in cache.manifest["skipped"])
    assert cache.manifest["source"] == str(lmdb_source.resolve())
    assert cache.manifest["limit"] is None
    assert sorted(p.name for p in cache.path.iterdir()) == ["images.npy", "manifest.json"]
    header = 128  # the trimmed file is exactly the decoded images after numpy's header
    assert (cache.path / "images.npy").stat().st_size == header + 60 * 3 * 16 * 16
    images.open_cache(cache.path, size=16, verify=True)


def test_prepare_limit_takes_the_first_records(tmp_path, lmdb_source):
    expected, bad = decode_all(lmdb_source, 16, limit=20)
    cache = images.prepare(lmdb_source, tmp_path / "c", size=16, limit=20, progress=False,
                           chunk_size=8)
    np.testing.assert_array_equal(cache.images, expected)
    assert [k for k, _ in cache.manifest["skipped"]] == bad
    assert cache.count + len(bad) == 20 and cache.manifest["limit"] == 20


def test_prepare_a_folder_of_images(tmp_path, folder):
    cache = images.prepare(folder, tmp_path / "c", size=16, workers=2, progress=False,
                           chunk_size=2)
    keys = ["a/c.jpg", "a/d.webp", "b.png", "z.PNG"]
    expected = [images.preprocess(Image.open(folder / k), 16) for k in keys]
    np.testing.assert_array_equal(cache.images, np.stack(expected))
    assert [k for k, _ in cache.manifest["skipped"]] == ["e.jpg"]


def test_prepare_returns_a_finished_cache_and_refuses_other_settings(tmp_path, lmdb_source,
                                                                     monkeypatch):
    first = images.prepare(lmdb_source, tmp_path / "c", size=16, limit=10, progress=False)

    def no_decoding(*args):
        raise AssertionError("a finished cache was decoded again")

    monkeypatch.setattr(images.decoding, "decode", no_decoding)
    again = images.prepare(lmdb_source, tmp_path / "c", size=16, limit=10, progress=False)
    assert again.manifest == first.manifest
    with pytest.raises(ValueError, match=r"^out '.*' already holds a finished cache .* "
                                         r"size=32 \(it has 16\)"):
        images.prepare(lmdb_source, tmp_path / "c", size=32, limit=10, progress=False)
    with pytest.raises(ValueError, match=r"limit=None \(it has 10\)"):
        images.prepare(lmdb_source, tmp_path / "c", size=16, progress=False)
    (tmp_path / "c" / images.MANIFEST_FILE).write_text("{broken")
    with pytest.raises(ValueError, match="holds a manifest.json that is not a labkit image "
                                         "cache's; choose a new or empty folder$"):
        images.prepare(lmdb_source, tmp_path / "c", size=16, limit=10, progress=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"size": 48}, r"^size must be a power of two >= 16 \(16, 32, 64, .*\), got 48$"),
    ({"size": 8}, "^size must be a power of two >= 16 .*, got 8$"),
    ({"workers": 0}, r"^workers must be an integer in \[1, \d+\], got 0$"),
    ({"workers": 1.5}, r"^workers must be an integer in \[1, \d+\], got 1.5$"),
    ({"limit": 0}, "^limit must be an integer >= 1, got 0$"),
])
def test_prepare_bad_arguments(tmp_path, lmdb_source, kwargs, message):
    with pytest.raises(ValueError, match=message):
        images.prepare(lmdb_source, tmp_path / "c", progress=False, **kwargs)
    assert not (tmp_path / "c").exists()


def test_prepare_bad_paths_and_undecodable_sources(tmp_path, lmdb_source):
    with pytest.raises(FileNotFoundError, match="^src must be .*: no such file or folder$"):
        images.prepare(tmp_path / "missing", tmp_path / "c", progress=False)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="^out '.*' is a file, not a folder"):
        images.prepare(lmdb_source, tmp_path / "file", progress=False)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.jpg").write_bytes(b"nothing")
    with pytest.raises(ValueError, match=r"^src must be a source with images that decode, got "
                                         r".*: none of its 1 records could be decoded \(first: "
                                         r"a.jpg: not an image"):
        images.prepare(junk, tmp_path / "c", size=16, progress=False)


# ------------------------------------------------------------------- resume after kill, Ctrl-C
SLOW_PREPARE = """
import functools, signal, sys, time
from labkit import images
from labkit.images import decoding

signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, whatever we inherit
decode = decoding.decode
calls = 0


def slow_decode(data, size):
    # 10 ms a record; a worker that has decoded two chunks of 10 then waits for the signal, so
    # the run is always stopped after 3 or 4 chunks of the 7, however late the test looks
    global calls
    calls += 1
    time.sleep(0.01 if calls <= 20 else 60)
    return decode(data, size)


decoding.decode = slow_decode  # also in spawned workers, which import this file as __mp_main__
images.prepare = functools.partial(images.prepare, chunk_size=10)
if __name__ == "__main__":
    if sys.argv[1] == "cli":  # the command line (which imports torch: slower to start)
        from labkit import cli

        sys.exit(cli.main(sys.argv[2:]))
    images.prepare(sys.argv[1], sys.argv[2], size=16, workers=2, progress=False)
"""


def start_slow_prepare(tmp_path, src, out, cli=False):
    """Prepare ``src`` into ``out`` with 2 workers in a process group of its own, through the
    library or ``python -m labkit lsun prepare``; returns once 3 chunks of 10 records are done
    (each worker stops after 2 chunks, so the run never finishes by itself)."""
    script = tmp_path / "slow_prepare.py"
    script.write_text(SLOW_PREPARE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(images.__file__).parents[2]), os.environ.get("PYTHONPATH", "")])}
    args = (["cli", "lsun", "prepare", "--src", str(src), "--out", str(out), "--size", "16",
             "--workers", "2", "--quiet"] if cli else [str(src), str(out)])
    proc = subprocess.Popen([sys.executable, str(script), *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if json.loads((out / images.STATE_FILE).read_text())["records_done"] >= 30:
                return proc
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError(f"prepare did not get going: {proc.communicate()}")


def test_prepare_resumes_after_a_kill_without_redoing_finished_chunks(tmp_path, lmdb_source,
                                                                      monkeypatch):
    out = tmp_path / "c"
    proc = start_slow_prepare(tmp_path, lmdb_source, out)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers
    proc.wait()
    done = json.loads((out / images.STATE_FILE).read_text())["records_done"]
    assert 30 <= done < 65 and done % 10 == 0 and not (out / images.MANIFEST_FILE).exists()

    calls = []
    decode = images.decode
    monkeypatch.setattr(images.decoding, "decode", lambda data, size: calls.append(1) or
                        decode(data, size))
    cache = images.prepare(lmdb_source, out, size=16, progress=False, chunk_size=10)
    assert len(calls) == 65 - done  # only the unfinished chunks were decoded
    expected, bad = decode_all(lmdb_source, 16)
    np.testing.assert_array_equal(cache.images, expected)
    assert [k for k, _ in cache.manifest["skipped"]] == bad
    images.open_cache(out, verify=True)


def test_ctrl_c_keeps_finished_chunks_and_the_same_command_continues(tmp_path, lmdb_source,
                                                                     capsys):
    from labkit.cli import main

    out = tmp_path / "c"
    proc = start_slow_prepare(tmp_path, lmdb_source, out, cli=True)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    done = json.loads((out / images.STATE_FILE).read_text())["records_done"]
    assert err.strip().splitlines()[-1] == (f"interrupted; {done} of 65 records are done and kept "
                                            f"in {out}; run the same command again to continue")
    assert json.loads((out / images.STATE_FILE).read_text())["records_done"] >= 30
    with pytest.raises(ValueError, match=r"unfinished prepare with other settings: "
                                         r"size=32 \(it has 16\)"):
        images.prepare(lmdb_source, out, size=32, progress=False, chunk_size=10)
    assert main(["lsun", "prepare", "--src", str(lmdb_source), "--out", str(out), "--size",
                 "16", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected, bad = decode_all(lmdb_source, 16)
    assert lines[0].startswith(f"cache {out}: 60 images of 3 x 16 x 16 (uint8) from ")
    assert lines[0].endswith("; 5 undecodable record(s) skipped")
    assert [line.split()[1].rstrip(":") for line in lines[1:]] == bad
    np.testing.assert_array_equal(images.open_cache(out).images, expected)


def test_a_crash_between_the_rename_and_the_manifest_is_finished_without_decoding(
        tmp_path, lmdb_source, monkeypatch):
    write_manifest = images.write_manifest

    class Crash(Exception):
        pass

    def crash(*args, **kwargs):
        raise Crash

    monkeypatch.setattr(images.preparing, "write_manifest", crash)
    with pytest.raises(Crash):
        images.prepare(lmdb_source, tmp_path / "c", size=16, limit=30, progress=False)
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["images.npy",
                                                                  "prepare-state.json"]
    expected, bad = decode_all(lmdb_source, 16, limit=30)
    monkeypatch.setattr(images.preparing, "write_manifest", write_manifest)
    monkeypatch.setattr(images.decoding, "decode", crash)  # nothing is left to decode
    cache = images.prepare(lmdb_source, tmp_path / "c", size=16, limit=30, progress=False)
    np.testing.assert_array_equal(cache.images, expected)
    assert [k for k, _ in cache.manifest["skipped"]] == bad
    images.open_cache(cache.path, verify=True)
