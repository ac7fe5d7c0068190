"""The real corpora: download, check and cache the Tatoeba sentence pairs.

Two corpora are known (`CORPORA`): ``eng-fra`` (English -> French) and
``cmn-eng`` (English -> Mandarin Chinese), each pinned to one public copy at
a fixed commit and to the sha256 of both the download and the stored file.
`fetch` stores a corpus as ``<name>.tsv`` in the data directory (`data_dir`:
``$TINYATTN_DATA``, else ``$XDG_CACHE_HOME/tinyattn`` or
``~/.cache/tinyattn``) and returns its path:

- a file already there with the right sha256 is used, without network; one
  with another sha256 is an error and is never replaced;
- ``source=PATH`` registers a copy obtained by hand (the download or the
  extracted file), after checking its hash;
- otherwise the file is downloaded with `urllib`, checked (length, sha256),
  extracted from its zip archive when it is one, checked again, and only then
  moved to its final name. Nothing half-written ever has that name.

Every failure is one `FetchError` (a ValueError) whose one-line message says
what went wrong and what to do. The data's licence (CC BY 2.0 FR) and
attribution are printed on every fetch and written beside the file as
``<name>.LICENSE.txt``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from tinyattn._validate import check_path
from tinyattn.training.checkpoint import atomic_write, remove_stale_temps

TIMEOUT = 60.0
"""Seconds a download may wait for the server before it fails."""

_CHUNK = 1 << 16
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class FetchError(ValueError):
    """A corpus that cannot be fetched; the one-line message says why and what to do."""


@dataclass(frozen=True, kw_only=True)
class Corpus:
    """A corpus pinned to one download and to the exact file it yields.

    Attributes
    ----------
    name : str
        What the command line calls it (``"eng-fra"``): lowercase letters,
        digits, ``.``, ``_`` and ``-``.
    description : str
        One line for ``tinyattn data list``.
    url : str
        Where the download is, at a fixed commit (never a moving branch).
    sha256 : str
        The sha256 of the download (64 lowercase hex digits).
    file_name : str
        The stored file's name in the data directory (``"eng-fra.tsv"``).
    file_sha256 : str
        The sha256 of the stored file; equal to ``sha256`` when the
        download is stored as it is.
    licence : str
        The data's licence, one line.
    attribution : str
        Whom to credit, one line.
    member : str or None
        When the download is a zip archive, the member to extract.
    """

    name: str
    description: str
    url: str
    sha256: str
    file_name: str
    file_sha256: str
    licence: str
    attribution: str
    member: str | None = None

    def __post_init__(self):
        for field in ("name", "description", "url", "sha256", "file_name", "file_sha256",
                      "licence", "attribution"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value.strip():
                raise TypeError(f"Corpus.{field} must be a non-empty str, got {value!r}")
        if not _NAME.match(self.name):
            raise ValueError(f"Corpus.name must be lowercase letters, digits, '.', '_' or '-', "
                             f"got {self.name!r}")
        for field in ("sha256", "file_sha256"):
            if not _SHA256.match(getattr(self, field)):
                raise ValueError(f"Corpus.{field} must be 64 lowercase hex digits, got "
                                 f"{getattr(self, field)!r}")
        if os.path.basename(self.file_name) != self.file_name or self.file_name in (".", ".."):
            raise ValueError(f"Corpus.file_name must be a plain file name, got "
                             f"{self.file_name!r}")
        if self.member is not None and (not isinstance(self.member, str) or not self.member):
            raise TypeError(f"Corpus.member must be a non-empty str or None, got "
                            f"{self.member!r}")

    @property
    def download_name(self) -> str:
        """The download's file name, the last part of `url` (``"fra-eng.zip"``)."""
        return urllib.parse.unquote(urllib.parse.urlsplit(self.url).path.rsplit("/", 1)[-1]) \
            or self.url

    @property
    def licence_file_name(self) -> str:
        """The name of the licence file written beside the data (``"eng-fra.LICENSE.txt"``)."""
        return f"{self.name}.LICENSE.txt"

    def licence_text(self) -> str:
        """The licence file's text: what the file is, where it came from, licence, credit."""
        origin = self.url + (f" (archive member {self.member})" if self.member else "")
        return (f"{self.file_name}: {self.description}\n"
                f"Source: {origin}\n"
                f"sha256: {self.file_sha256}\n"
                f"\n"
                f"Licence: {self.licence}\n"
                f"Attribution: {self.attribution}\n"
                f"Whoever redistributes {self.file_name} must keep this credit with it.\n")


