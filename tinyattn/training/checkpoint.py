"""Checkpoints: one ``.npz`` of parameters, config and optimiser state, no pickle.

Arrays ``"param/<name>"``, ``"optim/<key>"``, ``"extra/<key>"`` and ``"meta"``, a 0-d
str holding JSON (format tag, ``format_version``, ``config``), so ``np.load(path,
allow_pickle=False)`` reads it all. Writes are atomic (docs/design.md §5).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from dataclasses import dataclass

import numpy as np

from tinyattn._validate import NonFiniteError, check_dtype_name, check_path, non_finite

FORMAT_VERSION = 1
_MAGIC = "tinyattn-checkpoint"
_SECTIONS = {"param/": "params", "optim/": "optimizer_state", "extra/": "extra"}


@dataclass
class Checkpoint:
    """What `load_checkpoint` returns; ``optimizer_state`` is None if none was saved."""

    params: dict[str, np.ndarray]
    config: dict
    optimizer_state: dict[str, np.ndarray] | None
    extra: dict[str, np.ndarray]
    format_version: int


def _arrays(section: str, d, argument: str) -> dict[str, np.ndarray]:
    """Prefix the keys of ``d`` with ``section``; refuse non-str keys and object arrays."""
    if not isinstance(d, dict):
        raise TypeError(f"{argument} must be a dict of str -> ndarray, got {type(d).__name__}")
    out = {}
    for key, value in d.items():
        arr = np.asarray(value)
        if not isinstance(key, str) or arr.dtype.hasobject:
            raise TypeError(f"{argument}[{key!r}]: keys must be str and values numeric or str "
                            f"arrays (checkpoints are never pickled), got dtype {arr.dtype}")
        out[section + key] = arr
    return out


def save_checkpoint(path, *, params, config, optimizer_state=None, extra=None,
                    format_version=FORMAT_VERSION) -> None:
    """Write parameters, config and optimiser state to one ``.npz``, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination, written exactly as given (no ``.npz`` is appended).
    params : dict of str -> ndarray
        Parameter values by dotted name (`module_params` builds it).
    config : dict
        JSON-serialisable model configuration (tuples come back as lists).
    optimizer_state : dict of str -> ndarray, optional
        An optimiser's ``state_dict()``.
    extra : dict of str -> array_like, optional
        Anything else: epoch, schedule state, history...
    format_version : int
        Written to the file; only tests should change it.

    Raises
    ------
    NonFiniteError
        A ValueError, if a parameter or optimiser array holds NaN or inf (a
        diverged model): nothing is written, so an earlier checkpoint at
        ``path`` is kept.

    Notes
    -----
    The file is written to a temporary file in the same directory, flushed
    and ``fsync``-ed, then moved over ``path`` with `os.replace` (atomic on
    POSIX and Windows). If anything fails, the temporary file is removed and
    an earlier checkpoint at ``path`` is left intact.
    """
    path = check_path(path)
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    meta = {"format": _MAGIC, "format_version": format_version, "config": config,
            "has_optimizer_state": optimizer_state is not None}
    try:
        meta_json = json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(f"config must be JSON-serialisable: {err}") from err
    arrays = {"meta": np.array(meta_json)}
    arrays.update(_arrays("param/", params, "params"))
    arrays.update(_arrays("optim/", {} if optimizer_state is None else optimizer_state,
                          "optimizer_state"))
    arrays.update(_arrays("extra/", {} if extra is None else extra, "extra"))
    bad = non_finite((k, a) for k, a in arrays.items() if k.startswith(("param/", "optim/")))
    if bad:
        raise NonFiniteError(f"cannot save checkpoint {path!r}: NaN or inf in {', '.join(bad)}; "
                             "nothing was written (an earlier checkpoint there is kept)")
    atomic_write(path, lambda f: np.savez(f, **arrays), what="checkpoint")


class CheckpointError(ValueError):
    """A file that is not a readable tinyattn checkpoint; the message names the file."""


def _read_meta(arrays: dict) -> dict:
    """The parsed ``meta`` entry, checked field by field (ValueError says which is wrong)."""
    if "meta" not in arrays:
        raise ValueError("it has no 'meta' entry")
    meta_arr = arrays.pop("meta")
    if meta_arr.dtype.kind != "U" or meta_arr.ndim != 0:
        raise ValueError(f"its 'meta' entry is a {meta_arr.dtype} array, not a JSON string")
    try:
        meta = json.loads(str(meta_arr))
    except json.JSONDecodeError as err:
        raise ValueError(f"its 'meta' entry is not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != _MAGIC:
        raise ValueError("its 'meta' entry is not tinyattn metadata")
    return meta


def load_checkpoint(path) -> Checkpoint:
    """Read a file written by `save_checkpoint` (``allow_pickle=False``).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CheckpointError
        A ValueError naming the file and what is wrong with it: not an
        ``.npz`` archive, damaged (truncated, corrupt or unknown
        compression), not tinyattn metadata, another format version, or
        a field of the wrong type.
    """
    path = check_path(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint file not found: {path!r}")
    if os.path.isdir(path):
        raise CheckpointError(f"{path!r} is a directory, not a checkpoint file")
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":  # numpy would call any other file "pickled data"
        raise CheckpointError(f"{path!r} is not a tinyattn checkpoint: not an .npz (zip) "
                              "archive" + (" (the file is empty)" if not head else ""))
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError("a single .npy array, not an .npz archive")
        with z:
            arrays = {k: z[k] for k in z.files}
        meta = _read_meta(arrays)
    except KeyboardInterrupt:
        raise
    except MemoryError:  # np.load allocates what an array's header claims
        raise CheckpointError(f"{path!r} cannot be loaded: an array in it needs more memory "
                              "than this machine has (a damaged array header, or a model too "
                              "large for this machine)") from None
    except Exception as err:  # zipfile, zlib and numpy raise many kinds
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"{path!r} is not a tinyattn checkpoint, or is damaged: "
                              f"{why}") from err
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path!r} has checkpoint format version {version!r}, but this "
                              f"tinyattn reads format version {FORMAT_VERSION}")
    if not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{path!r} is damaged: meta.config must be a JSON object, got "
                              f"{type(meta.get('config')).__name__}")
    if not isinstance(meta.get("has_optimizer_state"), bool):
        raise CheckpointError(f"{path!r} is damaged: meta.has_optimizer_state must be true or "
                              f"false, got {meta.get('has_optimizer_state')!r}")
    out = {field: {} for field in _SECTIONS.values()}
    for key, arr in arrays.items():
        section = next((s for s in _SECTIONS if key.startswith(s)), None)
        if section is None:
            raise CheckpointError(f"{path!r} is not a tinyattn checkpoint (unexpected key "
                                  f"{key!r})")
        out[_SECTIONS[section]][key[len(section):]] = arr
    out["optimizer_state"] = out["optimizer_state"] if meta["has_optimizer_state"] else None
    return Checkpoint(config=meta["config"], format_version=version, **out)


def module_params(module) -> dict[str, np.ndarray]:
    """Copies of ``module``'s parameters by dotted name, for `save_checkpoint`."""
    return {name: value.copy() for name, value, _ in module.named_parameters()}


