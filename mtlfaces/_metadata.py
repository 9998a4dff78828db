"""The schema of a model file's JSON document, checked field by field.

A model file may come from a stranger: every field that decides what the estimator does
(tasks, classes, parameters, the network's input) is checked before it is used, and a
field that is missing, of the wrong type, out of range or at odds with the network inside
ends in one :class:`~mtlfaces.ModelFileError` that names it. What the document may hold:

=================  ============================================================
``tasks``          list of 1 to 32 distinct task names (strings of 1 to 64 chars)
``classes``        one ``{"values": [...], "dtype": str}`` per task: 1 to 1000
                   distinct labels, all strings (at most 200 characters) or all
                   integers; dtype ``object``, ``<U`` (at most 200), an integer
                   type or ``bool``
``single_output``  bool (true only with one task)
``n_features_in``  integer from 1 to 10**8
``params``         dict of the estimator's parameters, checked as ``fit`` checks them
``preprocessing``  optional dict; its ``image_size`` and ``grayscale``, when given,
                   must match ``params``
``history``        optional dict of metric name to a list of numbers (or null)
=================  ============================================================

The network must then have one output per task, as wide as the task's classes, and a
square input of ``params["image_size"]`` pixels (at most :data:`MAX_IMAGE_SIZE`) with 1
channel when ``params["grayscale"]`` is true, else 3.
"""

import numbers

import numpy as np

from ._serialization import ModelFileError

#: Largest network input side a model file may declare (crops are made at this size).
MAX_IMAGE_SIZE = 512
_MAX_TASKS = 32
_MAX_CLASSES = 1000
_MAX_LABEL = 200


def _fail(path, field, problem):
    raise ModelFileError(f"{path}: field {field!r} of the model file {problem}")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _tasks(meta, path):
    tasks = meta.get("tasks")
    if not isinstance(tasks, list) or not 1 <= len(tasks) <= _MAX_TASKS:
        _fail(path, "tasks", f"is {_short(tasks)}; expected a list of 1 to {_MAX_TASKS} "
              "task names")
    for task in tasks:
        if not isinstance(task, str) or not 1 <= len(task) <= 64:
            _fail(path, "tasks", f"holds {_short(task)}; expected names of 1 to 64 characters")
    if len(set(tasks)) != len(tasks):
        _fail(path, "tasks", f"repeats a task: {tasks}")
    return tasks


def _labels(entry, field, path):
    if not isinstance(entry, dict):
        _fail(path, field, f"is {_short(entry)}; expected {{'values': [...], 'dtype': ...}}")
    values, dtype = entry.get("values"), entry.get("dtype")
    if not isinstance(values, list) or not 1 <= len(values) <= _MAX_CLASSES:
        _fail(path, f"{field}.values", f"is {_short(values)}; expected a list of 1 to "
              f"{_MAX_CLASSES} labels")
    if all(isinstance(v, str) for v in values):
        if any(len(v) > _MAX_LABEL for v in values):
            _fail(path, f"{field}.values", f"has a label over {_MAX_LABEL} characters")
        kinds = "OU"
    elif all(_is_int(v) and -2**63 <= v < 2**63 for v in values):
        kinds = "Oiu"
    elif all(isinstance(v, bool) for v in values):
        kinds = "b"
    else:
        _fail(path, f"{field}.values", f"mixes or holds labels other than strings and "
              f"integers: {_short(values)}")
    if len(set(values)) != len(values):
        _fail(path, f"{field}.values", f"repeats a label: {_short(values)}")
    try:
        dt = np.dtype(dtype) if isinstance(dtype, str) else None
    except TypeError:
        dt = None
    if dt is None or dt.kind not in kinds or (dt.kind == "U" and dt.itemsize > 4 * _MAX_LABEL):
        _fail(path, f"{field}.dtype", f"is {_short(dtype)}, which cannot hold these labels "
              "(expected 'object', '<U' of at most 200, an integer type or 'bool')")
    try:
        return np.array(values, dtype=dt)
    except (TypeError, ValueError, OverflowError) as exc:
        _fail(path, f"{field}.values", f"do not fit dtype {dtype}: {exc}")


def _history(meta, path):
    history = meta.get("history", {})
    if history is None:
        return {}
    if not isinstance(history, dict):
        _fail(path, "history", f"is {_short(history)}; expected a dict of metric lists")
    for name, values in history.items():
        if not isinstance(values, list) or not all(
                v is None or (isinstance(v, numbers.Real) and not isinstance(v, bool))
                for v in values):
            _fail(path, f"history.{name}", f"is {_short(values)}; expected a list of numbers")
    return {k: list(v) for k, v in history.items()}


