"""The recipe that builds the bundled model: its options, resume, averaging, and the model card it writes."""

import os

import numpy as np
import pytest

from .conftest import load_script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
BUNDLED = os.path.join(ROOT, "mtlfaces", "models", "pretrained.mtlfaces")
needs_shared = pytest.mark.skipif(not os.path.isdir(SHARED), reason="../shared/data not present")


def test_recipe_arrays_round_trip_losslessly(tmp_path, monkeypatch):
    """The recipe's --export-arrays / --arrays path gives back the same faces and labels."""
    import pandas as pd

    recipe = load_script("recipes", "train_pretrained")
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
    # In parts (to carry one at a time), several files per dataset, read from one folder.
    monkeypatch.setattr(recipe, "CHUNK_FACES", 4)  # 6 faces: two files per dataset
    parts = tmp_path / "parts"
    recipe.export_arrays(data, str(parts), parts=2)
    assert sorted(p.name for p in parts.iterdir()) == ["part1", "part2"]
    assert all(list((parts / p).iterdir()) for p in ("part1", "part2"))
    back = recipe.read_arrays(str(parts), 48)
    for name, (X, _) in data.items():
        np.testing.assert_array_equal(back[name][0], X)
    # A part left behind is named, not read as a smaller dataset.
    lost = next(parts.rglob("fer2013-002-of-002.png"))
    lost.unlink()
    with pytest.raises(ValueError, match="fer2013-002-of-002.png is missing"):
        recipe.read_arrays(str(parts), 48)


@pytest.fixture(scope="session")
def recipe_cache(tmp_path_factory):
    """One cache of decoded datasets and descriptors for every quick recipe run (the recipe's
    own --cache-dir): the first run decodes the archives, the others read the arrays."""
    return str(tmp_path_factory.mktemp("recipe-cache"))


def _run_recipe_quick(tmp_path, cache, *args):
    """The recipe's quick mode into tmp_path: (recipe module, results JSON, model path)."""
    import json

    recipe = load_script("recipes", "train_pretrained")
    out = tmp_path / "m.mtlfaces"
    assert recipe.main(["--quick", "--data-dir", SHARED, "--out", str(out),
                        "--results", str(tmp_path / "val.json"),
                        "--checkpoint-dir", str(tmp_path / "ck"),
                        "--cache-dir", cache, *args]) == 0
    return recipe, json.loads((tmp_path / "val_quick.json").read_text()), out


