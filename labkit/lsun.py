"""LSUN specifics: download the official LMDB archives, read them, and fake small ones for tests.

LSUN ships each scene category as one LMDB (``{category}_{set}_lmdb/data.mdb``) that maps keys
(40 hex digits) to encoded WebP or JPEG bytes, zipped, at ``http://dl.yf.io/lsun/scenes/`` (the
layout of the fyu/lsun ``download.py`` script). :func:`download` fetches and unpacks one archive,
resuming an interrupted transfer; :class:`LmdbReader` iterates its records; :func:`make_fake_lmdb`
writes small LMDBs in the same format so that tests, quick modes and benchmarks need no network.
Decoding and preprocessing live in :mod:`labkit.images`.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import numpy as np

from labkit import _checks, rundir

LSUN_URL = "http://dl.yf.io/lsun/scenes/{category}_{set_name}_lmdb.zip"
CATEGORIES = ("bedroom", "bridge", "church_outdoor", "classroom", "conference_room",
              "dining_room", "kitchen", "living_room", "restaurant", "tower")
SET_NAMES = ("train", "val")
_BLOCK = 1 << 20
_ATTEMPTS = 3


class DownloadError(RuntimeError):
    """A download that could not be completed; the message is one line and says what to do."""


def check_category(category: str, set_name: str = "train") -> None:
    """Raise ``ValueError`` unless ``category`` is an LSUN scene category and ``set_name`` a set.

    >>> check_category("bedroom")
    """
    if category not in CATEGORIES:
        raise ValueError(f"category={category!r} is not an LSUN scene category; choose one of "
                         f"{', '.join(CATEGORIES)}")
    if set_name not in SET_NAMES:
        raise ValueError(f"set_name={set_name!r} is not allowed; choose one of "
                         f"{', '.join(SET_NAMES)}")


#: URL schemes :func:`download` fetches from (what ``urllib`` opens).
URL_SCHEMES = ("http", "https", "ftp", "file")


def check_url(url, name: str = "url") -> None:
    """Raise :class:`labkit._checks.BadValue` naming ``name`` unless ``url`` is None or an
    ``http(s)``, ``ftp`` or ``file`` URL (``urllib`` cannot open anything else).

    >>> check_url("http://dl.yf.io/lsun/scenes/bedroom_train_lmdb.zip")
    """
    if url is not None and not (isinstance(url, str) and re.fullmatch(
            rf"({'|'.join(URL_SCHEMES)})://\S+", url)):
        raise _checks.BadValue(name, url, "an http://, https://, ftp:// or file:// URL of the zip")


# ---------------------------------------------------------------------------------- download
def download(category: str, out: str | os.PathLike, url: str | None = None,
             set_name: str = "train", progress: bool = True) -> Path:
    """Fetch, verify and unpack one LSUN LMDB archive into ``out/{category}_{set_name}_lmdb``.

    The zip is streamed into ``{name}.zip.part``; if that file exists (an interrupted run) the
    transfer resumes from its end with an HTTP ``Range`` request, and a cut connection is
    resumed the same way up to three times. A server that ignores ``Range`` (status 200
    instead of 206) makes the download restart from byte zero. The finished file must have the
    announced ``Content-Length``; it is then unpacked into a temporary folder, which checks
    every member's CRC-32 as it is read (what ``zipfile.ZipFile.testzip`` checks, without
    reading the archive twice), and moved into place with one ``os.replace``. The zip is deleted
    afterwards. A folder that already holds ``data.mdb`` is returned as it is.

    Parameters
    ----------
    category : an LSUN scene category (:data:`CATEGORIES`), e.g. ``"bedroom"`` (the paper's)
    out : folder that receives the LMDB folder (created if missing)
    url : source of the zip; default :data:`LSUN_URL` for the category (give a mirror here)
    set_name : ``"train"`` or ``"val"``
    progress : show tqdm progress bars (bytes downloaded, bytes unpacked)

    Returns
    -------
    Path
        The LMDB folder, holding ``data.mdb``; open it with :class:`LmdbReader` or pass it to
        :func:`labkit.images.prepare`.

    Raises
    ------
    ValueError
        Unknown ``category``, ``set_name`` or kind of ``url``; ``out`` a file, or holding an
        incomplete LMDB folder (:class:`labkit.rundir.RunDirError`, naming ``out``).
    DownloadError
        No connection, an HTTP error, a short or corrupt archive: one line with the URL and how
        to resume or to place the files by hand.
    """
    check_category(category, set_name)
    check_url(url)
    name = f"{category}_{set_name}_lmdb"
    url = url or LSUN_URL.format(category=category, set_name=set_name)
    out = rundir.check(_checks.path("out", out), "out")
    target = out / name
    if (target / "data.mdb").is_file():
        return target
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise rundir.RunDirError("out", f"{str(out)!r}: {target.name} exists but is not a "
                                 "folder holding data.mdb; finish placing the files by hand, "
                                 "or remove it to download anew")
    out.mkdir(parents=True, exist_ok=True)
    archive = out / f"{name}.zip"
    by_hand = (f"to place the files by hand, fetch {name}.zip elsewhere (e.g. with the "
               f"fyu/lsun download.py script) and unzip it into {out} so that "
               f"{target / 'data.mdb'} exists")
    if not archive.is_file():
        _fetch(url, out / f"{name}.zip.part", progress, by_hand)
        os.replace(out / f"{name}.zip.part", archive)
    _extract(archive, target, progress, by_hand)
    archive.unlink()
    return target


def _fetch(url: str, part: Path, progress: bool, by_hand: str) -> None:
    """Download ``url`` into ``part``, resuming from its current length; retry cut transfers."""
    from tqdm.auto import tqdm

    bar = None
    try:
        for _ in range(_ATTEMPTS):
            start = part.stat().st_size if part.exists() else 0
            kept = (f"the {start} bytes received are kept in {part}: run the same command "
                    "again to resume; ") if start else ""
            try:
                response, start, total = _open(url, start)
            except urllib.error.HTTPError as err:
                raise DownloadError(f"could not download {url}: HTTP {err.code} {err.reason}; "
                                    f"check the URL or pass --url with a mirror; {kept}"
                                    f"{by_hand}") from None
            except (urllib.error.URLError, OSError) as err:
                reason = getattr(err, "reason", err)
                raise DownloadError(f"could not download {url} ({reason}); check the network "
                                    f"or pass --url with a mirror; {kept}{by_hand}") from None
            if response is None:  # the part file is already complete
                return
            bar = bar or tqdm(unit="B", unit_scale=True, unit_divisor=1024, dynamic_ncols=True,
                              disable=not progress, desc=part.name.removesuffix(".part"))
            bar.reset(total=total)
            bar.update(start)
            with response, open(part, "ab" if start else "wb") as f:
                while block := _read(response):
                    f.write(block)
                    bar.update(len(block))
            have = part.stat().st_size
            if total is None or have == total:
                return
            if have > total:
                part.unlink()
                raise DownloadError(f"download of {url} overran: {have} bytes for a "
                                    f"Content-Length of {total}; run the same command again "
                                    "to restart it")
    finally:
        if bar is not None:
            bar.close()
    raise DownloadError(f"download of {url} stopped at {have} of {total} bytes after "
                        f"{_ATTEMPTS} attempts; run the same command again to resume it "
                        f"from {part}")


def _read(response) -> bytes:
    """The next block of a response; empty at its end or when the connection is cut."""
    try:
        return response.read(_BLOCK)
    except (http.client.HTTPException, OSError):
        return b""


def _open(url: str, start: int):
    """GET ``url`` from byte ``start``: (response or None if already complete, start, total).

    ``start`` comes back as 0 when the server ignores the Range header (status 200): the
    caller then rewrites the file from the beginning instead of appending a whole body.
    """
    headers = {"Range": f"bytes={start}-"} if start else {}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                          timeout=60)
    except urllib.error.HTTPError as err:
        size = re.fullmatch(r"bytes \*/(\d+)", err.headers.get("Content-Range", "") or "")
        if err.code == 416 and size and int(size.group(1)) == start:
            return None, start, start
        raise
    if response.status == 206:
        match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)",
                             response.headers.get("Content-Range", ""))
        if match and int(match.group(1)) == start:
            total = match.group(2)
            return response, start, int(total) if total != "*" else None
        response.close()  # a range we did not ask for: start again from zero
        response = urllib.request.urlopen(url, timeout=60)
    length = response.headers.get("Content-Length")
    return response, 0, int(length) if length is not None else None


def _extract(archive: Path, target: Path, progress: bool, by_hand: str) -> None:
    """Unpack ``archive`` into a temporary folder beside ``target``, then move the LMDB there."""
    from tqdm.auto import tqdm

    tmp = target.with_name(f".{target.name}.unpacking")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            with tqdm(total=sum(m.file_size for m in members), unit="B", unit_scale=True,
                      unit_divisor=1024, disable=not progress, desc="unpacking",
                      dynamic_ncols=True) as bar:
                for member in members:
                    dest = _member_path(tmp, member.filename)
                    if member.is_dir():
                        dest.mkdir(parents=True, exist_ok=True)
                        continue
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(member) as src, open(dest, "wb") as dst:
                        while block := src.read(_BLOCK):  # BadZipFile on a bad CRC-32
                            dst.write(block)
                            bar.update(len(block))
        found = sorted(p.parent for p in tmp.rglob("data.mdb"))
        if not found:
            raise DownloadError(f"{archive} holds no data.mdb, so it is not an LSUN LMDB "
                                f"archive; {by_hand}")
        os.replace(found[0], target)
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        archive.unlink()
        raise DownloadError(f"{archive} is corrupt ({err}) and was deleted; run the same "
                            f"command again to download it anew; {by_hand}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _member_path(root: Path, name: str) -> Path:
    """Where zip member ``name`` goes under ``root``; names leaving ``root`` are refused."""
    parts = Path(name).parts
    if Path(name).is_absolute() or ".." in parts:
        raise DownloadError(f"zip member {name!r} would be written outside {root}; refusing it")
    return root.joinpath(*parts)


# ------------------------------------------------------------------------------------ reader
class LmdbReader:
    """Read-only view of an LSUN LMDB: keys (bytes, sorted) -> encoded WebP/JPEG bytes.

    Opened with ``readonly=True, lock=False`` (the archive is never written), one environment
    per process: open a reader in each worker rather than sharing one across ``fork``.

    Parameters
    ----------
    path : the LMDB folder, holding ``data.mdb`` (e.g. ``bedroom_train_lmdb``)

    Examples
    --------
    >>> import tempfile
    >>> with LmdbReader(make_fake_lmdb(tempfile.mkdtemp(), 3, size=16)) as reader:
    ...     len(reader), len(list(reader.keys()))
    (3, 3)
    """

    def __init__(self, path: str | os.PathLike):
        import lmdb

        self.path = Path(_checks.path("src", path))
        data = self.path / "data.mdb"
        if not data.is_file():
            raise _checks.NotFound("src", str(self.path), "an LMDB folder", " (no data.mdb in it)")
        try:
            self.env = lmdb.open(str(self.path), readonly=True, lock=False, meminit=False,
                                 max_readers=1)
            need = (self.env.info()["last_pgno"] + 1) * self.env.stat()["psize"]
        except lmdb.Error as err:
            raise _checks.BadValue("src", str(self.path), "a readable LMDB",
                                   f" ({type(err).__name__}: {err})") from None
        if need > data.stat().st_size:  # reading a page past the end would crash with SIGBUS
            self.env.close()
            raise _checks.BadValue("src", str(self.path), "a complete LMDB",
                                   f" (data.mdb holds {data.stat().st_size} bytes of the "
                                   f"{need} its pages need: truncated, e.g. by an unfinished "
                                   "copy)")

    def __len__(self) -> int:
        return int(self.env.stat()["entries"])

    def __reduce__(self):
        return LmdbReader, (self.path,)  # unpickling opens a fresh environment

    def keys(self) -> Iterator[bytes]:
        """All keys in the LMDB's (sorted) order."""
        with self.env.begin() as txn:
            yield from txn.cursor().iternext(keys=True, values=False)

    def records(self, first: bytes | None = None,
                count: int | None = None) -> Iterator[tuple[bytes, bytes]]:
        """``count`` (key, encoded image) pairs from key ``first`` on (default: all, in order)."""
        with self.env.begin() as txn:
            cursor = txn.cursor()
            if first is None:
                found = cursor.first()
            else:
                found = cursor.set_key(first)
                if not found:
                    raise KeyError(f"key {first!r} is not in {self.path}")
            n = 0
            while found and (count is None or n < count):
                yield cursor.key(), cursor.value()
                n += 1
                found = cursor.next()

    def __getitem__(self, key: bytes) -> bytes:
        with self.env.begin() as txn:
            value = txn.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def close(self) -> None:
        self.env.close()

    def __enter__(self) -> LmdbReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ------------------------------------------------------------------------------ fake LMDBs
def fake_image(rng: np.random.Generator, width: int, height: int, noise: float = 8.0):
    """A structured RGB picture: a two-colour gradient with a few ellipses and rectangles, plus
    Gaussian noise of standard deviation ``noise`` (grey levels) as texture.

    Smooth areas and edges, like a photograph and unlike noise, so image metrics can tell
    the two apart; the texture makes a 256 px WebP record about LSUN's size (12 KB) and as slow
    to decode. Returns a ``PIL.Image`` of ``width`` x ``height``.
    """
    from PIL import Image, ImageDraw

    a, b = rng.uniform(0, 255, size=(2, 3))
    angle = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:height, 0:width]
    t = (np.cos(angle) * x / width + np.sin(angle) * y / height)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-9)
    image = Image.fromarray((a + t[..., None] * (b - a)).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 6))):
        x0, x1 = np.sort(rng.uniform(-0.2, 1.2, size=2) * width)
        y0, y1 = np.sort(rng.uniform(-0.2, 1.2, size=2) * height)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x1 + 1, y1 + 1), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    if noise:
        pixels = np.asarray(image) + rng.normal(0, noise, size=(height, width, 3))
        image = Image.fromarray(pixels.round().clip(0, 255).astype(np.uint8), "RGB")
    return image