def load_params_into(module, params) -> None:
    """Copy ``params`` into ``module``'s parameter arrays, in place.

    Parameters
    ----------
    module : Module
    params : dict of str -> ndarray
        For example ``load_checkpoint(path).params``.

    Raises
    ------
    ValueError
        Listing every missing name, unexpected name and shape mismatch
        (name, expected shape, got shape), e.g. a checkpoint of a model built
        with another configuration; nothing is copied.
    TypeError
        If a dtype differs (nothing is silently cast); nothing is copied.
    """
    if not hasattr(module, "named_parameters"):
        raise TypeError(f"module must be a tinyattn Module, got {type(module).__name__}")
    own = {name: value for name, value, _ in module.named_parameters()}
    missing = [n for n in own if n not in params]
    unexpected = [n for n in params if n not in own]
    shapes = [f"{n}: expected shape {own[n].shape}, got {np.shape(params[n])}"
              for n in own if n in params and np.shape(params[n]) != own[n].shape]
    if missing or unexpected or shapes:
        raise ValueError(
            f"params do not fit this {type(module).__name__} (was it built with another "
            f"configuration?): missing {missing}, unexpected {unexpected}, shape mismatches "
            f"[{'; '.join(shapes)}]")
    dtypes = [f"{n}: expected {v.dtype}, got {np.asarray(params[n]).dtype}"
              for n, v in own.items() if np.asarray(params[n]).dtype != v.dtype]
    if dtypes:
        raise TypeError(f"params have the wrong dtype ({'; '.join(dtypes)}); build the model "
                        f"with the checkpoint's dtype or convert the arrays with .astype")
    bad = non_finite((n, params[n]) for n in own)
    if bad:
        raise NonFiniteError(f"params contain NaN or inf: {bad}")
    for name, value in own.items():
        np.copyto(value, params[name])


