"""LSUN: fake LMDBs, the LMDB reader, and the download against a local HTTP server on loopback
(resume with Range after a cut, a server without Range, offline, HTTP errors, a corrupt zip),
and the ``python -m labkit lsun`` command group's one-line errors."""

import http.server
import re
import socket
import threading
import zipfile
from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from labkit import lsun
from labkit.cli import main


def lmdb_records(path):
    with lsun.LmdbReader(path) as reader:
        return list(reader.records())


def decodable(value: bytes) -> bool:
    try:
        with Image.open(BytesIO(value)) as image:
            image.load()
        return True
    except Exception:  # noqa: BLE001 - whatever PIL raises
        return False


# ------------------------------------------------------------------------------- fake LMDBs
def test_fake_lmdb_has_lsun_keys_varied_shapes_and_the_corrupt_records_asked(tmp_path):
    path = lsun.make_fake_lmdb(tmp_path / "db", 30, size=16, n_corrupt=4, seed=3)
    records = lmdb_records(path)
    keys = [k for k, _ in records]
    assert len(records) == 34 and keys == sorted(keys)
    assert all(re.fullmatch(rb"[0-9a-f]{40}", k) for k in keys)
    good = [v for _, v in records if decodable(v)]
    assert len(good) == 30
    assert all(v[:4] == b"RIFF" and v[8:12] == b"WEBP" for v in good)
    shapes = [Image.open(BytesIO(v)).size for v in good]
    assert all(min(s) == 16 and max(s) <= 16 * 1.6 for s in shapes)
    assert {w > h for w, h in shapes} == {True, False}  # landscape and portrait
    assert records == lmdb_records(lsun.make_fake_lmdb(tmp_path / "again", 30, size=16,
                                                       n_corrupt=4, seed=3))


def test_fake_jpeg_pictures_have_structure_unlike_noise(tmp_path):
    records = lmdb_records(lsun.make_fake_lmdb(tmp_path / "db", 8, size=32, fmt="jpeg"))
    assert all(v[:3] == b"\xff\xd8\xff" for _, v in records)
    pictures = [np.asarray(Image.open(BytesIO(v)).convert("RGB"), dtype=float)
                for _, v in records]
    noise = np.random.default_rng(0).uniform(0, 255, size=(32, 32, 3))

    def roughness(x):  # mean absolute difference between horizontal neighbours
        return np.abs(np.diff(x, axis=1)).mean()

    assert max(roughness(p) for p in pictures) < 0.3 * roughness(noise)  # noise: about 85
    assert min(p.std() for p in pictures) > 10  # not flat either


@pytest.mark.parametrize("kwargs, name", [({"n": -1}, "n"), ({"size": 4}, "size"),
                                          ({"n_corrupt": 1.5}, "n_corrupt"),
                                          ({"fmt": "png"}, "fmt")])
def test_fake_lmdb_bad_arguments(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}="):
        lsun.make_fake_lmdb(tmp_path / "db", **{"n": 2, **kwargs})


# ----------------------------------------------------------------------------------- reader
def test_reader_iterates_in_key_order_from_any_key(tmp_path):
    path = lsun.make_fake_lmdb(tmp_path / "db", 12, size=16)
    with lsun.LmdbReader(path) as reader:
        records = list(reader.records())
        assert len(reader) == 12 and list(reader.keys()) == [k for k, _ in records]
        assert list(reader.records(records[5][0], 4)) == records[5:9]
        assert list(reader.records(records[10][0], 100)) == records[10:]
        assert reader[records[3][0]] == records[3][1]
        with pytest.raises(KeyError):
            reader[b"0" * 40]
    with pytest.raises(FileNotFoundError,
                       match=r"^src must be an LMDB folder, got .* \(no data.mdb in it\)$"):
        lsun.LmdbReader(tmp_path)


# ---------------------------------------------------------------------------------- download
@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """An LSUN-style zip (``bedroom_train_lmdb/data.mdb``), its bytes and the records in it."""
    root = tmp_path_factory.mktemp("zip")
    db = lsun.make_fake_lmdb(root / "bedroom_train_lmdb", 40, size=16, n_corrupt=1)
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(db / "data.mdb", "bedroom_train_lmdb/data.mdb")
    return buffer.getvalue(), lmdb_records(db)