def make_fake_lmdb(path: str | os.PathLike, n: int, size: int = 64, fmt: str = "webp",
                   n_corrupt: int = 0, seed: int = 0) -> Path:
    """Write an LMDB in LSUN's format: ``n`` encoded pictures plus ``n_corrupt`` broken records.

    Keys are 40 hex digits (SHA-1 of the seed and the record number), as in LSUN. Each picture
    (:func:`fake_image`) has its shorter side equal to ``size`` and the other side 1 to 1.6
    times longer, in landscape or portrait, so that preprocessing's resize and centre crop
    are exercised. The broken records are random bytes or the first 40 bytes of a valid
    file: undecodable, as the few bad records of a real download. An LMDB already at
    ``path`` is replaced.

    Parameters
    ----------
    path : folder to hold ``data.mdb`` (created if missing)
    n : number of decodable pictures (>= 0)
    size : shorter side of every picture, in pixels (>= 8)
    fmt : ``"webp"`` (as LSUN) or ``"jpeg"``
    n_corrupt : number of undecodable records, mixed in among the others (>= 0)
    seed : seed of the keys, pictures and broken records

    Returns
    -------
    Path
        ``path``, ready for :class:`LmdbReader` and :func:`labkit.images.prepare`.
    """
    import lmdb

    for name, value, least in (("n", n, 0), ("size", size, 8), ("n_corrupt", n_corrupt, 0)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise ValueError(f"{name}={value!r} is not allowed; it must be an integer >= {least}")
    formats = {"webp": ("WEBP", {"quality": 80}), "jpeg": ("JPEG", {"quality": 90})}
    if fmt not in formats:
        raise ValueError(f"fmt={fmt!r} is not allowed; choose one of {', '.join(formats)}")
    pil_format, options = formats[fmt]
    rng = np.random.default_rng(seed)
    total = n + n_corrupt
    broken = set(rng.choice(total, size=n_corrupt, replace=False).tolist())
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for stale in ("data.mdb", "lock.mdb"):
        (path / stale).unlink(missing_ok=True)
    records = []
    for i in range(total):
        key = hashlib.sha1(f"{seed}-{i}".encode()).hexdigest().encode()
        long = int(size * rng.uniform(1.0, 1.6)) if rng.random() < 0.8 else size
        width, height = (long, size) if rng.random() < 0.5 else (size, long)
        buffer = BytesIO()
        fake_image(rng, width, height).save(buffer, pil_format, **options)
        value = buffer.getvalue()
        if i in broken:
            value = value[:40] if rng.random() < 0.5 else rng.bytes(len(value))
        records.append((key, value))
    map_size = (1 << 20) + 2 * sum(len(k) + len(v) + 64 for k, v in records)
    env = lmdb.open(str(path), map_size=map_size, subdir=True)
    with env.begin(write=True) as txn:
        for key, value in records:
            txn.put(key, value)
    env.close()
    return path


__all__ = ["download", "DownloadError", "LmdbReader", "make_fake_lmdb", "fake_image",
           "check_category", "check_url", "CATEGORIES", "SET_NAMES", "LSUN_URL", "URL_SCHEMES"]