def _short(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def check_metadata(meta, path):
    """The fields of ``meta`` checked and converted (tasks, classes, single, n_features_in,
    params, history); raises :class:`~mtlfaces.ModelFileError` naming the first bad one."""
    tasks = _tasks(meta, path)
    classes = meta.get("classes")
    if not isinstance(classes, list) or len(classes) != len(tasks):
        _fail(path, "classes", f"is {_short(classes)}; expected one entry per task "
              f"({len(tasks)})")
    classes = [_labels(c, f"classes[{i}]", path) for i, c in enumerate(classes)]
    single = meta.get("single_output")
    if not isinstance(single, bool) or (single and len(tasks) != 1):
        _fail(path, "single_output", f"is {_short(single)}; expected true or false "
              "(true only with one task)")
    n_features = meta.get("n_features_in")
    if not _is_int(n_features) or not 1 <= n_features <= 10**8:
        _fail(path, "n_features_in", f"is {_short(n_features)}; expected an integer from 1 "
              "to 10**8")
    params = meta.get("params")
    if not isinstance(params, dict):
        _fail(path, "params", f"is {_short(params)}; expected a dict of parameters")
    params = dict(params)
    for key in ("filters", "dense_units", "tasks"):
        if isinstance(params.get(key), list):
            params[key] = tuple(params[key])
    size, gray = params.get("image_size", 48), params.get("grayscale", True)
    preprocessing = meta.get("preprocessing", {})
    if not isinstance(preprocessing, dict):
        _fail(path, "preprocessing", f"is {_short(preprocessing)}; expected a dict")
    for key, value in (("image_size", size), ("grayscale", gray)):
        if key in preprocessing and preprocessing[key] != value:
            _fail(path, f"preprocessing.{key}", f"is {_short(preprocessing[key])} but "
                  f"params.{key} is {_short(value)}")
    return {"tasks": tasks, "classes": classes, "single": single,
            "n_features_in": int(n_features), "params": params, "history": _history(meta, path)}


def check_parameters(estimator, path):
    """Run the estimator's own parameter checks, naming the model file on failure."""
    try:
        estimator._check_params()
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: field 'params' of the model file is invalid: "
                             f"{str(exc).splitlines()[0]}") from None


def check_network(model, tasks, classes, params, path):
    """The network inside agrees with the document: one output per task, as wide as its
    classes, and the input shape ``params`` declare."""
    try:
        outputs = dict(model.output) if isinstance(model.output, dict) else dict(
            zip(model.output_names, model.outputs if isinstance(model.outputs, list)
                else [model.output]))
        shape = tuple(model.input_shape)
    except (AttributeError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: the network inside is not a single-input network with "
                             f"named outputs ({exc})") from None
    missing = [t for t in tasks if t not in outputs]
    if missing:
        raise ModelFileError(f"{path}: the network has no output for task(s) {missing}")
    for task, labels in zip(tasks, classes):
        width = outputs[task].shape[-1]
        if width != len(labels):
            raise ModelFileError(f"{path}: field 'classes' of the model file gives task "
                                 f"{task!r} {len(labels)} classes, but the network's output "
                                 f"has {width}")
    size, gray = params.get("image_size", 48), params.get("grayscale", True)
    channels = 1 if gray else 3
    if (len(shape) != 4 or shape[1] != shape[2] or shape[3] not in (1, 3)
            or not _is_int(shape[1]) or not 8 <= shape[1] <= MAX_IMAGE_SIZE):
        raise ModelFileError(f"{path}: the network's input shape {shape[1:]} is not a square "
                             f"image of 8 to {MAX_IMAGE_SIZE} pixels with 1 or 3 channels")
    if (shape[1], shape[3]) != (size, channels):
        raise ModelFileError(f"{path}: field 'params' of the model file says image_size="
                             f"{size!r}, grayscale={gray!r}, but the network takes "
                             f"{shape[1]}×{shape[2]}×{shape[3]} images")


def check_int8(blob, tasks, classes, input_shape, path):
    """The 8-bit copy inside agrees with the document and the network: one output per task
    as wide as its classes, and the network's input shape. Without a TensorFlow Lite
    interpreter it cannot be read, and is left to ``inference="auto"``'s fallback (None).
    Returns the :class:`~mtlfaces._int8.Int8Network`, so that it is built once."""
    from ._int8 import Int8Network

    try:
        net = Int8Network(blob, tasks, [len(c) for c in classes])
    except ImportError:
        return None
    except ValueError as exc:
        raise ModelFileError(f"{path}: the model file's 8-bit network does not match it: "
                             f"{exc}") from None
    if net.input_shape != tuple(input_shape):
        raise ModelFileError(f"{path}: the model file's 8-bit network takes {net.input_shape} "
                             f"images, the network {tuple(input_shape)}")
    return net
