"""The model file format: reading and writing it without pickle.

A model file is a zip archive holding ``mtlfaces.json`` (format tag, tasks,
classes, estimator parameters, package versions) and ``model.keras`` (the Keras
native format, loaded with ``safe_mode=True`` so no code stored in it runs).
This module knows the container; what the JSON holds is the estimator's
(:meth:`MultiTaskFaceClassifier._metadata`), so it imports nothing from the estimator.
"""

import json
import os
import re
import tempfile
import zipfile

import numpy as np

FORMAT = "mtlfaces-model"
FORMAT_VERSION = 1
_MODEL_ENTRY = "model.keras"
_META_ENTRY = "mtlfaces.json"
#: Optional: the 8-bit TensorFlow Lite copy of the network (MultiTaskFaceClassifier.quantize).
INT8_ENTRY = "model.int8.tflite"
# Parameters that cannot travel as JSON (objects) are not saved.
UNSAVED_PARAMS = ("callbacks",)

#: Largest JSON document a model file may hold (a long training history is ~100 KB).
MAX_METADATA_BYTES = 4 * 2**20
#: Largest Keras network a model file may hold, unpacked (the bundled one is 12 MB); each
#: member of the Keras archive counts, and so does their sum.
MAX_NETWORK_BYTES = 512 * 2**20
#: A member larger than 1 MiB may not unpack to more than this many times its packed size
#: (Keras stores weights uncompressed; float weights barely compress): a zip bomb is refused
#: before it is unpacked.
MAX_EXPANSION = 20
_RATIO_FROM = 2**20


class ModelFileError(ValueError):
    """A model file is missing, corrupt, truncated or not an mtlfaces model."""


def model_to_bytes(model):
    """The model in Keras's native format, without optimizer state (a third of the size)."""
    import keras

    if getattr(model, "optimizer", None) is not None:
        bare = keras.Model.from_config(model.get_config())
        bare.set_weights(model.get_weights())
        model = bare
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as fh:
            return fh.read()


def _check_members(zf, source, what, limits):
    """Refuse members over their size ``limits`` ({name or None: bytes}) or that unpack to
    far more than they occupy, from the zip's directory, before anything is unpacked."""
    total = 0
    for info in zf.infolist():
        limit = limits.get(info.filename, limits.get(None))
        if limit is None:
            continue
        total += info.file_size
        if info.file_size > limit:
            raise ModelFileError(
                f"{source}: {what} member {info.filename!r} unpacks to {info.file_size:,} "
                f"bytes, over the {limit:,}-byte limit of a model file; it is corrupt or "
                "not a model file")
        if total > limits.get("total", total):
            raise ModelFileError(
                f"{source}: {what} members unpack to over {limits['total']:,} bytes in all, "
                "the limit of a model file; it is corrupt or not a model file")
        if (info.file_size > _RATIO_FROM
                and info.file_size > MAX_EXPANSION * max(info.compress_size, 1)):
            raise ModelFileError(
                f"{source}: {what} member {info.filename!r} unpacks from "
                f"{info.compress_size:,} to {info.file_size:,} bytes (over {MAX_EXPANSION} "
                "times); refused as a likely zip bomb")


def _copy_member(zf, name, dest, limit, source):
    """Unpack member ``name`` to the file ``dest``, reading at most ``limit`` bytes."""
    copied = 0
    with zf.open(name) as src, open(dest, "wb") as out:
        while True:
            chunk = src.read(2**20)
            if not chunk:
                break
            copied += len(chunk)
            if copied > limit:
                raise ModelFileError(f"{source}: member {name!r} unpacks to more than "
                                     f"{limit:,} bytes; the model file is corrupt")
            out.write(chunk)


def _load_keras(path, source):
    """The Keras network in the ``.keras`` file at ``path`` (a temporary copy), checked."""
    import keras

    try:
        with zipfile.ZipFile(path) as inner:
            _check_members(inner, source, "network", {None: MAX_NETWORK_BYTES,
                                                      "total": MAX_NETWORK_BYTES})
            bad = inner.testzip()
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise ModelFileError(f"{source}: the model file is corrupt: its Keras network is not "
                             f"a readable archive ({_plain(exc, path)})") from None
    if bad is not None:
        raise ModelFileError(f"{source}: the model file is corrupt: member {bad!r} of its "
                             "Keras network fails its checksum")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:
        raise ModelFileError(f"{source}: the model file is corrupt: its Keras network could "
                             f"not be loaded ({type(exc).__name__}: {_plain(exc, path)})") from None