_CC_BY_FR = ("CC BY 2.0 FR (Creative Commons Attribution 2.0 France), "
             "https://creativecommons.org/licenses/by/2.0/fr/; Tatoeba's terms of use: "
             "https://tatoeba.org/eng/terms_of_use")

CORPORA: dict[str, Corpus] = {
    "eng-fra": Corpus(
        name="eng-fra",
        description="English -> French, 167,130 Tatoeba sentence pairs "
                    "(manythings.org/anki release of 2019-04-07; 2 columns)",
        url="https://raw.githubusercontent.com/modelexlab/data/"
            "adddaf33ac35572bcfeb421efec29435e7ea9332/fra-eng.zip",
        sha256="161c93f18da3a7e6df611ed961426613260de8af06ccf8c79c977afe5135ac44",
        member="fra-eng/fra.txt",
        file_name="eng-fra.tsv",
        file_sha256="0bb85dbaa1c896844649094d7eaf2e34bee34e84fe362b26ce7e8f2e12aae104",
        licence=_CC_BY_FR,
        attribution="www.manythings.org/anki and tatoeba.org (this release has no "
                    "per-sentence attribution column)",
    ),
    "cmn-eng": Corpus(
        name="cmn-eng",
        description="English -> Mandarin Chinese (mixed Simplified and Traditional), "
                    "28,447 Tatoeba sentence pairs (manythings.org/anki; 3 columns, the "
                    "third each pair's attribution)",
        url="https://raw.githubusercontent.com/JimEverest/transformer-ready-go/"
            "7745df43beea3501a578e17090277ea2d755cb82/data/cmn.txt",
        sha256="3a8ac6cb8cdaab6e235d3075ec3680084044d975882d6139c903bf7893097ff6",
        file_name="cmn-eng.tsv",
        file_sha256="3a8ac6cb8cdaab6e235d3075ec3680084044d975882d6139c903bf7893097ff6",
        licence=_CC_BY_FR,
        attribution="tatoeba.org and its contributors, named per sentence in the third "
                    "column of every line; and www.manythings.org/anki",
    ),
}
"""The known corpora by name. Tests may add their own (``monkeypatch.setitem``)."""


def corpus_names() -> tuple[str, ...]:
    """The names of the known corpora, e.g. ``("eng-fra", "cmn-eng")``."""
    return tuple(CORPORA)


def get_corpus(name_or_corpus) -> Corpus:
    """The `Corpus` called ``name_or_corpus`` (a Corpus is returned as it is).

    Raises
    ------
    FetchError
        For an unknown name; the message lists the known ones.
    TypeError
        If ``name_or_corpus`` is neither a str nor a Corpus.
    """
    if isinstance(name_or_corpus, Corpus):
        return name_or_corpus
    if not isinstance(name_or_corpus, str):
        raise TypeError(f"name_or_corpus must be a corpus name (str) or a Corpus, got "
                        f"{type(name_or_corpus).__name__}")
    if name_or_corpus not in CORPORA:
        raise FetchError(f"unknown corpus {name_or_corpus!r}: the known corpora are "
                         f"{', '.join(CORPORA)}")
    return CORPORA[name_or_corpus]


def data_dir() -> Path:
    """The directory where corpora are stored; it need not exist yet.

    ``$TINYATTN_DATA`` when set, else ``$XDG_CACHE_HOME/tinyattn`` (when that
    is an absolute path, as the XDG specification requires), else
    ``~/.cache/tinyattn``.
    """
    override = os.environ.get("TINYATTN_DATA")
    if override:
        return Path(override).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    if cache and os.path.isabs(cache):
        return Path(cache) / "tinyattn"
    return Path.home() / ".cache" / "tinyattn"


def _directory(directory) -> Path:
    return data_dir() if directory is None else Path(check_path(directory, "directory"))


