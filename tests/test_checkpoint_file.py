"""recipes/checkpoint_file.py: a stopped training run packed into one file and resumed."""

import json
import os

import numpy as np
import pytest

from .conftest import load_script

checkpoint_file = load_script("recipes", "checkpoint_file")


def _network():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.BatchNormalization(),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(
        keras.optimizers.schedules.CosineDecay(1e-2, 40)), loss="sparse_categorical_crossentropy")
    return model


def _data():
    rng = np.random.RandomState(0)
    return rng.rand(80, 6).astype(np.float32), rng.randint(0, 3, 80)


def _stopped_run(folder, epochs=2):
    """A recipe-shaped checkpoint folder: arguments, progress, a log, phase 1's backup after
    ``epochs`` epochs."""
    import keras

    os.makedirs(folder)
    (folder / "run.json").write_text(json.dumps({"args": {"phase1_keep": "last"}}))
    (folder / "progress.json").write_text(json.dumps({"phases": {}, "epoch_seconds": {}}))
    (folder / "phase1_log.csv").write_text("epoch,loss\n0,1.1\n1,1.0\n")
    model = _network()
    X, y = _data()
    model.fit(X, y, epochs=epochs, batch_size=20, verbose=0, callbacks=[
        keras.callbacks.BackupAndRestore(str(folder / "phase1_backup"), delete_checkpoint=False),
        keras.callbacks.ModelCheckpoint(str(folder / "phase1.weights.h5"),
                                        save_weights_only=True)])
    return model


def _h5(path):
    import h5py

    out = {}
    with h5py.File(path, "r") as h5:
        h5.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                      if isinstance(obj, h5py.Dataset) else None)
    return out


def test_a_packed_run_unpacks_to_what_resume_reads(tmp_path):
    run = tmp_path / "run"
    _stopped_run(run)
    packed = tmp_path / "checkpoint.npz"
    size = checkpoint_file.pack(str(run), str(packed))
    assert size == packed.stat().st_size > 0
    again = tmp_path / "again"
    written = checkpoint_file.unpack(str(packed), str(again))
    # phase1.weights.h5 is left out: phase 1 keeps its last epoch, rewritten after the next.
    assert sorted(written) == ["phase1_backup/latest.weights.h5",
                               "phase1_backup/training_metadata.json", "phase1_log.csv",
                               "progress.json", "run.json"]
    for name in ("run.json", "progress.json", "phase1_log.csv",
                 "phase1_backup/training_metadata.json"):
        assert (again / name).read_bytes() == (run / name).read_bytes()
    before, after = (_h5(d / "phase1_backup" / "latest.weights.h5") for d in (run, again))
    assert sorted(before) == sorted(after)
    moments = 0
    for name, value in before.items():
        if name.startswith("optimizer/") and np.ndim(value) > 0:
            # Adam's moments, rounded to bfloat16: within 2**-8 of each value.
            np.testing.assert_allclose(after[name], value, rtol=2 ** -8, atol=0)
            moments += not np.array_equal(after[name], value)
        else:  # the weights and the step count: exact
            np.testing.assert_array_equal(after[name], value)
            assert after[name].dtype == value.dtype
    assert moments > 0  # the rounding happened (the file is smaller for it)


def test_keras_resumes_from_an_unpacked_backup(tmp_path):
    import keras

    run = tmp_path / "run"
    stopped = _stopped_run(run, epochs=2)
    checkpoint_file.pack(str(run), str(tmp_path / "c.npz"))
    checkpoint_file.unpack(str(tmp_path / "c.npz"), str(tmp_path / "again"))
    model = _network()
    epochs = []
    X, y = _data()
    model.fit(X, y, epochs=3, batch_size=20, verbose=0, callbacks=[
        keras.callbacks.BackupAndRestore(str(tmp_path / "again" / "phase1_backup")),
        keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: epochs.append(e))])
    assert epochs == [2]  # the stopped run's two epochs are not trained again
    assert int(model.optimizer.iterations) == int(stopped.optimizer.iterations) + 4


def test_phase1_keeping_its_best_epoch_packs_the_best_so_far(tmp_path):
    run = tmp_path / "run"
    _stopped_run(run)
    (run / "run.json").write_text(json.dumps({"args": {"phase1_keep": "best"}}))
    checkpoint_file.pack(str(run), str(tmp_path / "c.npz"))
    written = checkpoint_file.unpack(str(tmp_path / "c.npz"), str(tmp_path / "again"))
    assert "phase1.weights.h5" in written


def test_unpack_refuses_to_write_over_a_run_and_files_that_are_not_packed_runs(tmp_path):
    run = tmp_path / "run"
    _stopped_run(run)
    packed = tmp_path / "c.npz"
    checkpoint_file.pack(str(run), str(packed))
    with pytest.raises(ValueError, match="already holds a run"):
        checkpoint_file.unpack(str(packed), str(run))
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(ValueError, match="not a packed training run"):
        checkpoint_file.unpack(str(other), str(tmp_path / "x"))
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a packed training run"):
        checkpoint_file.unpack(str(tmp_path / "text.npz"), str(tmp_path / "y"))
    # A member whose path leaves the folder is refused, and nothing is written outside it.
    manifest = {"format": checkpoint_file.FORMAT,
                "files": [{"path": "../escaped.json", "kind": "bytes"}]}
    np.savez(tmp_path / "evil.npz", f0=np.frombuffer(b"{}", np.uint8),
             manifest=np.frombuffer(json.dumps(manifest).encode(), np.uint8))
    with pytest.raises(ValueError, match="outside the run's folder"):
        checkpoint_file.unpack(str(tmp_path / "evil.npz"), str(tmp_path / "z"))
    assert not (tmp_path / "escaped.json").exists()


def test_pack_needs_a_recipe_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no recipe run"):
        checkpoint_file.pack(str(tmp_path), str(tmp_path / "c.npz"))
    assert not (tmp_path / "c.npz").exists()


def test_bfloat16_rounding_is_to_nearest():
    step = 2 ** -7  # bfloat16's spacing between 1 and 2
    values = np.array([1.0, 1 + step / 4, 1 + 3 * step / 4, 1 + step / 2, 1 + 3 * step / 2,
                       -2.5e-12, 3.0e30, 0.0], np.float32)
    back = checkpoint_file._from_bf16_bits(checkpoint_file._bf16_bits(values))
    np.testing.assert_allclose(back, values, rtol=2 ** -8)
    assert back[1] == 1.0 and back[2] == 1 + step  # to the nearest
    assert back[3] == 1.0 and back[4] == 1 + 2 * step  # halfway: to the even one