def _plain(exc, path):
    """The first line of ``exc``'s message, without the temporary folder's name."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    text = text.replace(os.path.dirname(path), "<model file>")
    return re.sub(re.escape(tempfile.gettempdir()) + r"\S*", "<model file>", text)[:300]


def model_from_bytes(data, source="<bytes>"):
    """A Keras network from the bytes of a ``.keras`` file (:func:`model_to_bytes`)."""
    if len(data) > MAX_NETWORK_BYTES:
        raise ModelFileError(f"{source}: the Keras network is {len(data):,} bytes, over the "
                             f"{MAX_NETWORK_BYTES:,}-byte limit")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as fh:
            fh.write(data)
        return _load_keras(path, source)


def weights_digest(model):
    """A digest of a network's weights (shapes, types and values, in order): what an 8-bit
    copy was made from, recorded with it in the model file."""
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    for w in model.get_weights():
        w = np.ascontiguousarray(w)
        digest.update(f"{w.dtype}{w.shape}".encode())
        digest.update(w.tobytes())
    return digest.hexdigest()


def jsonable(value):
    """``value`` with tuples as lists, dict keys as strings and NumPy scalars as Python's."""
    if isinstance(value, tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _versions():
    import importlib.metadata as md

    out = {}
    for pkg in ("mtlfaces", "keras", "tensorflow", "numpy", "scikit-learn"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def write_model_file(path, meta, model, extra=None):
    """Write ``meta`` (the estimator's JSON part), ``model`` and the ``extra`` members
    ({name: bytes}) to ``path``, atomically."""
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta,
            "versions": _versions()}
    data = model_to_bytes(model)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".mtlfaces-", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr(_META_ENTRY, json.dumps(meta, indent=1))
            zf.writestr(_MODEL_ENTRY, data)
            for name, content in (extra or {}).items():
                zf.writestr(name, content)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)  # a partial file never carries the final name
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _open(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(f"{path}: no such model file")
    if os.path.isdir(path):
        raise ModelFileError(f"{path}: is a directory, not a model file")
    return path


def _corrupt(path, exc):
    return ModelFileError(f"{path}: not a readable mtlfaces model file (corrupt or truncated: "
                          f"{exc})")


def read_metadata(path):
    """Return the JSON metadata of a model file, checking that it is one.

    Only the container is checked here (members, sizes, format tag and version); what the
    document says is the estimator's to check. No member is unpacked past its size limit.
    """
    path = _open(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if _META_ENTRY not in names or _MODEL_ENTRY not in names:
                raise ModelFileError(
                    f"{path}: not an mtlfaces model file (no {_META_ENTRY}/{_MODEL_ENTRY} inside; "
                    "a bare Keras .keras file can be wrapped with MultiTaskFaceClassifier.save)"
                )
            _check_members(zf, path, "the model file's", {_META_ENTRY: MAX_METADATA_BYTES,
                                                         _MODEL_ENTRY: MAX_NETWORK_BYTES})
            with zf.open(_META_ENTRY) as fh:
                raw = fh.read(MAX_METADATA_BYTES + 1)
            if len(raw) > MAX_METADATA_BYTES:
                raise ModelFileError(f"{path}: its {_META_ENTRY} is over the "
                                     f"{MAX_METADATA_BYTES:,}-byte limit; the file is corrupt")
            meta = json.loads(raw.decode("utf-8"))
    except ModelFileError:
        raise
    except RecursionError:
        raise ModelFileError(f"{path}: its {_META_ENTRY} is nested too deeply") from None
    except (zipfile.BadZipFile, EOFError, OSError, UnicodeDecodeError, ValueError,
            NotImplementedError) as exc:
        raise _corrupt(path, exc) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an mtlfaces model file (format tag missing)")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"{path}: format_version is {version!r}; expected an integer "
                             f"from 1 to {FORMAT_VERSION}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written by a newer mtlfaces (format {version}); upgrade mtlfaces"
        )
    return meta


def read_network(path):
    """The Keras network of a model file, unpacked within its size limits and loaded in
    safe mode; raises ModelFileError."""
    path = os.fspath(path)
    with tempfile.TemporaryDirectory() as tmp:
        network = os.path.join(tmp, "model.keras")
        try:
            with zipfile.ZipFile(path) as zf:
                _check_members(zf, path, "the model file's", {_MODEL_ENTRY: MAX_NETWORK_BYTES})
                _copy_member(zf, _MODEL_ENTRY, network, MAX_NETWORK_BYTES, path)
        except ModelFileError:
            raise
        except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError, KeyError) as exc:
            raise _corrupt(path, exc) from None
        return _load_keras(network, path)


def read_int8(path):
    """The model file's 8-bit network (bytes), or None when it has none."""
    path = os.fspath(path)
    try:
        with zipfile.ZipFile(path) as zf:
            if INT8_ENTRY not in zf.namelist():
                return None
            _check_members(zf, path, "the model file's", {INT8_ENTRY: MAX_NETWORK_BYTES})
            with zf.open(INT8_ENTRY) as fh:
                data = fh.read(MAX_NETWORK_BYTES + 1)
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as exc:
        raise _corrupt(path, exc) from None
    if len(data) > MAX_NETWORK_BYTES:
        raise ModelFileError(f"{path}: its {INT8_ENTRY} is over the {MAX_NETWORK_BYTES:,}-byte "
                             "limit")
    return data