def file_sha256(path) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def locate(name_or_corpus, *, directory=None) -> Path | None:
    """The path of a corpus already stored and intact, else None; never uses the network.

    Parameters
    ----------
    name_or_corpus : str or Corpus
    directory : str or os.PathLike, optional
        Where to look (default `data_dir`).

    Raises
    ------
    FetchError
        If a file of that name is there but is not the corpus (another
        sha256, or not a regular file): it is never replaced, so the
        message says how to fix it.
    """
    corpus = get_corpus(name_or_corpus)
    path = _directory(directory) / corpus.file_name
    if not os.path.lexists(path):
        return None
    if not path.is_file():
        raise FetchError(f"{path} exists but is not a regular file; move it away, then run: "
                         f"tinyattn data fetch {corpus.name}")
    try:
        got = file_sha256(path)
    except OSError as err:
        raise FetchError(f"cannot read {path}: {err.strerror or err}") from None
    if got != corpus.file_sha256:
        raise FetchError(f"{path} is not the {corpus.name} corpus: its sha256 is {got}, "
                         f"expected {corpus.file_sha256}; tinyattn never replaces it: move it "
                         f"away, then run: tinyattn data fetch {corpus.name}")
    return path


def fetch(name_or_corpus, *, source=None, directory=None, progress=True) -> Path:
    """A corpus's stored TSV file: found, registered from a local copy, or downloaded.

    Parameters
    ----------
    name_or_corpus : str or Corpus
        A name of `corpus_names` (``"eng-fra"``, ``"cmn-eng"``) or a `Corpus`.
    source : str or os.PathLike, optional
        A local copy to register instead of downloading: either the download
        itself (``fra-eng.zip``, ``cmn.txt``) or the extracted file; its
        sha256 must be the corpus's. It is copied, never moved.
    directory : str or os.PathLike, optional
        Where the corpus is stored (default `data_dir`); created if needed.
    progress : bool
        Show the download's progress on stderr (tqdm when installed and not
        disabled by ``TQDM_DISABLE``, else a plain line every 10 %) and, for
        a corpus already here, the line naming the file used and its
        licence. ``False`` (``--quiet``) leaves those out; a download's
        licence and attribution are printed whatever it is.

    Returns
    -------
    pathlib.Path
        ``directory / corpus.file_name``, whose sha256 has been checked.

    Raises
    ------
    FetchError
        A ValueError with a one-line message: unknown name; a file already
        there with another sha256 (never replaced); a ``source`` that is
        missing or is neither the download nor the extracted file; no
        network, a refused connection or an HTTP error (the message names
        the URL and says how to register a copy obtained by hand with
        ``tinyattn data fetch NAME --from PATH``); a truncated download; a
        sha256 mismatch (expected and got); a broken archive or a missing
        member; a directory that cannot be written.

    Notes
    -----
    The download goes to an anonymous temporary file in ``directory``, the
    stored file to a named one (`tinyattn.training.checkpoint.atomic_write`),
    which is moved to its final name only once its sha256 is right: on any
    failure, Ctrl-C included, nothing of it is left. On a fetch the licence
    and attribution are printed on stderr and written to
    ``directory / corpus.licence_file_name`` (an existing file with other
    text is left as it is); when the corpus was already there, one line of
    licence is printed and nothing is written, so a read-only or shared
    directory works.
    """
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got {progress!r}")
    if source is not None:
        source = Path(check_path(source, "source"))
    corpus = get_corpus(name_or_corpus)
    directory = _directory(directory)
    stored = locate(corpus, directory=directory)
    if stored is not None:
        ignored = f"; --from {source} was not needed" if source is not None else ""
        _say_if(progress, f"{corpus.name}: using {stored} (sha256 checked){ignored}. Licence "
                f"{corpus.licence}; attribution: {corpus.attribution}")
        return stored
    target = directory / corpus.file_name
    if source is not None:
        kind = _check_source(corpus, source)
        _prepare(directory)
        with open(source, "rb") as f:
            _store(corpus, f, target, from_download=kind == "download",
                   origin=f"--from {source}")
    else:
        _prepare(directory)
        _say_if(progress, f"{corpus.name}: downloading {corpus.url}")
        with _temporary(directory, corpus) as f:
            _download(corpus, f, progress)
            f.seek(0)
            _store(corpus, f, target, from_download=True, origin=corpus.download_name)
    _say(f"{corpus.name}: stored {target} (sha256 checked)")
    _write_licence(corpus, directory)
    return target


