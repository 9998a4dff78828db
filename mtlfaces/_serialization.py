"""The model file format: reading and writing it without pickle.

A model file is a zip archive holding ``mtlfaces.json`` (format tag, tasks,
classes, estimator parameters, package versions) and ``model.keras`` (the Keras
native format, loaded with ``safe_mode=True`` so no code stored in it runs).
This module knows the container; what the JSON holds is the estimator's
(:meth:`MultiTaskFaceClassifier._metadata`), so it imports nothing from the estimator.
"""

import json
import os
import tempfile
import zipfile

import numpy as np

FORMAT = "mtlfaces-model"
FORMAT_VERSION = 1
_MODEL_ENTRY = "model.keras"
_META_ENTRY = "mtlfaces.json"
# Parameters that cannot travel as JSON (objects) are not saved.
UNSAVED_PARAMS = ("callbacks",)


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


def model_from_bytes(data, source="<bytes>"):
    import keras

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as fh:
            fh.write(data)
        try:
            return keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:
            raise ModelFileError(
                f"{source}: the Keras model inside could not be loaded ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''})"
            ) from None


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


def write_model_file(path, meta, model):
    """Write ``meta`` (the estimator's JSON part) and ``model`` to ``path``, atomically."""
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
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)  # a partial file never carries the final name
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_metadata(path):
    """Return the JSON metadata of a model file, checking that it is one."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(f"{path}: no such model file")
    if os.path.isdir(path):
        raise ModelFileError(f"{path}: is a directory, not a model file")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if _META_ENTRY not in names or _MODEL_ENTRY not in names:
                raise ModelFileError(
                    f"{path}: not an mtlfaces model file (no {_META_ENTRY}/{_MODEL_ENTRY} inside; "
                    "a bare Keras .keras file can be wrapped with MultiTaskFaceClassifier.save)"
                )
            meta = json.loads(zf.read(_META_ENTRY).decode("utf-8"))
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelFileError(
            f"{path}: not a readable mtlfaces model file (corrupt or truncated: {exc})"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an mtlfaces model file (format tag missing)")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written by a newer mtlfaces (format {meta['format_version']}); upgrade mtlfaces"
        )
    return meta


def read_model_file(path):
    """``(metadata, keras_model)`` of a model file; raises ModelFileError."""
    meta = read_metadata(path)
    try:
        with zipfile.ZipFile(path) as zf:
            data = zf.read(_MODEL_ENTRY)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ModelFileError(f"{path}: model data unreadable (corrupt or truncated: {exc})") from None
    return meta, model_from_bytes(data, source=os.fspath(path))
