"""Model files from strangers: bounded memory, one-line errors that name the field.

Every file here is built by the test from the small fitted model; none is committed.
"""

import json
import os
import math
import tracemalloc
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mtlfaces._serialization as ser
from mtlfaces import ModelFileError, load_model

MiB = 2**20


@pytest.fixture(scope="module")
def good(fitted, tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "good.mtlfaces"
    fitted.save(path)
    with zipfile.ZipFile(path) as zf:
        return path, json.loads(zf.read("mtlfaces.json")), zf.read("model.keras")


def _write(path, meta_bytes, network, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        zf.writestr("mtlfaces.json", meta_bytes)
        zf.writestr("model.keras", network)
    return path


def _with_meta(good, tmp_path, change, name="changed.mtlfaces"):
    _, meta, network = good
    meta = json.loads(json.dumps(meta))
    change(meta)
    return _write(tmp_path / name, json.dumps(meta), network)


def _refused(path, match):
    """Loading ``path`` raises ModelFileError matching ``match``; returns the peak of
    Python's own allocations while it tried (bytes)."""
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=match) as info:
            load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)
    return peak


def test_a_network_member_that_unpacks_to_far_more_is_refused_unread(good, tmp_path):
    _, meta, _ = good
    bomb = _write(tmp_path / "bomb.mtlfaces", json.dumps(meta), bytes(64 * MiB),
                  compression=zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < MiB
    assert _refused(bomb, "zip bomb") < 8 * MiB


def test_a_bomb_inside_the_keras_archive_is_refused(good, tmp_path):
    _, meta, _ = good
    inner = tmp_path / "inner.keras"
    with zipfile.ZipFile(inner, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", "{}")
        zf.writestr("model.weights.h5", bytes(64 * MiB))
    path = _write(tmp_path / "innerbomb.mtlfaces", json.dumps(meta), inner.read_bytes())
    assert _refused(path, "network member 'model.weights.h5'.*zip bomb") < 8 * MiB


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_padded_json_document_is_refused_before_it_is_read(good, tmp_path, compression):
    _, meta, network = good
    padded = json.dumps(meta).encode() + b" " * (ser.MAX_METADATA_BYTES + 1)
    path = _write(tmp_path / "padded.mtlfaces", padded, network, compression)
    assert _refused(path, "mtlfaces.json") < 8 * MiB


def test_network_size_limit(good, tmp_path, monkeypatch):
    path, _, network = good
    monkeypatch.setattr(ser, "MAX_NETWORK_BYTES", len(network) - 1)
    _refused(path, "over the .*-byte limit")


def test_a_corrupt_network_says_the_file_is_corrupt_without_temporary_paths(good, tmp_path):
    _, meta, network = good
    cut = _write(tmp_path / "cut.mtlfaces", json.dumps(meta), network[: len(network) // 2])
    with pytest.raises(ModelFileError, match="cut.mtlfaces: the model file is corrupt") as info:
        load_model(cut)
    assert "/tmp" not in str(info.value).replace(str(tmp_path), "")
    flipped = bytearray(network)
    flipped[len(flipped) // 2] ^= 0xFF
    path = _write(tmp_path / "flipped.mtlfaces", json.dumps(meta), bytes(flipped))
    _refused(path, "corrupt")


def _set(key, value):
    def change(meta):
        meta[key] = value
    return change


def _drop(key):
    return lambda meta: meta.pop(key)


def _param(key, value):
    def change(meta):
        meta["params"][key] = value
    return change


def _classes(index, **fields):
    def change(meta):
        meta["classes"][index].update(fields)
    return change


# (change to the document, the field the error must name); none of these needs the network.
DOCUMENT_FAULTS = {
    "format_version as a string": (_set("format_version", "1"), "format_version"),
    "format_version as a bool": (_set("format_version", True), "format_version"),
    "params missing": (_drop("params"), "'params'"),
    "params a string": (_set("params", "x"), "'params'"),
    "classes missing": (_drop("classes"), "'classes'"),
    "classes too short": (lambda m: m["classes"].pop(), "'classes'"),
    "tasks missing": (_drop("tasks"), "'tasks'"),
    "tasks repeated": (lambda m: m.__setitem__("tasks", [m["tasks"][0]] * len(m["tasks"])),
                       "'tasks'"),
    "unknown dtype": (_classes(0, dtype="float128x"), r"classes\[0\].dtype"),
    "a huge byte-string dtype": (_classes(0, dtype="S200000000"), r"classes\[0\].dtype"),
    "labels that are lists": (_classes(0, values=[[1], [2]]), r"classes\[0\].values"),
    "labels mixing types": (_classes(0, values=["a", 1]), r"classes\[0\].values"),
    "labels repeated": (lambda m: m["classes"][0].update(
        values=[m["classes"][0]["values"][0]] * len(m["classes"][0]["values"])),
        r"classes\[0\].values"),
    "n_features_in as a word": (_set("n_features_in", "many"), "n_features_in"),
    "n_features_in NaN": (_set("n_features_in", math.nan), "n_features_in"),
    "history a list": (_set("history", [1, 2]), "'history'"),
    "history an int": (_set("history", 3), "'history'"),
    "history of words": (_set("history", {"loss": ["low"]}), "history.loss"),
    "batch_size a word": (_param("batch_size", "x"), "batch_size"),
    "epochs negative": (_param("epochs", -3), "epochs"),
    "an unknown parameter": (_param("n_estimators", 10), "'params'"),
    "single_output a word": (_set("single_output", "yes"), "single_output"),
    "preprocessing at odds with params": (
        lambda m: m["preprocessing"].update(image_size=15000), "preprocessing.image_size"),
}


@pytest.mark.parametrize("fault", list(DOCUMENT_FAULTS))
def test_each_bad_field_is_named_before_the_network_is_loaded(good, tmp_path, monkeypatch,
                                                              fault):
    change, field = DOCUMENT_FAULTS[fault]
    path = _with_meta(good, tmp_path, change)

    def never(*args):
        raise AssertionError("the network was loaded for a bad document")

    monkeypatch.setattr(ser, "read_network", never)
    _refused(path, field)


def _both(key, value):
    def change(meta):
        meta["params"][key] = value
        meta["preprocessing"][key] = value
    return change


@pytest.mark.parametrize("change, match", [
    (_both("image_size", 15000), "image_size=15000.*network takes 32"),
    (_both("grayscale", False), "grayscale=False.*network takes 32"),
    (lambda m: m["classes"][0]["values"].append("Ancient"), "task .age. 6 classes, but the network.s output has 5"),
], ids=["image_size 15000", "grayscale flipped", "an extra class"])
def test_a_document_at_odds_with_its_network_is_refused(good, tmp_path, change, match):
    # The image size decided the crops (15000 px used 3 GB); now the network decides.
    _refused(_with_meta(good, tmp_path, change), match)


def test_int_labels_load_as_ints(good, tmp_path, fitted, shapes_test):
    def to_ints(meta):
        meta["classes"][0] = {"values": list(range(len(meta["classes"][0]["values"]))),
                              "dtype": "int64"}
    model = load_model(_with_meta(good, tmp_path, to_ints))
    assert model.classes_[0].dtype.kind == "i"
    assert model.predict(shapes_test[0][:3]).shape == (3, len(fitted.tasks_))


# ------------------------------------------------------------ property-based
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=10)


@st.composite
def _mutations(draw):
    kind = draw(st.sampled_from(["truncate", "flip", "swap", "field", "param"]))
    if kind in ("truncate", "flip"):
        return kind, draw(st.floats(0, 1, exclude_max=True)), draw(st.integers(1, 255))
    if kind == "swap":
        return kind, None, None
    return kind, draw(st.text(min_size=1, max_size=3) | st.sampled_from(
        ["tasks", "classes", "single_output", "n_features_in", "params", "preprocessing",
         "history", "format_version", "image_size", "filters", "batch_size", "tasks",
         "grayscale", "dense_units"])), draw(_json_values)


@settings(max_examples=int(os.environ.get("MTLFACES_FUZZ_EXAMPLES", 40)), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=_mutations())
def test_mutated_model_files_fail_in_one_line_within_bounded_memory(good, tmp_path_factory,
                                                                    shapes_test, mutation):
    kind, where, value = mutation
    path, meta, network = good
    target = tmp_path_factory.mktemp("mutant") / "mutant.mtlfaces"
    if kind == "truncate":
        raw = path.read_bytes()
        target.write_bytes(raw[: int(where * len(raw))])
    elif kind == "flip":
        raw = bytearray(path.read_bytes())
        raw[int(where * len(raw))] ^= value
        target.write_bytes(bytes(raw))
    elif kind == "swap":
        _write(target, network, json.dumps(meta).encode())
    else:
        changed = json.loads(json.dumps(meta))
        (changed if kind == "field" else changed["params"])[where] = value
        _write(target, json.dumps(changed), network)
    before = _rss()
    tracemalloc.start()
    try:
        try:
            model = load_model(target)
        except ModelFileError as exc:
            assert "\n" not in str(exc) and str(target) in str(exc)
        else:  # a harmless change: the model must then work
            assert model.predict(shapes_test[0][:2]).shape[0] == 2
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * MiB
    assert _rss() - before < 256 * MiB


def _rss():
    """This process's resident memory now, in bytes (Linux)."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS"))