# ----- the steps of a fetch ---------------------------------------------------
def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _say_if(enabled: bool, message: str) -> None:
    if enabled:
        _say(message)


def _check_source(corpus: Corpus, source: Path) -> str:
    """``"download"`` or ``"file"``: which of the corpus's two files ``source`` is."""
    if not source.exists():
        raise FetchError(f"--from {source}: no such file")
    if not source.is_file():
        raise FetchError(f"--from {source}: not a regular file")
    try:
        got = file_sha256(source)
    except OSError as err:
        raise FetchError(f"--from {source}: cannot read it: {err.strerror or err}") from None
    if got == corpus.sha256:
        return "download"
    if got == corpus.file_sha256:
        return "file"
    also = "" if corpus.sha256 == corpus.file_sha256 else \
        f" nor the extracted {corpus.file_name} (sha256 {corpus.file_sha256})"
    raise FetchError(f"--from {source}: sha256 {got} is neither the {corpus.name} download "
                     f"{corpus.download_name} (sha256 {corpus.sha256}){also}")


def _prepare(directory: Path) -> None:
    """Create ``directory``; remove temporaries that killed fetches left there."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FetchError(f"cannot create the data directory {directory}: "
                         f"{err.strerror or err}; set TINYATTN_DATA to a writable "
                         "directory") from None
    names = [c.file_name for c in CORPORA.values()] + \
        [c.licence_file_name for c in CORPORA.values()]
    remove_stale_temps(directory, names)


def _temporary(directory: Path, corpus: Corpus):
    """An anonymous temporary file in ``directory``: gone when closed, even after a crash."""
    try:
        return tempfile.TemporaryFile(dir=directory, prefix=f".{corpus.name}.",
                                      suffix=".download")
    except OSError as err:
        raise FetchError(f"cannot write in the data directory {directory}: "
                         f"{err.strerror or err}; set TINYATTN_DATA to a writable "
                         "directory") from None


def _open_url(corpus: Corpus):
    """The HTTP response for the corpus's URL; network failures become one FetchError."""
    request = urllib.request.Request(corpus.url, headers={"User-Agent": "tinyattn"})
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as err:
        reason = f"HTTP {err.code} {err.reason}"
    except urllib.error.URLError as err:
        reason = _reason(err.reason)
        if isinstance(err.reason, socket.gaierror):  # the host name could not be looked up
            reason += " (offline?)"
    except (OSError, http.client.HTTPException) as err:  # timeouts, resets, bad replies
        reason = _reason(err)
    raise FetchError(_network_failure(corpus, reason))


def _reason(err) -> str:
    """A network error as a few words: "Connection refused", "timed out after 60 s"."""
    if isinstance(err, TimeoutError):
        return f"timed out after {TIMEOUT:g} s"
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return text.splitlines()[0]


def _network_failure(corpus: Corpus, reason: str) -> str:
    return (f"cannot download {corpus.name} from {corpus.url}: {reason}. Get "
            f"{corpus.download_name} by hand (sha256 {corpus.sha256}) and register it with: "
            f"tinyattn data fetch {corpus.name} --from PATH")


def _download(corpus: Corpus, out, progress: bool) -> None:
    """Stream the download into the binary file ``out``; check its length and sha256."""
    digest = hashlib.sha256()
    got = 0
    with _open_url(corpus) as response:
        total = _content_length(response)
        bar = _Progress(f"{corpus.name}: {corpus.download_name}", total, progress)
        try:
            ended = False
            while not ended:
                try:
                    chunk = response.read(_CHUNK)
                except http.client.IncompleteRead as err:  # the server closed early
                    chunk, ended = err.partial, True
                except (OSError, http.client.HTTPException) as err:
                    raise FetchError(_network_failure(
                        corpus, f"{_reason(err)} after {got} bytes")) from None
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                got += len(chunk)
                bar.update(len(chunk))
        finally:
            bar.close()
    if total is not None and got != total:
        raise FetchError(f"{corpus.name}: truncated download from {corpus.url}: got {got} of "
                         f"{total} bytes; nothing was stored: try again, or get "
                         f"{corpus.download_name} by hand and run: tinyattn data fetch "
                         f"{corpus.name} --from PATH")
    if digest.hexdigest() != corpus.sha256:
        raise FetchError(f"{corpus.name}: the download from {corpus.url} has sha256 "
                         f"{digest.hexdigest()}, expected {corpus.sha256} (damaged, or not the "
                         "pinned file); nothing was stored")