def atomic_write(path, write, *, what: str = "file") -> None:
    """Write ``path`` through ``write(f)`` (a binary file) atomically.

    The bytes go to a temporary file in the same directory, are ``fsync``-ed,
    then moved over ``path`` with `os.replace`: a crash leaves the previous
    file intact, never a half-written one.
    """
    directory, base = os.path.split(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot save {what} {str(path)!r}: directory {directory!r} "
                                "does not exist")
    # Same directory, so os.replace is a rename on one file system; "x" mode never
    # clobbers and, unlike mkstemp's 0o600, gives the usual umask permissions.
    tmp = os.path.join(directory, f".{base}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")  # _TEMP
    f = open(tmp, "xb")  # outside the try: on failure there is nothing of ours to remove
    try:
        with f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the rename makes it visible
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename durable too (POSIX; best effort)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# The temporary files of atomic_write: ".<name>.<pid>.<8 hex>.tmp".
_TEMP = re.compile(r"^\.(?P<base>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process is not writing while it cleans up
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or cannot tell: leave its file alone
    return True


def temp_of(name: str) -> str | None:
    """The file an `atomic_write` temporary named ``name`` was to become, else None."""
    match = _TEMP.match(name)
    return match["base"] if match else None


def remove_stale_temps(directory, names) -> list[str]:
    """Delete the temporary files `atomic_write` left in ``directory`` when
    its process was killed mid-write; returns their names.

    Only temporaries of the files ``names`` (e.g. ``"checkpoint.npz"``), of
    `atomic_write`'s own pattern, whose process is no longer running are
    touched; any other file is left alone.
    """
    names = frozenset(names)
    removed = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(directory):
            match = _TEMP.match(entry.name)
            if match and match["base"] in names and entry.is_file(follow_symlinks=False) \
                    and not _running(int(match["pid"])):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(entry.name)
    return sorted(removed)


def write_text_atomic(path, text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8 (LF line ends kept as given), atomically."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


class SavesCheckpoints:
    """``save``, ``load`` and ``load_weights`` for a model (the model protocol,
    docs/models.md): any `Module` with a ``config`` dict of its constructor's
    keyword arguments (``dtype`` as a name) gets them by inheriting this.
    """

    # configuration keys that change how the model trains, not its weights:
    # load_weights accepts a checkpoint that differs in them (fine-tuning
    # without dropout, say) and keeps the model's own
    TRAINING_OPTIONS: tuple[str, ...] = ()

    def save(self, path, *, optimizer=None, extra=None) -> None:
        """Write parameters, configuration and (optionally) optimiser state to
        one ``.npz`` atomically (temp file + rename); no pickle."""
        save_checkpoint(path, params=module_params(self), config=self.config,
                        optimizer_state=None if optimizer is None else optimizer.state_dict(),
                        extra=extra)

    @classmethod
    def upgrade_config(cls, config: dict) -> dict:
        """A stored configuration as this version's constructor takes it (a copy);
        subclasses drop or rename what older versions stored."""
        return dict(config)

    @classmethod
    def load(cls, path):
        """Build the model a checkpoint describes and load its parameters."""
        path = check_path(path)
        ckpt = load_checkpoint(path)
        config = cls.upgrade_config(ckpt.config)
        try:
            dtype = check_dtype_name(config.pop("dtype"))
            model = cls(**config, rng=np.random.default_rng(0), dtype=dtype)
        except KeyError:
            raise CheckpointError(f"{path!r}: its configuration has no 'dtype'") from None
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{path!r}: its configuration does not build a "
                                  f"{cls.__name__}: {err}") from None
        _load_params(model, ckpt, path)
        return model

    def load_weights(self, path):
        """Load a checkpoint into this model; its configuration must match, but
        for the ``TRAINING_OPTIONS`` (the model keeps its own).

        Returns the `Checkpoint` (for the optimiser state and extras).
        """
        path = check_path(path)
        ckpt = load_checkpoint(path)
        stored = self.upgrade_config(ckpt.config)
        diff = {k: (self.config.get(k), stored.get(k)) for k in set(self.config) | set(stored)
                if self.config.get(k) != stored.get(k) and k not in self.TRAINING_OPTIONS}
        if diff:
            shown = ", ".join(f"{k}: model {a!r} vs checkpoint {b!r}" for k, (a, b) in
                              sorted(diff.items()))
            raise ValueError(f"checkpoint {str(path)!r} was saved from another "
                             f"configuration ({shown})")
        _load_params(self, ckpt, path)
        return ckpt


def _load_params(model, ckpt: Checkpoint, path: str) -> None:
    """`load_params_into`, its errors prefixed with the file's name."""
    try:
        load_params_into(model, ckpt.params)
    except (TypeError, ValueError) as err:  # the configuration matched, so the file is bad
        why = str(err).split("; build the model")[0]  # load_params_into's advice is not ours
        raise CheckpointError(f"{path!r} is damaged: its parameters do not match its "
                              f"configuration: {why}") from None