@pytest.mark.slow
@pytest.mark.shared_data
@needs_shared
def test_recipe_quick_trains_validates_and_saves(tmp_path, recipe_cache):
    from mtlfaces import load_model

    # Every phase of the recipe on a small trunk (the bundled one's is tested by the phase-5
    # and phase-6 runs that continue the bundled model).
    recipe, report, out = _run_recipe_quick(tmp_path, recipe_cache, "--schedule", "v6",
                                            "--filters", "8", "16",
                                            "--dense-units", "16")
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
    recipe = load_script("recipes", "train_pretrained")
    with pytest.raises(SystemExit) as exc:
        recipe.main(["--data-dir", str(tmp_path), "--quick", "--schedule", "v6"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'UTKFace.tar.gz'}, which is not there" in err and "--no-readout" in err


@pytest.mark.slow
@pytest.mark.shared_data
@needs_shared
def test_recipe_quick_phase5_continues_a_model_and_averages_with_its_start(tmp_path, recipe_cache):
    recipe, report, _ = _run_recipe_quick(tmp_path, recipe_cache, "--continue-from", BUNDLED,
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
def test_recipe_quick_phase6_alone_continues_a_model_without_averaging(tmp_path, recipe_cache):
    """``--from-phase 6`` on a saved model (how the sixth bundled model was made from the
    fifth): phase 6 alone, with mixup, and no average (one end only)."""
    from mtlfaces import load_model

    recipe, report, out = _run_recipe_quick(tmp_path, recipe_cache, "--continue-from", BUNDLED,
                                            "--from-phase", "6", "--no-readout")
    assert list(report["phases"]) == ["phase6"]
    assert report["phases"]["phase6"]["random_state"] == recipe.RECIPE["random_state"]
    assert load_model(out).mixup == recipe.PHASE6["mixup"]


@pytest.mark.slow  # scores the bundled model on the datasets' quick split (about 10 s)
@pytest.mark.shared_data
@needs_shared
def test_recipe_validate_reports_a_saved_model_without_training(tmp_path, recipe_cache):
    import json

    recipe = load_script("recipes", "train_pretrained")
    results = tmp_path / "v.json"
    assert recipe.main(["--quick", "--data-dir", SHARED, "--cache-dir", recipe_cache,
                        "--validate", BUNDLED, "--results", str(results)]) == 0
    report = json.loads((tmp_path / "v_quick.json").read_text())
    assert report["model"] == "mtlfaces/models/pretrained.mtlfaces" and report["quick"]
    # The bundled model's Keras network's answers on the same quick split, counted here
    # (--validate scores the network, not the file's 8-bit copy).
    from mtlfaces import load_model

    _, val = recipe.load_splits(SHARED, 48, recipe_cache, limit=recipe.QUICK_LIMIT)
    X, y = val["fer2013_publictest"]
    est = load_model(BUNDLED).set_params(inference="keras")
    answers = est.predict(X)[:, est.tasks_.index("emotion")]
    assert report["validation_summary"]["emotion"] == pytest.approx(
        np.mean(answers.astype(str) == y["emotion"].astype(str).to_numpy()))
    assert report["validation_summary"]["gender"] > 0.85  # the bundled model, on real faces
    assert not (tmp_path / "ck").exists() and not os.path.exists(results)


def test_recipe_validate_names_a_missing_model_and_goes_alone(tmp_path, capsys):
    recipe = load_script("recipes", "train_pretrained")
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

    recipe = load_script("recipes", "train_pretrained")
    monkeypatch.setattr(recipe, "QUICK_EPOCHS", 2)
    make_callbacks = recipe.phase_callbacks
    seen = []  # (phase, optimizer step at the start, epochs run) of each phase trained
    stop_after = []  # (phase, epoch) at whose end the run stops

    class Stopped(Exception):
        pass

    def callbacks(name, checkpoint_dir, progress, done, keep_best):
        class Probe(keras.callbacks.Callback):  # after the backup has restored the state
            def on_train_begin(self, logs=None):
                seen.append((name, int(self.model.optimizer.iterations), []))

            def on_epoch_begin(self, epoch, logs=None):
                seen[-1][2].append(epoch)

            def on_epoch_end(self, epoch, logs=None):
                if (name, epoch) in stop_after:
                    raise Stopped
        return make_callbacks(name, checkpoint_dir, progress, done, keep_best) + [Probe()]

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
def test_recipe_resumes_a_stopped_phase_where_it_stopped(tmp_path, recipe_cache, monkeypatch):
    """Runs stopped after an epoch go on with the next: the optimizer's step (the
    schedule) restored, the next phase from its own first epoch, finished phases kept,
    every epoch in the logs once."""
    import json

    recipe, run, seen = _stoppable_recipe(monkeypatch)
    ck = tmp_path / "ck"
    args = ["--quick", "--schedule", "v6", "--data-dir", SHARED,
            "--out", str(tmp_path / "m.mtlfaces"),
            "--results", str(tmp_path / "val.json"), "--checkpoint-dir", str(ck),
            "--cache-dir", recipe_cache, "--phase3-epochs", "0",
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
def test_recipe_resumed_in_phase6_continues_from_the_average(tmp_path, recipe_cache, monkeypatch):
    """A run stopped in phase 6 goes on from its backup; the average it started from is
    recorded once, before phase 6, in the results as in the stopped run's progress."""
    import json

    recipe, run, _ = _stoppable_recipe(monkeypatch)
    ck = tmp_path / "ck"
    args = ["--quick", "--schedule", "v6", "--data-dir", SHARED,
            "--out", str(tmp_path / "m.mtlfaces"),
            "--results", str(tmp_path / "val.json"), "--checkpoint-dir", str(ck),
            "--cache-dir", recipe_cache, "--restart-epochs", "0",
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
    recipe = load_script("recipes", "train_pretrained")
    with pytest.raises(SystemExit) as exc:
        recipe.main(["--resume", "--checkpoint-dir", str(tmp_path)])
    assert exc.value.code == 2
    assert f"nothing to resume in {tmp_path}" in capsys.readouterr().err


def test_recipe_resume_refuses_arguments_the_run_was_not_started_with(tmp_path, capsys):
    import json

    recipe = load_script("recipes", "train_pretrained")
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


def test_the_default_schedule_is_the_bundled_networks_and_v6_is_its_teachers():
    """Without options the recipe trains what the bundled network was trained with (its
    recorded options); --schedule v6 the teacher's schedule; a given option wins."""
    import json

    recipe = load_script("recipes", "train_pretrained")

    def parsed(*argv):
        return vars(recipe.with_schedule(recipe.build_parser().parse_args(list(argv))))

    with open(os.path.join(ROOT, "recipes", "results", "pretrained_validation.json")) as fh:
        shipped = json.load(fh)["options"]
    default = parsed()
    assert default["schedule"] == "v7"
    for key in recipe.SCHEDULES["v7"]:
        assert default[key] == shipped[key], key
    v6 = parsed("--schedule", "v6")
    assert (v6["epochs"], v6["restart_epochs"], v6["phase3_epochs"], v6["phase4_epochs"],
            v6["phase1_keep"], v6["age_years"]) == (32, 16, 20, 20, "best", False)
    given = parsed("--epochs", "5", "--no-age-years", "--phase1-keep", "best")
    assert (given["epochs"], given["age_years"], given["phase1_keep"]) == (5, False, "best")
    assert given["phase1_augment"] == "sharp"  # the rest still the schedule's


def test_the_default_schedule_asks_for_its_teacher_before_any_work(tmp_path, capsys):
    recipe = load_script("recipes", "train_pretrained")
    with pytest.raises(SystemExit) as exc:
        recipe.main(["--quick", "--data-dir", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--teacher FILE" in err and "--schedule v6" in err and recipe.V6_COMMIT in err
    missing = str(tmp_path / "v6.mtlfaces")
    with pytest.raises(SystemExit):
        recipe.main(["--quick", "--data-dir", str(tmp_path), "--teacher", missing])
    assert f"--teacher {missing}: no such model file" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing was written


def test_continuing_a_model_keeps_its_years_head_or_says_so(tmp_path, capsys):
    recipe = load_script("recipes", "train_pretrained")
    with pytest.raises(SystemExit) as exc:  # the bundled model has the head; v6 trains none
        recipe.main(["--continue-from", BUNDLED, "--schedule", "v6", "--no-readout",
                     "--data-dir", str(tmp_path), "--checkpoint-dir", str(tmp_path / "ck")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"--continue-from {BUNDLED} has the {recipe.YEARS_TASK} head" in err
    assert "with --age-years (--schedule v6 sets --no-age-years)" in err
    assert not list(tmp_path.iterdir())


def test_recipe_architecture_options_do_not_go_with_continue_from(capsys):
    recipe = load_script("recipes", "train_pretrained")
    with pytest.raises(SystemExit) as exc:
        recipe.main(["--continue-from", BUNDLED, "--filters", "8", "16"])
    assert exc.value.code == 2
    assert "--filters does not go with it" in capsys.readouterr().err


@pytest.mark.shared_data
@needs_shared
def test_recipe_average_of_a_model_with_itself_is_that_model(tmp_path, recipe_cache):
    import json

    from mtlfaces import load_model

    recipe = load_script("recipes", "train_pretrained")
    out, results = tmp_path / "avg.mtlfaces", tmp_path / "avg.json"
    assert recipe.main(["--quick", "--data-dir", SHARED, "--cache-dir", recipe_cache,
                        "--out", str(out), "--results", str(results),
                        "--average-models", BUNDLED, BUNDLED]) == 0
    report = json.loads((tmp_path / "avg_quick.json").read_text())
    # The files are recorded by their path in the repository, not a name every run shares.
    assert report["average_of"] == ["mtlfaces/models/pretrained.mtlfaces"] * 2
    bundled, averaged = load_model(BUNDLED), load_model(out)
    for a, b in zip(bundled.model_.get_weights(), averaged.model_.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    # The bundled file's 8-bit copy is of one model: the average is saved without it.
    assert getattr(bundled, "int8_", None) is not None
    assert getattr(averaged, "int8_", None) is None


def test_recipe_average_models_needs_two(capsys):
    recipe = load_script("recipes", "train_pretrained")
    with pytest.raises(SystemExit) as exc:
        recipe.main(["--average-models", "only.mtlfaces"])
    assert exc.value.code == 2
    assert "--average-models needs two or more models" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:.*optimizer steps")  # one epoch of 64 images, on purpose
def test_recipe_averages_networks_by_layer_name(shapes):
    from mtlfaces import MultiTaskFaceClassifier

    from .conftest import TINY

    recipe = load_script("recipes", "train_pretrained")
    X, y = shapes[0][:64], shapes[1].iloc[:64]  # the weights need not be good, only different
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



def test_model_card_block_is_what_the_recipe_script_writes_from_the_committed_results():
    card = load_script("recipes", "model_card")
    assert card.committed_block() == card.current_block()


def test_readme_example_block_is_what_mtlfaces_predict_prints():
    card = load_script("recipes", "model_card")
    assert card.committed_block(card.README, card.EXAMPLE) == card.current_example()


@pytest.mark.slow
@pytest.mark.shared_data
@needs_shared
def test_recipe_next_model_targets_and_a_packed_run_resumed(tmp_path, recipe_cache, monkeypatch):
    """Issue #32's options (FER+ votes, a teacher, the age_years head, phase 1 sharp and
    kept at its last epoch) train end to end; a run stopped in phase 1, packed into one
    file and its folder deleted, goes on from the file."""
    import json
    import shutil

    from mtlfaces import load_model

    recipe, run, seen = _stoppable_recipe(monkeypatch)
    ck = tmp_path / "ck"
    args = ["--quick", "--data-dir", SHARED,
            "--out", str(tmp_path / "m.mtlfaces"),
            "--results", str(tmp_path / "val.json"), "--checkpoint-dir", str(ck),
            "--cache-dir", recipe_cache, "--restart-epochs", "0", "--phase3-epochs", "0",
            "--phase4-epochs", "0", "--phase6-epochs", "0", "--filters", "8", "16",
            "--dense-units", "16", "--no-readout", "--emotion-targets", "ferplus",
            "--teacher", "bundled"]  # the default schedule's: years head, phase 1 sharp, last
    assert run(args, stop=("phase1", 0)) == [("phase1", [0])]
    packed = tmp_path / "run.npz"
    assert recipe.main(["--pack-checkpoint", str(packed), "--checkpoint-dir", str(ck)]) == 0
    shutil.rmtree(ck)
    assert run(["--resume", "--unpack-checkpoint", str(packed),
                "--checkpoint-dir", str(ck)]) == [("phase1", [1])]
    steps = seen[0][1]
    assert steps > 0  # the optimizer's step came back from the file
    report = json.loads((tmp_path / "val_quick.json").read_text())
    summary = report["phases"]["phase1"]["validation_summary"]
    assert 0 < summary["age_mae_years"] < 60
    assert report["validation"]["utkface"]["age_years"]["n"] > 0
    assert report["recipe"]["augment"] == recipe.PHASE3["augment"]
    assert report["recipe"]["soft_target_weight"] == recipe.TEACHER_WEIGHT
    model = load_model(tmp_path / "m.mtlfaces")
    assert model.tasks_ == ["age", "gender", "emotion", "age_years"]
    years = model.classes_[3].astype(int)
    assert years.min() >= 1 and years.max() == 90
    # A packed file goes with --resume only, and not over a run.
    with pytest.raises(SystemExit):
        recipe.main(["--unpack-checkpoint", str(packed), "--checkpoint-dir", str(ck)])
    with pytest.raises(SystemExit):
        recipe.main(["--resume", "--unpack-checkpoint", str(packed), "--checkpoint-dir",
                     str(ck)])


def test_age_years_targets_spread_each_age_over_the_heads_years():
    recipe = load_script("recipes", "train_pretrained")
    classes = list(range(1, 91))
    soft = recipe.years_distribution([30, None, 104, 1], 3.0, classes)
    np.testing.assert_allclose(soft[[0, 2, 3]].sum(axis=1), 1.0, rtol=1e-6)
    assert not soft[1].any()
    assert classes[int(np.argmax(soft[0]))] == 30 and soft[0][28] == pytest.approx(soft[0][30])
    assert classes[int(np.argmax(soft[2]))] == 90  # older than 90: the last year
    assert recipe.monitored_years([104, 33, None, 0.4], [1, 30, 35, 90]).tolist() == \
        [90, 35, None, 1]


def test_teacher_targets_fill_only_the_labels_a_face_lacks():
    import pandas as pd

    recipe = load_script("recipes", "train_pretrained")

    class Teacher:
        tasks_ = ["gender", "emotion"]

        def predict_proba(self, X):
            n = len(X)
            return [np.tile([0.3, 0.7], (n, 1)), np.full((n, 7), 1 / 7)]

    y = pd.DataFrame({"gender": ["Male", None, None], "emotion": [None, "Happy", None],
                      "age": [None, None, None]})
    out = recipe.teacher_targets(Teacher(), np.zeros((3, 4, 4)), y, ["age", "gender", "emotion"])
    assert sorted(out) == ["emotion", "gender"]  # the teacher has no age head
    np.testing.assert_allclose(out["gender"], [[0, 0], [0.3, 0.7], [0.3, 0.7]])
    np.testing.assert_allclose(out["emotion"].sum(axis=1), [1, 0, 1], rtol=1e-6)


def test_without_ckplus_trains_on_no_ckplus_face_and_scores_all_of_them():
    import pandas as pd

    recipe = load_script("recipes", "train_pretrained")
    X = np.arange(5)[:, None, None] * np.ones((5, 2, 2))
    y = pd.DataFrame({"source": ["utkface", "ckplus", "fer2013", "ckplus", "utkface"],
                      "emotion": [None, "Happy", "Sad", "Fear", None]})
    val = {"ckplus": (np.full((1, 2, 2), 9.0), pd.DataFrame({"source": ["ckplus"],
                                                             "emotion": ["Angry"]})),
           "utkface": (np.zeros((1, 2, 2)), pd.DataFrame({"source": ["utkface"]}))}
    (Xt, yt), out = recipe.without_ckplus((X, y), val)
    assert Xt[:, 0, 0].tolist() == [0, 2, 4] and "ckplus" not in set(yt["source"])
    assert yt.index.tolist() == [0, 1, 2]
    Xc, yc = out["ckplus"]
    assert Xc[:, 0, 0].tolist() == [1, 3, 9]
    assert yc["emotion"].tolist() == ["Happy", "Fear", "Angry"]
    assert out["utkface"] is val["utkface"] and len(val["ckplus"][0]) == 1  # val not changed


def test_the_8bit_copy_is_refused_when_it_loses_accuracy_or_adds_years_of_error():
    quantize = load_script("recipes", "quantize")
    keras = {"gender (UTKFace)": 0.93, "age MAE years (UTKFace)": 5.00}
    loss, ok = quantize.losses(keras, {"gender (UTKFace)": 0.929,
                                       "age MAE years (UTKFace)": 5.04})
    assert ok and loss["age MAE years (UTKFace)"] == pytest.approx(0.04)
    assert loss["gender (UTKFace)"] == pytest.approx(0.001)
    # A lower error is no loss; a higher one past 0.05 years is.
    assert quantize.losses(keras, {"gender (UTKFace)": 0.93,
                                   "age MAE years (UTKFace)": 4.0})[1]
    assert not quantize.losses(keras, {"gender (UTKFace)": 0.93,
                                       "age MAE years (UTKFace)": 5.06})[1]
    assert not quantize.losses(keras, {"gender (UTKFace)": 0.925,
                                       "age MAE years (UTKFace)": 5.0})[1]
