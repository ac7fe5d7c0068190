"""Getting the real corpora (tinyattn.data.download), offline: every download comes
from an HTTP server on 127.0.0.1 serving small files the tests make."""

import hashlib
import http.server
import io
import os
import socket
import threading
import zipfile
from pathlib import Path

import pytest

import tinyattn.data.download as download
from tinyattn.data import CORPORA, Corpus, FetchError, data_dir, fetch, locate

from .cli_helpers import run_cli

TSV = "Go.\tVa !\nHi.\tSalut !\nHe is ten years old.\t他十岁。\n".encode()
MEMBER = "tiny-eng/tiny.txt"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def zipped(members: dict) -> bytes:
    """A zip of ``members`` whose bytes do not depend on the clock: a fixed timestamp per
    member (``writestr`` with a bare name stamps the current time, and then the sha256 in
    the test ids differs between pytest-xdist workers, which refuse to run)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data,
                       compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


ZIP = zipped({MEMBER: TSV, "tiny-eng/_about.txt": b"about"})
FILES = {
    "/tiny.zip": ZIP,
    "/tiny.txt": TSV,
    "/nomember.zip": zipped({"other.txt": TSV}),
    "/corrupt.zip": ZIP[:30] + b"\0" * 40 + ZIP[70:],  # local header and data damaged
    "/wrong.txt": TSV.replace(b"Salut", b"Hello"),
    "/notzip.zip": b"<html>not a zip</html>\n",
}


class Handler(http.server.BaseHTTPRequestHandler):
    """GET FILES[path]; /truncated promises more bytes than it sends."""

    def do_GET(self):
        if self.path == "/truncated":
            self.send_response(200)
            self.send_header("Content-Length", str(len(ZIP) + 1000))
            self.end_headers()
            self.wfile.write(ZIP)
            self.close_connection = True
            return
        body = FILES.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server:
    def __init__(self):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture(autouse=True)
def offline_env(monkeypatch, tmp_path):
    """No proxy between the tests and 127.0.0.1; no real data directory touched."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TINYATTN_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("TQDM_DISABLE", "1")


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.close()


def corpus(url, *, name="tiny", member=MEMBER, sha256=None, file_sha256=None) -> Corpus:
    path = url.rsplit("/", 1)[-1]
    body = FILES.get("/" + path, b"")
    return Corpus(name=name, description="a tiny test corpus", url=url,
                  sha256=sha256 or sha(body), member=member, file_name=f"{name}.tsv",
                  file_sha256=file_sha256 or sha(TSV), licence="CC0 (test data)",
                  attribution="the tinyattn tests")


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/tiny.zip"


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory)) if directory.exists() else []


# ----- downloads -------------------------------------------------------------
def test_download_extracts_checks_and_writes_the_licence(server, tmp_path, capsys):
    c = corpus(server.url + "/tiny.zip")
    path = fetch(c, directory=tmp_path)
    assert path == tmp_path / "tiny.tsv" and path.read_bytes() == TSV
    assert listing(tmp_path) == ["tiny.LICENSE.txt", "tiny.tsv"]
    licence = (tmp_path / "tiny.LICENSE.txt").read_text()
    assert "Licence: CC0 (test data)" in licence and "the tinyattn tests" in licence
    err = capsys.readouterr().err
    assert "Licence: CC0 (test data)" in err and "Attribution: the tinyattn tests" in err


def test_plain_file_download(server, tmp_path):
    c = corpus(server.url + "/tiny.txt", member=None)
    assert fetch(c, directory=tmp_path, progress=False).read_bytes() == TSV


def test_second_fetch_uses_the_cache_without_network(tmp_path, capsys):
    own = Server()
    c = corpus(own.url + "/tiny.zip")
    try:
        first = fetch(c, directory=tmp_path)
    finally:
        own.close()
    licence = (tmp_path / "tiny.LICENSE.txt").stat()
    capsys.readouterr()
    assert fetch(c, directory=tmp_path) == first  # the server is gone
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "CC0 (test data)" in err
    assert (tmp_path / "tiny.LICENSE.txt").stat().st_mtime_ns == licence.st_mtime_ns