class Server:
    """An HTTP server on 127.0.0.1 (a thread) serving one payload at /lsun.zip.

    ``ranges``: honour ``Range: bytes=N-`` with 206; otherwise always answer 200 with the whole
    body. ``cuts``: for the first ``cuts`` requests, send the headers then only half the body
    and close the connection. ``requests`` logs the Range header of each request (or None).
    """

    def __init__(self, payload: bytes, ranges: bool = True, cuts: int = 0):
        self.payload, self.ranges, self.cuts, self.requests = payload, ranges, cuts, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                range_ = self.headers.get("Range")
                server.requests.append(range_)
                if self.path != "/lsun.zip":
                    self.send_error(404)
                    return
                body, start = server.payload, 0
                if server.ranges and range_:
                    start = int(re.fullmatch(r"bytes=(\d+)-", range_).group(1))
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                body = body[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if len(server.requests) <= server.cuts:
                    body = body[:len(body) // 2]
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/lsun.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(payload, **kwargs):
        servers.append(Server(payload, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_verifies_and_unpacks_atomically(tmp_path, archive, serve):
    payload, records = archive
    server = serve(payload)
    path = lsun.download("bedroom", tmp_path, url=server.url, progress=False)
    assert path == tmp_path / "bedroom_train_lmdb" and lmdb_records(path) == records
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bedroom_train_lmdb"]
    assert server.requests == [None]
    # already there: nothing is fetched (the URL now points at a closed port)
    dead = f"http://127.0.0.1:{free_port()}/lsun.zip"
    assert lsun.download("bedroom", tmp_path, url=dead, progress=False) == path
    (path / "data.mdb").rename(tmp_path / "elsewhere.mdb")  # lock.mdb-only: half placed by hand
    (path / "lock.mdb").write_bytes(b"")
    with pytest.raises(ValueError, match="^out '.*': bedroom_train_lmdb exists but is not a "
                                         "folder holding data"):
        lsun.download("bedroom", tmp_path, url=dead, progress=False)


def test_a_transfer_cut_half_way_resumes_with_range(tmp_path, archive, serve):
    payload, records = archive
    server = serve(payload, cuts=1)
    path = lsun.download("bedroom", tmp_path, url=server.url, progress=False)
    assert server.requests == [None, f"bytes={len(payload) // 2}-"]
    assert lmdb_records(path) == records


def test_an_interrupted_run_is_resumed_by_the_next_one(tmp_path, archive, serve):
    payload, records = archive
    broken = serve(payload, cuts=99)
    with pytest.raises(lsun.DownloadError, match="run the same command again to resume") as err:
        lsun.download("bedroom", tmp_path, url=broken.url, progress=False)
    assert "\n" not in str(err.value) and broken.url in str(err.value)
    part = tmp_path / "bedroom_train_lmdb.zip.part"
    have = part.stat().st_size
    assert len(broken.requests) == 3 and 0 < have < len(payload)
    assert part.read_bytes() == payload[:have]
    server = serve(payload)
    path = lsun.download("bedroom", tmp_path, url=server.url, progress=False)
    assert server.requests == [f"bytes={have}-"]
    assert lmdb_records(path) == records and not part.exists()


def test_a_complete_part_file_is_not_fetched_again(tmp_path, archive, serve):
    payload, records = archive
    (tmp_path / "bedroom_train_lmdb.zip.part").write_bytes(payload)  # killed before unpacking
    server = serve(payload)
    path = lsun.download("bedroom", tmp_path, url=server.url, progress=False)
    assert server.requests == [f"bytes={len(payload)}-"]  # answered 416: nothing left to send
    assert lmdb_records(path) == records


def test_a_server_without_range_restarts_from_zero(tmp_path, archive, serve):
    payload, records = archive
    part = tmp_path / "bedroom_train_lmdb.zip.part"
    part.write_bytes(b"x" * 1000)  # not a prefix of the payload: appending would corrupt it
    server = serve(payload, ranges=False)
    path = lsun.download("bedroom", tmp_path, url=server.url, progress=False)
    assert server.requests == ["bytes=1000-"]
    assert lmdb_records(path) == records


def test_offline_and_http_errors_are_one_line_with_the_url_and_the_manual_way(tmp_path, serve):
    url = f"http://127.0.0.1:{free_port()}/lsun.zip"
    with pytest.raises(lsun.DownloadError) as err:
        lsun.download("bedroom", tmp_path, url=url, progress=False)
    message = str(err.value)
    assert "\n" not in message and url in message and "refused" in message
    assert f"so that {tmp_path / 'bedroom_train_lmdb' / 'data.mdb'} exists" in message
    server = serve(b"")
    missing = server.url.replace("lsun.zip", "nothing.zip")
    with pytest.raises(lsun.DownloadError, match=f"^could not download {missing}: HTTP 404"):
        lsun.download("bedroom", tmp_path, url=missing, progress=False)


@pytest.mark.parametrize("where", [0.2, 0.5, 0.8])
def test_a_corrupt_archive_is_refused_and_deleted(tmp_path, archive, serve, where):
    payload, _ = archive
    damaged = bytearray(payload)
    damaged[int(len(damaged) * where)] ^= 0xFF  # inside data.mdb's compressed bytes
    server = serve(bytes(damaged))
    with pytest.raises(lsun.DownloadError, match="is corrupt .* and was deleted"):
        lsun.download("bedroom", tmp_path, url=server.url, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_the_default_url_is_the_lsun_scripts_layout():
    assert lsun.LSUN_URL.format(category="bedroom", set_name="train") == \
        "http://dl.yf.io/lsun/scenes/bedroom_train_lmdb.zip"
    with pytest.raises(ValueError, match="^category='bedrooms' is not an LSUN scene category"):
        lsun.download("bedrooms", "unused")
    with pytest.raises(ValueError, match="^set_name='test' is not allowed"):
        lsun.download("bedroom", "unused", set_name="test")


# --------------------------------------------------------------------------------------- CLI
def run_cli(capsys, *args):
    try:
        status = main(list(args))
    except SystemExit as stop:
        status = stop.code
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_download(tmp_path, archive, serve, capsys):
    payload, records = archive
    server = serve(payload)
    status, out, _ = run_cli(capsys, "lsun", "download", "--category", "bedroom", "--out",
                             str(tmp_path), "--url", server.url, "--quiet")
    assert status == 0 and "LMDB ready" in out
    assert lmdb_records(tmp_path / "bedroom_train_lmdb") == records
    next_command = out.split("next: python -m labkit ")[1].split()  # it must work as printed
    status, out, _ = run_cli(capsys, *next_command, "--quiet")
    assert status == 0 and out.startswith(f"cache {tmp_path / 'bedroom_train64'}: 40 images")
    url = f"http://127.0.0.1:{free_port()}/x.zip"
    status, _, err = run_cli(capsys, "lsun", "download", "--category", "kitchen", "--out",
                             str(tmp_path), "--url", url, "--quiet")
    assert status == 1 and err.startswith(f"error: could not download {url}")
    assert err.count("\n") == 1


@pytest.mark.parametrize("args, flag", [
    (["download", "--category", "bedrooms", "--out", "x"], "--category"),
    (["download", "--category", "bedroom", "--out", "x", "--set", "test"], "--set"),
    (["prepare", "--src", "x", "--out", "y", "--size", "48"], "--size"),
    (["prepare", "--src", "x", "--out", "y", "--size", "8"], "--size"),
    (["prepare", "--src", "x", "--out", "y", "--workers", "0"], "--workers"),
    (["prepare", "--src", "x", "--out", "y", "--limit", "-3"], "--limit"),
    (["prepare", "--out", "y"], "--src"),
])
def test_cli_argument_errors_are_one_line_naming_the_flag(capsys, args, flag):
    status, _, err = run_cli(capsys, "lsun", *args)
    assert status == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert flag in err


def test_cli_prepare_missing_source(tmp_path, capsys):
    status, _, err = run_cli(capsys, "lsun", "prepare", "--src", str(tmp_path / "nope"),
                             "--out", str(tmp_path / "c"))
    assert (status, err) == (2, "error: --src must be an LSUN LMDB folder (holding data.mdb) or "
                                f"a folder of images, got {str(tmp_path / 'nope')!r}: no such "
                                "file or folder\n")