def _content_length(response) -> int | None:
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None and int(value) >= 0 else None
    except ValueError:
        return None


def _store(corpus: Corpus, download, target: Path, *, from_download: bool,
           origin: str) -> None:
    """Write ``target`` atomically from ``download`` (a readable binary file holding
    the download, or the extracted file when ``from_download`` is False),
    extracting the archive member when there is one; check the sha256 first."""
    def write(out):
        digest = hashlib.sha256()
        if from_download and corpus.member is not None:
            _extract(corpus, download, out, digest, origin)
        else:
            _copy(download, out, digest)
        if digest.hexdigest() != corpus.file_sha256:
            what = f"{corpus.member} in {origin}" if from_download and corpus.member \
                else origin
            raise FetchError(f"{corpus.name}: {what} has sha256 {digest.hexdigest()}, "
                             f"expected {corpus.file_sha256}; nothing was stored")

    try:
        atomic_write(target, write, what=f"corpus {corpus.name}")
    except OSError as err:
        raise FetchError(f"cannot store {target}: {err.strerror or err}; set TINYATTN_DATA "
                         "to a writable directory") from None


def _copy(src, out, digest) -> None:
    for chunk in iter(lambda: src.read(_CHUNK), b""):
        digest.update(chunk)
        out.write(chunk)


def _extract(corpus: Corpus, download, out, digest, origin: str) -> None:
    """Copy the archive member of ``download`` into ``out``, hashing it."""
    try:
        with zipfile.ZipFile(download) as archive:
            try:
                member = archive.open(corpus.member)
            except KeyError:
                names = archive.namelist()
                shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more"
                                                if len(names) > 5 else "")
                raise FetchError(f"{corpus.name}: {origin} has no member {corpus.member!r} "
                                 f"(it holds: {shown or 'nothing'}); nothing was "
                                 "stored") from None
            with member:
                _copy(member, out, digest)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError,
            NotImplementedError, RuntimeError) as err:
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise FetchError(f"{corpus.name}: {origin} is not a readable zip archive, or is "
                         f"damaged ({why}); nothing was stored") from None


def _write_licence(corpus: Corpus, directory: Path) -> None:
    """Print the licence; write it beside the data unless a different file is there."""
    text = corpus.licence_text()
    path = directory / corpus.licence_file_name
    _say(f"Licence: {corpus.licence}\nAttribution: {corpus.attribution}")
    try:
        if path.exists():
            if path.is_file() and path.read_text(encoding="utf-8", errors="replace") == text:
                return
            _say(f"{path} already exists with other content: left as it is")
            return
        atomic_write(path, lambda f: f.write(text.encode("utf-8")),
                     what=f"licence of {corpus.name}")
    except OSError as err:
        _say(f"could not write {path}: {err.strerror or err}")
        return
    _say(f"(written to {path})")


class _Progress:
    """Bytes received: a tqdm bar, or a plain stderr line every 10 %, or nothing."""

    def __init__(self, desc: str, total: int | None, enabled: bool):
        self.desc, self.total, self.enabled = desc, total, enabled
        self.done = 0
        self.next_report = total / 10 if total else 10e6
        self.bar = None
        if enabled and not _tqdm_disabled():
            try:
                from tqdm.auto import tqdm
            except ImportError:
                pass
            else:
                self.bar = tqdm(total=total, desc=desc, unit="B", unit_scale=True,
                                unit_divisor=1024, leave=False, file=sys.stderr)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        if not self.enabled:
            return
        # a line at each 10 % of a known length, else at each 10 MB
        step = self.total / 10 if self.total else 10e6
        if self.done >= self.next_report:
            while self.next_report <= self.done:
                self.next_report += step
            shown = f" of {self.total / 1e6:.1f} MB ({self.done / self.total:.0%})" \
                if self.total else " MB"
            _say(f"{self.desc}: {self.done / 1e6:.1f}{shown}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _tqdm_disabled() -> bool:
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false", "no")


__all__ = ["CORPORA", "TIMEOUT", "Corpus", "FetchError", "corpus_names", "data_dir", "fetch",
           "file_sha256", "get_corpus", "locate"]