def test_data_dir_follows_the_environment(server, monkeypatch, tmp_path):
    monkeypatch.setenv("TINYATTN_DATA", str(tmp_path / "mine"))
    assert data_dir() == tmp_path / "mine"
    assert fetch(corpus(server.url + "/tiny.zip")) == tmp_path / "mine" / "tiny.tsv"
    monkeypatch.delenv("TINYATTN_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "tinyattn"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir() == tmp_path / "home" / ".cache" / "tinyattn"


@pytest.mark.parametrize("path, sha256, file_sha256, expected", [
    ("/tiny.zip", "0" * 64, None, "has sha256 {got}, expected " + "0" * 64),
    ("/tiny.zip", None, "1" * 64, "has sha256 {tsv}, expected " + "1" * 64),
    ("/truncated", sha(ZIP), None, f"truncated download from {{url}}: got {len(ZIP)} of "
                                   f"{len(ZIP) + 1000} bytes"),
    ("/nomember.zip", None, None, f"nomember.zip has no member '{MEMBER}' (it holds: "
                                  "other.txt)"),
    ("/corrupt.zip", None, None, "corrupt.zip is not a readable zip archive, or is damaged"),
    ("/notzip.zip", None, None, "notzip.zip is not a readable zip archive, or is damaged "
                                "(File is not a zip file)"),
    ("/missing.zip", "0" * 64, None, "cannot download tiny from {url}: HTTP 404 Not Found"),
])
def test_a_failed_download_leaves_nothing(server, tmp_path, path, sha256, file_sha256,
                                          expected):
    url = server.url + path
    c = corpus(url, sha256=sha256, file_sha256=file_sha256)
    with pytest.raises(FetchError) as err:
        fetch(c, directory=tmp_path, progress=False)
    message = str(err.value)
    assert expected.format(url=url, got=sha(ZIP), tsv=sha(TSV)) in message, message
    assert "\n" not in message
    assert listing(tmp_path) == []  # no temporary, no final file, no licence


def test_connection_refused_is_one_line_naming_the_url_and_from(tmp_path):
    url = closed_port_url()
    with pytest.raises(FetchError) as err:
        fetch(corpus(url), directory=tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert f"cannot download tiny from {url}: Connection refused. Get tiny.zip by hand" in message
    assert "tinyattn data fetch tiny --from PATH" in message
    assert listing(tmp_path) == []


@pytest.mark.parametrize("where", ["download", "store"])
def test_ctrl_c_leaves_nothing(server, tmp_path, monkeypatch, where):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    if where == "download":  # while bytes arrive
        monkeypatch.setattr(download._Progress, "update", interrupt)
    else:  # while the member is extracted into the named temporary
        monkeypatch.setattr(download, "_copy", interrupt)
    with pytest.raises(KeyboardInterrupt):
        fetch(corpus(server.url + "/tiny.zip"), directory=tmp_path)
    assert listing(tmp_path) == []


def test_progress_without_tqdm_prints_plain_lines(server, tmp_path, capsys):
    fetch(corpus(server.url + "/tiny.zip"), directory=tmp_path)  # TQDM_DISABLE=1
    assert "tiny: tiny.zip: 0.0 of 0.0 MB (100%)" in capsys.readouterr().err
    fetch(corpus(server.url + "/tiny.txt", name="quiet", member=None), directory=tmp_path,
          progress=False)
    assert "MB" not in capsys.readouterr().err


# ----- files already there, --from --------------------------------------------
def test_a_present_file_with_another_hash_is_refused_and_untouched(server, tmp_path):
    (tmp_path / "tiny.tsv").write_bytes(b"my own notes\n")
    with pytest.raises(FetchError) as err:
        fetch(corpus(server.url + "/tiny.zip"), directory=tmp_path)
    assert f"tiny.tsv is not the tiny corpus: its sha256 is {sha(b'my own notes' + bytes([10]))}" \
        in str(err.value) and "move it away" in str(err.value)
    assert (tmp_path / "tiny.tsv").read_bytes() == b"my own notes\n"
    assert listing(tmp_path) == ["tiny.tsv"]
    with pytest.raises(FetchError, match="is not the tiny corpus"):
        locate(corpus(server.url + "/tiny.zip"), directory=tmp_path)


@pytest.mark.parametrize("given", ["download", "extracted"])
def test_from_registers_a_local_copy(tmp_path, given):
    copy = tmp_path / ("tiny.zip" if given == "download" else "fra.txt")
    copy.write_bytes(ZIP if given == "download" else TSV)
    c = corpus(closed_port_url())  # never contacted
    path = fetch(c, source=copy, directory=tmp_path / "data")
    assert path.read_bytes() == TSV and copy.exists()
    assert listing(tmp_path / "data") == ["tiny.LICENSE.txt", "tiny.tsv"]


def test_from_a_wrong_or_missing_file(tmp_path):
    wrong = tmp_path / "wrong.txt"
    wrong.write_bytes(FILES["/wrong.txt"])
    c = corpus(closed_port_url())
    with pytest.raises(FetchError) as err:
        fetch(c, source=wrong, directory=tmp_path / "data")
    assert f"--from {wrong}: sha256 {sha(FILES['/wrong.txt'])} is neither the tiny download " \
           f"tiny.zip (sha256 {sha(ZIP)}) nor the extracted tiny.tsv (sha256 {sha(TSV)})" \
        == str(err.value)
    with pytest.raises(FetchError, match="no such file"):
        fetch(c, source=tmp_path / "nowhere.zip", directory=tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_a_different_licence_file_is_left_alone(server, tmp_path, capsys):
    (tmp_path / "tiny.LICENSE.txt").write_text("my licence\n")
    fetch(corpus(server.url + "/tiny.zip"), directory=tmp_path)
    assert (tmp_path / "tiny.LICENSE.txt").read_text() == "my licence\n"
    assert "already exists with other content: left as it is" in capsys.readouterr().err


def test_unknown_name_lists_the_known_corpora():
    with pytest.raises(FetchError, match="unknown corpus 'eng-fr': the known corpora are "
                                         "eng-fra, cmn-eng"):
        fetch("eng-fr")
    with pytest.raises(TypeError, match="name_or_corpus must be"):
        fetch(3)


def test_corpus_checks_its_fields():
    with pytest.raises(ValueError, match="Corpus.sha256 must be 64 lowercase hex digits"):
        corpus("http://x/tiny.zip", sha256="ABC")
    with pytest.raises(ValueError, match="Corpus.file_name must be a plain file name"):
        Corpus(name="x", description="d", url="u", sha256="0" * 64, file_name="../x.tsv",
               file_sha256="0" * 64, licence="l", attribution="a")


# ----- the command line -------------------------------------------------------
@pytest.fixture
def registered(server, monkeypatch):
    monkeypatch.setitem(CORPORA, "tiny", corpus(server.url + "/tiny.zip"))
    monkeypatch.setitem(CORPORA, "gone", corpus(closed_port_url(), name="gone"))


def test_cli_fetch_prints_the_path(registered, capsys, tmp_path):
    code, out, err = run_cli(capsys, "data", "fetch", "tiny", "--quiet")
    assert code == 0 and out == f"{tmp_path / 'data' / 'tiny.tsv'}\n"
    assert "Licence: CC0 (test data)" in err
    # present now: quiet says nothing, otherwise one line names the file and licence
    assert run_cli(capsys, "data", "fetch", "tiny", "--quiet")[2] == ""
    assert "tiny: using" in run_cli(capsys, "data", "fetch", "tiny")[2]
    code, out, _ = run_cli(capsys, "data", "list")
    assert code == 0 and f"present: {tmp_path / 'data' / 'tiny.tsv'}" in out
    assert "not fetched: tinyattn data fetch gone" in out


def test_cli_from(registered, capsys, tmp_path):
    copy = tmp_path / "copy.zip"
    copy.write_bytes(ZIP)
    code, out, _ = run_cli(capsys, "data", "fetch", "gone", "--from", copy)
    assert code == 0 and out.strip() == str(tmp_path / "data" / "gone.tsv")


@pytest.mark.parametrize("argv, expected", [
    (["fetch", "nope"], "unknown corpus 'nope'"),
    (["fetch", "gone"], "tinyattn data fetch gone --from PATH"),
    (["fetch", "tiny", "--from", "/nonexistent/x.zip"], "--from /nonexistent/x.zip: no such"),
])
def test_cli_errors_are_one_line_with_exit_2(registered, capsys, argv, expected):
    code, out, err = run_cli(capsys, "data", *argv)
    assert code == 2 and out == ""
    last = err.splitlines()[-1]  # after "gone: downloading URL" when there was a download
    assert len(err.splitlines()) == 1 + ("downloading" in err)
    assert last.startswith("tinyattn data: error: ") and expected in last


def test_cli_list_reports_a_damaged_file(registered, capsys, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "tiny.tsv").write_text("not it\n")
    code, out, _ = run_cli(capsys, "data", "list")
    assert code == 0 and "damaged: " in out and "tiny.tsv is not the tiny corpus" in out


# ----- the real corpora, when this machine has them -----------------------------
REAL = os.environ.get("TINYATTN_DATA")


@pytest.mark.skipif(not REAL or not all((Path(REAL) / f"{n}.tsv").is_file()
                                        for n in ("eng-fra", "cmn-eng")),
                    reason="TINYATTN_DATA is unset or lacks eng-fra.tsv and cmn-eng.tsv")
def test_the_real_corpora_are_found_without_network(monkeypatch):
    monkeypatch.setenv("TINYATTN_DATA", REAL)

    def no_network(*args, **kwargs):
        raise AssertionError("fetch used the network for a corpus already there")

    monkeypatch.setattr(download.urllib.request, "urlopen", no_network)
    before = listing(Path(REAL))
    for name in ("eng-fra", "cmn-eng"):
        path = fetch(name, progress=False)
        assert path == Path(REAL) / f"{name}.tsv"
        assert sha(path.read_bytes()) == CORPORA[name].file_sha256
    assert listing(Path(REAL)) == before  # nothing written there
