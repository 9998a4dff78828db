"""The studies keep running (their --quick modes) and their helpers compute what they say.

Opt-in: ``python -m pytest research/tests`` (not part of the default run).
"""

import importlib.util
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(ROOT, "..", "shared", "data")
BUNDLED = os.path.join(ROOT, "mtlfaces", "models", "pretrained.mtlfaces")
needs_shared = pytest.mark.skipif(not os.path.isdir(SHARED), reason="../shared/data not present")
_SHARED_MARKS = [pytest.mark.shared_data, needs_shared]
pytestmark = pytest.mark.research


def _load(folder, name):
    """Import ``<folder>/<name>.py`` as a module (the folder goes on sys.path)."""
    sys.path.insert(0, os.path.join(ROOT, folder))
    spec = importlib.util.spec_from_file_location(f"{folder}_{name}", os.path.join(ROOT, folder, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_quick(name, monkeypatch, tmp_path, *args):
    """Run research/<name>.py --quick with its JSON going to tmp_path; return the module."""
    bench = _load("research", name)
    import _common

    monkeypatch.setattr(_common, "RESULTS", str(tmp_path))
    if hasattr(bench, "RESULTS"):
        monkeypatch.setattr(bench, "RESULTS", str(tmp_path))
    assert bench.main(["--quick", *args]) == 0
    return bench


@pytest.mark.parametrize("name", [
    pytest.param("speed", marks=pytest.mark.slow),
    pytest.param("multitask_study", marks=[pytest.mark.slow, *_SHARED_MARKS]),
    pytest.param("crop_calibration", marks=[pytest.mark.slow, *_SHARED_MARKS]),
])
def test_benchmark_quick_mode_runs_and_writes_its_json(name, tmp_path, monkeypatch):
    import json

    _run_quick(name, monkeypatch, tmp_path, *([] if name == "speed" else ["--data-dir", SHARED]))
    result = json.loads((tmp_path / f"{name}_quick.json").read_text())
    assert result.get("quick") is True, name  # marked as a quick run, never the published one


@pytest.mark.shared_data
@needs_shared
def test_ensemble_quick_averages_the_models_probabilities(tmp_path, monkeypatch):
    import json

    from mtlfaces import load_model

    # A second model that answers "Happy" far more often: the bundled network with the
    # emotion head's Happy bias raised.
    # (The Keras network: the 8-bit copy that predicts by default is the unedited one.)
    other = load_model(BUNDLED).set_params(inference="keras")
    head = other.model_.get_layer("emotion")
    kernel, bias = head.get_weights()
    bias[list(other.classes_[other.tasks_.index("emotion")]).index("Happy")] += 4.0
    head.set_weights([kernel, bias])
    other.save(tmp_path / "happy.mtlfaces")
    _run_quick("ensemble", monkeypatch, tmp_path, BUNDLED,
                       str(tmp_path / "happy.mtlfaces"), "--labels", "bundled", "happy",
                       "--data-dir", SHARED, "--cache-dir", str(tmp_path / "cache"))
    rows = json.loads((tmp_path / "ensemble_quick.json").read_text())["rows"]
    assert [r["model"] for r in rows] == ["bundled", "happy", "mean of all 2"]
    # The mean row is the accuracy of the mean of the two models' probabilities.
    recipe = _load("recipes", "train_pretrained")
    _, val = recipe.load_splits(SHARED, 48, str(tmp_path / "cache"),
                              limit=recipe.QUICK_LIMIT)
    X, y = val["fer2013_publictest"]
    k = other.tasks_.index("emotion")
    bundled = load_model(BUNDLED)
    mean = (bundled.predict_proba(X)[k] + other.predict_proba(X)[k]) / 2
    predicted = np.asarray(other.classes_[k])[mean.argmax(axis=1)]
    assert rows[2]["emotion"] == pytest.approx(np.mean(predicted == y["emotion"].to_numpy()))
    # The mean answers neither as one model nor as the other (on a few faces apart), so the
    # equality above tells the mean from a copy of either row's model.
    for est in (bundled, other):
        alone = np.asarray(est.classes_[k])[est.predict_proba(X)[k].argmax(axis=1)]
        assert np.any(alone != predicted)
    assert rows[2]["gender"] == rows[0]["gender"]  # the same network there
    assert rows[2]["parameters"] == 2 * rows[0]["parameters"]


def test_ensemble_refuses_models_with_other_tasks(tmp_path, shapes, capsys):
    from tests.conftest import TINY

    from mtlfaces import MultiTaskFaceClassifier

    X, y = shapes
    MultiTaskFaceClassifier(epochs=1, **TINY).fit(X, y[["age", "gender"]]).save(
        tmp_path / "shapes.mtlfaces")
    bench = _load("research", "ensemble")
    with pytest.raises(SystemExit) as exc:
        bench.main([BUNDLED, str(tmp_path / "shapes.mtlfaces")])
    assert exc.value.code == 2
    assert f"{tmp_path / 'shapes.mtlfaces'}: its tasks or classes differ" in \
        capsys.readouterr().err


@pytest.mark.shared_data
@needs_shared
def test_sharpness_quick_measures_the_blur_of_bilinear_shifts(tmp_path, monkeypatch):
    import json

    # A model an earlier run recorded is kept beside this run's (and its label put last).
    earlier = [{"sigma": 0.0, "emotion": 0.5, "age": 0.5, "gender": 0.5}]
    (tmp_path / "sharpness_quick.json").write_text(json.dumps(
        {"accuracy_under_blur": {"earlier run": earlier}}))
    _run_quick("sharpness", monkeypatch, tmp_path, "--data-dir", SHARED)
    result = json.loads((tmp_path / "sharpness_quick.json").read_text())
    assert list(result["accuracy_under_blur"])[0] == "earlier run"
    assert result["accuracy_under_blur"].pop("earlier run") == earlier
    rows = {r["augmentation"]: r["vs_faces"] for r in result["augmentation"]}
    assert rows["none"] == 1.0 and rows["flip only"] == pytest.approx(1.0, abs=0.01)
    assert rows["shift 0.08, whole pixels"] > 0.97
    assert rows["shift 0.08, bilinear"] < 0.9
    assert rows["default (rotation + whole-pixel shift)"] > rows[
        "mtlfaces 0.1.0 default (rotation + bilinear shift)"] + 0.1
    (blur,) = result["accuracy_under_blur"].values()
    assert [r["sigma"] for r in blur] == [0.0, 0.4]
    assert blur[0]["gender"] > 0.8  # the bundled model on unblurred faces


@pytest.mark.slow
@pytest.mark.shared_data
@needs_shared
def test_levers_quick(tmp_path, monkeypatch):
    import json

    _run_quick("levers", monkeypatch, tmp_path, "--data-dir", SHARED)
    rows = json.loads((tmp_path / "levers_quick.json").read_text())["rows"]
    assert [r["arm"] for r in rows] == ["bundled model as is", "continue", "class weight",
                                        "label smoothing"]
    # The untouched bundled model is far above chance on every headline number.
    assert rows[0]["emotion"] > 0.5 and rows[0]["gender"] > 0.85 and rows[0]["age"] > 0.55


@pytest.mark.shared_data
@needs_shared
def test_posthoc_quick(tmp_path, monkeypatch):
    import json

    _run_quick("posthoc", monkeypatch, tmp_path, "--data-dir", SHARED)
    rows = {r["arm"]: r for r in json.loads((tmp_path / "posthoc_quick.json").read_text())["rows"]}
    assert rows["as bundled (flip)"]["passes"] == 2 and rows["no flip"]["passes"] == 1
    assert rows["+ 4 shifts of 1 px"]["passes"] == 10
    for r in rows.values():  # no arm breaks the network
        assert r["emotion"] > 0.5 and r["gender"] > 0.85, r


@pytest.mark.shared_data
@needs_shared
def test_years_answer_quick(tmp_path, monkeypatch):
    """Every answer rule scored on both networks; the library's rule is the one analyze
    gives, and each row's paired difference is its own error minus the expected value's."""
    import json

    _run_quick("years_answer", monkeypatch, tmp_path, "--data-dir", SHARED)
    result = json.loads((tmp_path / "years_answer_quick.json").read_text())
    rows = {(r["network"], r["answer"]): r for r in result["rows"]}
    assert {n for n, _ in rows} == {"int8", "keras"} and len(rows) == 10
    for network in ("int8", "keras"):
        base = rows[(network, "expected value")]
        assert base["vs_expected"] == 0
        for (n, answer), r in rows.items():
            if n == network:
                assert r["vs_expected"] == pytest.approx(r["mae"] - base["mae"], abs=1e-9)
    assert {r["answer"] for r in result["cross_fitted"]} == {
        "linear map of the expected value", "isotonic map of the expected value"}


@pytest.mark.shared_data
@needs_shared
def test_input_width_study_pack_and_quick(tmp_path, monkeypatch):
    """The pack carries the faces, labels and hold-out as the loader gives them (through
    JPEG), and a quick run from it trains and scores both quick arms."""
    import json

    import numpy as np

    from mtlfaces.datasets import load_utkface, validation_mask

    study = _load("research", "input_width_study")
    pack = str(tmp_path / "pack.npz")
    assert study.main(["--quick", "--pack", pack, "--data-dir", SHARED,
                       "--cache-dir", str(tmp_path / "cache")]) == 0
    X, y, val = study.read_pack(pack)
    X0, y0 = load_utkface(os.path.join(SHARED, "UTKFace.tar.gz"), image_size=64,
                          grayscale=False, limit=1500, random_state=0)
    assert X.shape == X0.shape == (1500, 64, 64, 3)
    assert np.abs(X.astype(int) - X0).mean() < 4  # JPEG at quality 90, nothing else
    assert list(y["age"]) == list(y0["age"]) and list(y["gender"]) == list(y0["gender"])
    assert list(y["age_years"]) == list(y0["age_years"])
    assert (val == np.asarray(validation_mask(y0))).all() and 0 < val.sum() < 1500
    out = tmp_path / "result.json"
    assert study.main(["--quick", "--from-pack", pack, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = {r["arm"]: r for r in result["rows"]}
    assert set(rows) == {a[0] for a in study.QUICK_ARMS} and result["not_run"] == []
    for r in rows.values():
        assert 0 <= r["age"] <= 1 and 0 <= r["gender"] <= 1 and r["years_mae"] > 0
        assert r["epochs_run"] == 1 and len(r["curve"]) == 1
    # 1.5 times as wide: more parameters than the plain arm.
    assert rows["32 colour, 1.5× wide"]["parameters"] > rows["32 gray"]["parameters"]


@pytest.mark.shared_data
@needs_shared
def test_input_study_quick(tmp_path, monkeypatch):
    import json

    _run_quick("input_study", monkeypatch, tmp_path, "--data-dir", SHARED)
    result = json.loads((tmp_path / "input_study_quick.json").read_text())
    rows = {r["input"]: r for r in result["rows"]}
    assert set(rows) == {"32×32 gray", "40×40 colour"}
    assert result["train_faces"] + result["validation_faces"] == 1500
    for r in rows.values():
        assert 0 <= r["age"] <= 1 and 0 <= r["gender"] <= 1 and r["faces_per_s"] > 0
    # Colour is a 3-channel first convolution: 2 x 9 x 32 more weights than gray.
    assert rows["40×40 colour"]["parameters"] - rows["32×32 gray"]["parameters"] == 2 * 9 * 32


def test_posthoc_results_of_another_model_never_replace_the_bundled_models(capsys):
    bench = _load("research", "posthoc")
    assert bench.results_name(None) == "posthoc"
    assert bench.results_name("runs/wide/phase1.mtlfaces") == "posthoc_phase1"
    assert bench.results_name("runs/wide/phase1.mtlfaces", "wide net") == "posthoc_wide_net"
    with pytest.raises(ValueError, match=r"--name '\.\.' leaves no letters or digits"):
        bench.results_name("m.mtlfaces", "..")
    # Usage errors before anything is loaded: --name alone, a name with nothing usable.
    for argv, message in [(["--name", "x"], "--name names the results of a --model"),
                          (["--model", "m.mtlfaces", "--name", "+"], "--name '+' leaves no")]:
        with pytest.raises(SystemExit) as exc:
            bench.main(argv)
        assert exc.value.code == 2 and message in capsys.readouterr().err


def test_posthoc_shift_moves_faces_by_whole_pixels():
    bench = _load("research", "posthoc")
    X = np.random.RandomState(0).randint(0, 256, (3, 6, 5)).astype(np.uint8)
    down = bench.shifted(X, 1, 0)
    assert down.shape == X.shape and down.dtype == X.dtype
    np.testing.assert_array_equal(down[:, 1:], X[:, :-1])
    np.testing.assert_array_equal(down[:, 0], X[:, 0])  # the edge row repeated
    left = bench.shifted(X[..., None], 0, -2)
    np.testing.assert_array_equal(left[:, :, :-2, 0], X[:, :, 2:])
    np.testing.assert_array_equal(left[:, :, -1, 0], X[:, :, -1])
    assert bench.shifted(X, 0, 0) is X


def test_posthoc_recalibrates_batchnorm_to_the_mean_batch_statistics(shapes):
    import keras

    from mtlfaces import MultiTaskFaceClassifier

    from tests.conftest import TINY

    bench = _load("research", "posthoc")
    X, y = shapes
    est = MultiTaskFaceClassifier(epochs=1, **TINY).fit(X, y)
    norm = next(layer for layer in est.model_.layers
                if isinstance(layer, keras.layers.BatchNormalization))
    first = next(layer for layer in est.model_.layers if layer.name.startswith("conv"))
    features = keras.Model(first.input, norm.input)
    before = norm.moving_mean.numpy().copy()
    images = est._check_X(X)[:64]
    order = np.random.RandomState(0).permutation(64)
    halves = [np.asarray(features(images[np.sort(order[i:i + 32])])) for i in (0, 32)]
    bench.recalibrate_batchnorm(est, X[:64], batch_size=32)
    axes = (0, 1, 2)
    np.testing.assert_allclose(norm.moving_mean.numpy(),
                               np.mean([h.mean(axis=axes) for h in halves], axis=0),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(norm.moving_variance.numpy(),
                               np.mean([h.var(axis=axes) for h in halves], axis=0),
                               rtol=1e-3, atol=1e-5)
    assert not np.allclose(before, norm.moving_mean.numpy())  # it did change them
    assert norm.momentum == 0.9  # and left the layer's momentum as it was


def test_colourise_computes_on_rgb_what_the_gray_network_computes_on_luma():
    from mtlfaces import MultiTaskFaceClassifier

    bench = _load("research", "continue_study")
    rng = np.random.RandomState(0)
    X = rng.randint(0, 256, (40, 16, 16, 3)).astype(np.uint8)
    y = np.stack([rng.choice(["Female", "Male"], 40), rng.choice(["Happy", "Sad"], 40)], 1)
    est = MultiTaskFaceClassifier(tasks=("gender", "emotion"), image_size=16, filters=(4, 8),
                                  dense_units=(8,), epochs=1, augment=False,
                                  mixed_precision=False, random_state=0, verbose=0).fit(X, y)
    before = est.predict_proba(X)  # the gray network on the luma of each face
    assert bench.colourise(est) is est
    assert est.model_.input_shape[1:] == (16, 16, 3) and est.grayscale is False
    after = est.predict_proba(X)
    for b, a in zip(before, after):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # The colour channels are not interchangeable: the same face with its channels
    # reversed has another luma, and the colour network answers differently.
    swapped = est.predict_proba(X[..., ::-1])
    assert max(np.abs(s - a).max() for s, a in zip(swapped, after)) > 1e-3
    with pytest.raises(ValueError, match="not grayscale"):
        bench.colourise(est)


@pytest.mark.shared_data
@needs_shared
def test_continue_study_quick(tmp_path, monkeypatch):
    import json

    _run_quick("continue_study", monkeypatch, tmp_path, "--data-dir", SHARED,
               "--out-dir", str(tmp_path), "--arms", "gray", "colour", "--no-readout")
    result = json.loads((tmp_path / "continue_study_quick.json").read_text())
    assert not result["complete"]  # age_sigma and the mixup arms have not run
    assert result["bundled_with_readout"] is None
    assert all("age with read-out" not in r for r in result["rows"])
    # --rescore scores a saved arm again, with the read-out, and adds that to its row.
    before = result["rows"][0]
    _run_quick("continue_study", monkeypatch, tmp_path, "--data-dir", SHARED,
               "--out-dir", str(tmp_path), "--arms", "gray", "--rescore")
    result = json.loads((tmp_path / "continue_study_quick.json").read_text())
    gray = result["rows"][0]
    assert gray["arm"] == "gray" and 0 < gray["age with read-out"] <= 1
    assert {k: gray[k] for k in before} == before  # the same model, the same counts
    assert all(gray[f"{t} gained"] >= 0 and gray[f"{t} lost"] >= 0
               for t in ("emotion", "gender", "age"))
    assert set(result["bundled_with_readout"]) == {"gender", "age", "gender alone",
                                                   "age alone"}
    assert "age with read-out" not in result["rows"][1]  # colour was not asked for
    # Run alone, an arm adds its row to those already written.
    _run_quick("continue_study", monkeypatch, tmp_path, "--data-dir", SHARED,
               "--out-dir", str(tmp_path), "--arms", "age_sigma", "mixup", "mixup_strong",
               "mixup_weighted")
    result = json.loads((tmp_path / "continue_study_quick.json").read_text())
    rows = {r["arm"]: r for r in result["rows"]}
    assert list(rows) == ["gray", "colour", "age_sigma", "mixup", "mixup_strong",
                          "mixup_weighted"]
    assert result["complete"]
    assert result["mixup"] == 0.2
    assert result["task_weights"] == {"age": 2.0, "gender": 2.0, "emotion": 1.0}
    # The weighted arm's last (its one --quick) epoch: the total loss is the weighted sum
    # of the task losses, as the unweighted arms' is the plain sum.
    for arm, weights in (("mixup_weighted", result["task_weights"]),
                         ("mixup", dict.fromkeys(("age", "gender", "emotion"), 1.0))):
        h = result["arms"][arm]["history"]
        # Every head's loss counts (the bundled v7's age_years too, weight 1, all masked
        # in these continuations).
        heads = [k[:-len("_loss")] for k in h if k.endswith("_loss") and k != "loss"
                 and not k.startswith("val_")]
        assert set(weights) <= set(heads)
        weighted_sum = sum(weights.get(t, 1.0) * h[f"{t}_loss"][-1] for t in heads)
        assert h["loss"][-1] == pytest.approx(weighted_sum, rel=0.03), arm
    assert 0 < rows["mixup"]["gender with read-out"] <= 1  # scored as trained
    assert set(result["arms"]) == set(rows)
    # Grown to colour, the bundled network starts where it was (bf16 rounding apart).
    assert rows["colour"]["start_same_answers"] > 0.97
    # Colour is a 3-channel first convolution: 2 x 9 x 32 more weights than gray.
    assert rows["colour"]["parameters"] - rows["gray"]["parameters"] == 2 * 9 * 32
    for r in rows.values():  # one quick epoch (QUICK_LIMIT faces per set) keeps the network
        assert r["emotion"] > 0.5 and r["gender"] > 0.85, r
    assert 0.9 < rows["colour"]["emotion_agreement"] <= 1


def test_continue_study_counts_agree_with_its_accuracies():
    """Each arm's faces gained and lost against the model it started from (the fifth
    bundled model, v5) are its accuracy's difference from that model's, face for face (the
    committed results)."""
    import json

    results = os.path.join(ROOT, "research", "results")
    with open(os.path.join(results, "continue_study.json")) as fh:
        study = json.load(fh)
    assert "v5" in study["start"]
    with open(os.path.join(results, "pretrained_validation_v5.json")) as fh:
        v5 = json.load(fh)
    summary = v5["phases"]["average"]["validation_summary"]
    sizes = {"emotion": v5["validation"]["fer2013_publictest"]["emotion"]["n"],
             "gender": v5["validation"]["utkface"]["gender"]["n"],
             "age": v5["validation"]["utkface"]["age"]["n"]}
    counted = [r for r in study["rows"] if "emotion gained" in r]
    assert counted, "no arm has gained/lost counts"
    for row in counted:
        for task, n in sizes.items():
            net = row[f"{task} gained"] - row[f"{task} lost"]
            assert abs((row[task] - summary[task]) * n - net) < 0.5, (row, task)
    # v5 with the read-out, as continue_study scored it, is descriptor_views.py's shipped
    # pair (measured on v5); the mixup arm with the read-out is the probe's pair, measured
    # on the bundled model since, which is that arm's network.
    with open(os.path.join(results, "descriptor_views.json")) as fh:
        shipped = json.load(fh)["rows"][0]
    with open(os.path.join(results, "descriptor_probe.json")) as fh:
        probe = {r["task"]: r for r in json.load(fh)["rows"]}
    mixup = next(r for r in study["rows"] if r["arm"] == "mixup")
    for task in ("gender", "age"):
        assert study["bundled_with_readout"][task] == pytest.approx(
            shipped[f"{task} + bundled"], abs=1e-4)
        assert mixup[f"{task} with read-out"] == pytest.approx(
            probe[task]["mean of bundled and descriptor C=1"], abs=1e-4)


@pytest.mark.slow
@pytest.mark.shared_data
@needs_shared
def test_descriptor_probe_quick(tmp_path, monkeypatch):
    import json

    _run_quick("descriptor_probe", monkeypatch, tmp_path, "--data-dir", SHARED)
    result = json.loads((tmp_path / "descriptor_probe_quick.json").read_text())
    assert [r["task"] for r in result["rows"]] == ["gender", "age"]
    assert result["train_faces"] + result["validation_faces"] == result["faces"] == 400
    # Real features: gender well above the share of either class on 60-odd faces.
    assert max(v for k, v in result["rows"][0].items() if k.startswith("descriptor")) > 0.7


@pytest.mark.slow
@pytest.mark.shared_data
@needs_shared
def test_descriptor_views_quick(tmp_path, monkeypatch):
    """Three views of 160 real UTKFace faces: every arm scored alone and with both
    network versions; the network's own rows are the bundled model's on the same faces."""
    import json
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where --quick's cache goes
    bench = _run_quick("descriptor_views", monkeypatch, tmp_path, "--data-dir", SHARED)
    result = json.loads((tmp_path / "descriptor_views_quick.json").read_text())
    assert result["quick"] and result["train_faces"] + result["validation_faces"] == 160
    names = [r["read-out"] for r in result["rows"]]
    F = np.zeros((4, 3, 128))
    assert names == list(bench.arms(F, F)[1])
    for row in result["rows"]:
        assert set(row) == {"read-out"} | {f"{t}{net}" for t in ("gender", "age")
                                           for net in ("", " + bundled",
                                                       " + bundled with shifts")}
        assert all(0 <= v <= 1 for k, v in row.items() if k != "read-out")
    # Real descriptors: the shipped arm tells gender well above chance on 20-odd faces.
    assert result["rows"][0]["gender"] > 0.7
    assert not list(tmp_path.glob("descriptor_views-*"))  # --quick removes its cache


def test_descriptor_view_arms_fit_and_predict_the_views_they_name():
    """The arms' members pair the right views: training on both views stacks the faces'
    two views (labels repeat with them); the padding arms use the third view; every
    member's training set exists."""
    bench = _load("research", "descriptor_views")
    F_train = np.stack([np.full((5, 128), k, float) for k in range(3)], axis=1)
    F_val = F_train[:2] + 10
    training, arms = bench.arms(F_train, F_val)
    assert training["as given and mirrored"][:, 0].tolist() == [0.0] * 5 + [1.0] * 5
    assert training["mean of both views"][0, 0] == 0.5 and training["padding 0.5"][0, 0] == 2
    assert all(key in training for members in arms.values() for key, _ in members)
    assert [(k, v[:, 0].tolist()) for k, v in arms["trained on both, predicts as given"]] == [
        ("as given and mirrored", [10.0, 10.0])]
    assert [v[0, 0] for _, v in arms["as given, predicts mean of both views"]] == [10, 11]
    assert arms["mean descriptor of both views"][0][1][0, 0] == 10.5
    assert [k for k, _ in arms["mean of the padding 0.25 and 0.5 read-outs"]] == [
        "as given", "padding 0.5"]
    assert next(iter(arms)) == "as given (0.3.1's read-out)"  # the pairs are counted against it


def test_descriptor_cache_is_keyed_by_files_source_and_version(tmp_path, astronaut, monkeypatch):
    """A second run reads the descriptors back; other files, another archive (size, time)
    or another DESCRIPTORS_VERSION compute them afresh."""
    probe = _load("research", "descriptor_probe")
    crops = np.stack([np.ascontiguousarray(astronaut[20:300, 100:360])] * 2)
    first, found, _ = probe.cached_descriptors(crops, ["a.jpg", "b.jpg"], str(tmp_path), 1, "s1")
    assert found == 2 and len(list(tmp_path.glob("dlib_descriptors-*.npz"))) == 1
    again = probe.cached_descriptors(np.zeros_like(crops), ["a.jpg", "b.jpg"], str(tmp_path), 1,
                                     "s1")[0]
    np.testing.assert_array_equal(again, first)  # read back, not recomputed from the zeros
    probe.cached_descriptors(crops, ["a.jpg", "c.jpg"], str(tmp_path), 1, "s1")
    probe.cached_descriptors(crops, ["a.jpg", "b.jpg"], str(tmp_path), 1, "s2")
    readout = sys.modules["readout"]  # the recipe's module, where the cache lives
    monkeypatch.setattr(readout, "DESCRIPTORS_VERSION", readout.DESCRIPTORS_VERSION + 1)
    probe.cached_descriptors(crops, ["a.jpg", "b.jpg"], str(tmp_path), 1, "s1")
    assert len(list(tmp_path.glob("dlib_descriptors-*.npz"))) == 4


@pytest.mark.shared_data
@needs_shared
def test_bundled_network_is_the_long_runs_network():
    """The bundled model (v7) is the network issue #32's long run validated, and the
    recipe's results say so: its emotion accuracy (Keras network) is phase 6's there."""
    import json

    from mtlfaces import load_pretrained
    from mtlfaces.datasets import load_fer2013, validation_mask

    with open(os.path.join(ROOT, "recipes", "results", "pretrained_validation.json")) as fh:
        phase6 = json.load(fh)["phases"]["phase6"]
    est = load_pretrained().set_params(inference="keras")
    assert est.mixup == phase6["mixup"] == 0.2
    assert est.tasks_[-1] == "age_years"
    X, y = load_fer2013(os.path.join(SHARED, "fer2013.tar.gz"))
    val = validation_mask(y)
    answers = est.predict(X[val])[:, est.tasks_.index("emotion")]
    accuracy = np.mean(answers.astype(str) == y.loc[val, "emotion"].astype(str).to_numpy())
    assert accuracy == pytest.approx(phase6["validation_summary"]["emotion"], abs=1e-9)


def test_report_renders_phase6_continued_beside_the_bundled_model():
    """The "more epochs of mixup" section: the bundled model's phase-6 figures and the
    continuation's, with its paired counts; nothing before the run."""
    report = _load("research", "report")
    v = {"phases": {"phase6": {"validation_summary": {
        "emotion": 0.683, "gender": 0.933, "age": 0.71, "ckplus_emotion": 0.942}}}}
    assert report.more_mixup_section(v, None) == []
    row = {"arm": "mixup", "epochs": 15, "emotion": 0.69, "gender": 0.94, "age": 0.72,
           "ckplus_emotion": 0.95, "train_minutes": 38.0, "gender with read-out": 0.945,
           "age with read-out": 0.75, "emotion gained": 50, "emotion lost": 25,
           "gender gained": 9, "gender lost": 8, "age gained": 40, "age lost": 13}
    more = {"rows": [row], "bundled_with_readout": {"gender": 0.9427, "age": 0.7429},
            "settings": {"learning_rate": 3e-4}, "mixup": 0.2}
    text = "\n".join(report.more_mixup_section(v, more))
    assert "emotion +50/−25, gender +9/−8, age +40/−13" in text
    assert "| bundled (v6: phase 6, 15 epochs of mixup) | 68.3 % | 93.3 % | 71.0 % | 94.2 % " \
           "| 94.3 % | 74.3 % |  |" in text
    assert "| v6 + 15 more epochs of mixup | 69.0 % | 94.0 % | 72.0 % | 95.0 % | 94.5 % " \
           "| 75.0 % | 38.0 |" in text
    assert "weighted" not in text  # the mixup_weighted arm has not run
    # With the mixup_weighted arm's row: its line and its counts, the title says so.
    weighted = {**row, "arm": "mixup_weighted", "gender": 0.95, "gender with read-out": 0.96,
                "emotion gained": 30, "emotion lost": 40}
    more.update(rows=[row, weighted], task_weights={"age": 2.0, "gender": 2.0, "emotion": 1.0})
    text = "\n".join(report.more_mixup_section(v, more))
    assert text.startswith("## Phase 6 continued: more epochs of mixup, and with the age and "
                           "gender losses weighted")
    assert "--arms mixup mixup_weighted --name continue_study_v6" in text
    assert "weighted age 2, gender 2, emotion 1 (`loss_weights`): emotion +30/−40, " \
           "gender +9/−8, age +40/−13." in text
    assert "| v6 + 15 more epochs of mixup, age and gender losses × 2 | 69.0 % | 95.0 % " \
           "| 72.0 % | 95.0 % | 96.0 % | 75.0 % | 38.0 |" in text
    # Without the mixup row (only the weighted arm run) there is no control to show.
    assert report.more_mixup_section(v, {**more, "rows": [weighted]}) == []


def test_report_renders_the_network_that_never_saw_ckplus():
    """The cross-dataset CK+ section: the command as run, every set's figure, CK+ per class
    without the class CK+ lacks; nothing before the run."""
    report = _load("research", "report")

    def acc(a, n, **extra):
        return {"accuracy": a, "macro_accuracy": a - 0.01, "n": n, **extra}

    w = {"options": {"teacher": None, "readout": False, "epochs": 20, "phase6_epochs": 0},
         "phases": {"phase1": {"epochs": 20}}, "train_seconds": 2700.0,
         "trained_on": "tensorflow cpu (2 cores)",
         "train_images_by_source": {"utkface": 16284, "fer2013": 28561},
         "validation": {
             "fer2013_publictest": {"emotion": acc(0.66, 3579)},
             "utkface": {"gender": acc(0.92, 2742), "age": acc(0.70, 2742),
                         "age_years": {"mae": 5.01, "n": 2742}},
             "ckplus": {"emotion": acc(0.61, 927, per_class_accuracy={
                 "Happy": 0.97, "Sad": 0.25, "Neutral": 0.0}, support={
                     "Happy": 207, "Sad": 4, "Neutral": 0},
                 classes=["Happy", "Sad", "Neutral"],
                 confusion_matrix=[[200, 0, 7], [1, 1, 2], [0, 0, 0]])}}}
    bundled = {"phases": {"phase1": {"epochs": 60}, "phase6": {"epochs": 15}},
               "validation": {"ckplus": {"emotion": acc(0.949, 156)},
                              "fer2013_publictest": {"emotion": acc(0.686, 3579)}}}
    text = "\n".join(report.without_ckplus_section(w, bundled))
    assert "`python recipes/train_pretrained.py --without-ckplus --teacher none --no-readout " \
           "--epochs 20 --phase6-epochs 0`" in text
    assert "44,845 images (utkface 16,284, fer2013 28,561)" in text and "45 min" in text
    assert "| CK+, all faces (none seen) | emotion | 61.0 % | 60.0 % | 927 |" in text
    assert "| UTKFace hold-out | age in years (mean absolute error) | 5.01 years |  | 2,742 |" \
        in text
    assert "94.9 % on CK+'s 156 hold-out faces" in text
    assert "20 epochs in all (phase1; the bundled network trained 75 epochs: emotion 68.6 % " \
           "on PublicTest)" in text
    assert "Happy 97.0 % (n=207), Sad 25.0 % (n=4). The classes it mostly misses, and its " \
           "most frequent wrong answer: Sad as Neutral 2 of 4" in text


def test_report_compares_the_distillation_arms_when_both_ran():
    report = _load("research", "report")

    def row(arm, e, g, a, c=0.5):
        return {"arm": arm, "emotion": e, "gender": g, "age": a, "ckplus_emotion": c,
                "emotion_ferplus_majority": 0.6, "train_minutes": 12.0}

    nl = {"epochs": 5, "teacher_weight": 0.5, "years_sigma": 3.0,
          "rows": [row("distillation", 0.56, 0.89, 0.63),
                   row("distillation, teacher v7", 0.57, 0.88, 0.63)]}
    text = "\n".join(report.next_model_section(None, nl))
    assert "| distillation, teacher v6 (bundled then) | 56.0 % |" in text
    assert "Distilling every face" not in text  # its arm has not run
    nl["rows"].append(row("distillation of every face, teacher v7", 0.59, 0.88, 0.62, 0.55))
    text = "\n".join(report.next_model_section(None, nl))
    assert "both with v7 as the teacher: emotion +2.0 points, gender +0.0 points, age group " \
           "-1.0 points, CK+ +5.0 points. v7 as the teacher against v6: emotion +1.0 points, " \
           "gender -1.0 points, age group +0.0 points." in text


@pytest.mark.slow
@pytest.mark.shared_data
@needs_shared
def test_next_model_levers_quick_runs_the_distillation_and_no_ckplus_arms(tmp_path,
                                                                         monkeypatch):
    """The two arms with v7 as the teacher (missing tasks only, and every face) and the arm
    without CK+ train and write their rows; the JSON is marked quick."""
    import json

    arms = ["distillation, teacher v7", "distillation of every face, teacher v7",
            "original labels, no CK+"]
    _run_quick("next_model_levers", monkeypatch, tmp_path, "--data-dir", SHARED, "--arms", *arms)
    result = json.loads((tmp_path / "next_model_levers_quick.json").read_text())
    assert result["quick"] is True and [r["arm"] for r in result["rows"]] == arms
    for r in result["rows"]:
        assert r["epochs"] == 1 and 0 <= r["emotion"] <= 1 and 0 <= r["gender"] <= 1
    # Without CK+, every CK+ face with one of the seven emotions is scored: all 927.
    assert result["rows"][2]["ckplus_all_faces"] == 927


def test_every_face_targets_mix_a_label_with_the_teachers_view():
    """The every-face arm: labelled faces learn the mean of their label and the teacher's
    probabilities, unlabelled ones the teacher's alone."""
    import pandas as pd

    levers = _load("research", "next_model_levers")

    class Teacher:
        tasks_ = ["gender", "age"]
        classes_ = [np.array(["Female", "Male"]), np.array(["Young", "Old"])]

        def predict_proba(self, X):
            return [np.tile([0.2, 0.8], (len(X), 1)), np.tile([0.6, 0.4], (len(X), 1))]

    y = pd.DataFrame({"gender": ["Female", None, "Male"], "age": [None, "Old", "Young"]})
    before = y.copy()
    out = levers.every_face_targets(Teacher(), np.zeros((3, 4, 4)), y, ["gender", "age"])
    np.testing.assert_allclose(out["gender"], [[0.6, 0.4], [0.2, 0.8], [0.1, 0.9]])
    np.testing.assert_allclose(out["age"], [[0.6, 0.4], [0.3, 0.7], [0.8, 0.2]])
    pd.testing.assert_frame_equal(y, before)  # the caller's labels untouched
