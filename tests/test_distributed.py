"""mtlfaces.distributed on a real LocalCluster of two worker processes (loopback only).

One cluster serves the whole file: its workers start TensorFlow once each.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")
pytest.importorskip("pyarrow")

from mtlfaces import distributed as mdist  # noqa: E402
from mtlfaces.pipeline import FIELDS  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with mdist.local_cluster(2) as c:
        yield c


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut):
    """A folder of real photos (the astronaut at several sizes), one without a face, one
    corrupt file, and a video."""
    import cv2

    folder = tmp_path_factory.mktemp("photos")
    bgr = cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR)
    for i, scale in enumerate((0.5, 0.6, 0.7, 0.8, 1.0)):
        cv2.imwrite(str(folder / f"a{i}.jpg"), cv2.resize(bgr, None, fx=scale, fy=scale))
    cv2.imwrite(str(folder / "b_blank.png"), np.full((120, 160, 3), 90, np.uint8))
    (folder / "c_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    writer = cv2.VideoWriter(str(folder / "d_clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10,
                             (512, 512))
    for _ in range(3):
        writer.write(bgr)
    writer.release()
    return folder


def _reference(sources):
    """The single-process answer, as the Parquet columns hold it."""
    import mtlfaces

    frame = mtlfaces.analyze(sources, status_rows=True, on_error="record", as_frame=True)
    return frame


def _same_rows(got, ref):
    assert list(got["source"]) == list(ref["source"])
    assert list(got["status"]) == list(ref["status"])
    for column in ("face", "left", "top", "right", "bottom", "frame", "track"):
        np.testing.assert_array_equal(got[column].astype("float64").to_numpy(),
                                      ref[column].astype("float64").to_numpy(), err_msg=column)
    for task in ("age", "gender", "emotion"):
        assert [None if pd.isna(v) else str(v) for v in got[task]] == \
               [None if pd.isna(v) else str(v) for v in ref[task]], task
    probs = [c for c in ref.columns if "." in c]
    assert probs and set(probs) <= set(got.columns)
    np.testing.assert_allclose(got[probs].to_numpy(float), ref[probs].to_numpy(float),
                               atol=1e-3, equal_nan=True)
    assert [str(e) if isinstance(e, str) else None for e in got["error"]] == \
           [str(e) if isinstance(e, str) else None for e in ref["error"]]


def test_a_run_on_two_worker_processes_equals_the_single_process_run(client, photos,
                                                                      tmp_path):
    sources = [str(photos), str(photos / "missing.jpg")]
    manifest = mdist.analyze_to_parquet(sources, tmp_path / "out", client=client,
                                        partition_size=2)
    got = mdist.read_results(tmp_path / "out")
    _same_rows(got, _reference(sources))
    assert manifest["complete"] and manifest["inputs"] == 9
    statuses = got["status"].value_counts().to_dict()
    assert statuses["no_face"] == 1 and statuses["error"] == 2 and statuses["ok"] >= 9
    assert manifest["errors"] == 2 and manifest["faces"] == statuses["ok"]
    errors = mdist.error_rows(tmp_path / "out")
    assert [source for source, _ in errors] == [str(photos / "c_corrupt.jpg"),
                                                str(photos / "missing.jpg")]
    assert "not a readable image" in errors[0][1] and mdist.error_rows(tmp_path / "out", 1) == \
        errors[:1]
    # The partitions ran on both worker processes, each of which loaded the model once.
    assert len({p["worker"] for p in manifest["partitions"]}) == 2
    stats = client.run(mdist.worker_stats)
    assert all(s["model_loads"] == 1 for s in stats.values()), stats
    assert sum(s["partitions"] for s in stats.values()) >= len(manifest["partitions"])
    # Files: one Parquet file per partition, the manifest, nothing partial.
    names = sorted(os.listdir(tmp_path / "out"))
    assert names == ["manifest.json"] + [f"part-{i:05d}.parquet" for i in range(5)]
    # The same through the scheduler's address, as --scheduler gives it, in other partitions.
    again = mdist.analyze_to_parquet(sources, tmp_path / "again", partition_size=4,
                                     scheduler=client.scheduler.address)
    assert again["partition_size"] == 4 and len(again["partitions"]) == 3
    _same_rows(mdist.read_results(tmp_path / "again"), got)
    # Workers use their share of the cores: one TensorFlow thread each.
    assert set(client.run(lambda: __import__("tensorflow").config.threading
                          .get_intra_op_parallelism_threads()).values()) == {1}


def test_a_killed_run_resumes_and_processes_only_the_rest(client, photos, tmp_path):
    out = tmp_path / "out"
    images = sorted(str(p) for p in photos.glob("a*.jpg")) * 4  # 20 inputs
    command = [sys.executable, "-m", "mtlfaces.cli", "predict", *images, "--parquet",
               str(out), "--workers", "1", "--partition-size", "2", "--no-descriptor", "-q"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            done = list(out.glob("part-*.parquet")) if out.exists() else []
            if len(done) >= 2 or proc.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its cluster, mid-run
        proc.wait()
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert 2 <= len(kept) < 10, (len(kept), proc.stderr.read().decode()[-2000:])
    assert not mdist.read_manifest(out)["complete"]
    with pytest.raises(mdist.DistributedError, match="unfinished"):
        mdist.read_results(out)
    manifest = mdist.analyze_to_parquet(images, out, client=client, partition_size=2,
                                        readout=False)
    assert manifest["complete"]
    resumed = {p["file"] for p in manifest["partitions"] if p.get("resumed")}
    assert resumed == set(kept)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")
            if p.name in kept} == kept  # untouched
    ran = [p for p in manifest["partitions"] if not p.get("resumed")]
    assert len(ran) == 10 - len(kept)
    _same_rows(mdist.read_results(out), _reference_without_readout(images))
    # The same call again has nothing left to do, and needs no cluster.
    again = mdist.analyze_to_parquet(images, out, partition_size=2, readout=False)
    assert all(p.get("resumed") for p in again["partitions"])


def _reference_without_readout(sources):
    import mtlfaces

    return mtlfaces.analyze(sources, readout=False, status_rows=True, on_error="record",
                            as_frame=True)


def test_a_dask_dataframe_column_of_paths_and_bytes(client, photos):
    import dask
    import dask.dataframe as dd

    astronaut = photos / "a4.jpg"
    frame = pd.DataFrame({"image": [str(astronaut), astronaut.read_bytes(),
                                    str(photos / "b_blank.png"), b"not an image", 7]},
                         index=pd.Index([10, 11, 12, 13, 14], name="id"))
    # Dask turns object columns into Arrow strings by default, which bytes are not.
    with dask.config.set({"dataframe.convert-string": False}):
        column = dd.from_pandas(frame, npartitions=2)["image"]
    lazy = mdist.analyze_column(column)
    got = lazy.compute()
    assert list(got.columns) == list(lazy.columns)
    assert list(got.columns[:len(FIELDS)]) == FIELDS
    assert list(got.index.unique()) == [10, 11, 12, 13, 14]
    by_id = {i: got.loc[[i]] for i in got.index.unique()}
    path_row, bytes_row = by_id[10].iloc[0], by_id[11].iloc[0]
    assert path_row["status"] == bytes_row["status"] == "ok"
    for task in ("age", "gender", "emotion"):
        assert path_row[task] == bytes_row[task]
    assert bytes_row["source"] == "bytes[11]"
    assert list(by_id[12]["status"]) == ["no_face"]
    assert list(by_id[13]["status"]) == ["error"] and "not a readable image" in \
        by_id[13]["error"].iloc[0]
    assert "expected a path or the bytes" in by_id[14]["error"].iloc[0]


@pytest.mark.filterwarnings("ignore:Sending large graph")
def test_parallel_post_fit_classifies_a_dask_array_of_crops(client):
    import dask.array as da
    from dask_ml.wrappers import ParallelPostFit
    from skimage.data import lfw_subset
    from skimage.transform import resize

    import mtlfaces

    crops = np.stack([resize(x, (48, 48)) for x in lfw_subset()[:60]]).reshape(60, -1)
    model = mtlfaces.load_pretrained()
    expected = model.predict(crops)
    lazy = da.from_array(crops, chunks=(30, crops.shape[1]))
    # Each call sends the model to the blocks: two calls, two tasks.
    emotion = ParallelPostFit(mdist.SingleTask(model, "emotion"))
    labels = emotion.predict(lazy)
    assert isinstance(labels, da.Array)
    np.testing.assert_array_equal(labels.compute(), expected[:, model.tasks_.index("emotion")])
    age = model.tasks_.index("age")
    proba = ParallelPostFit(mdist.SingleTask(model, "age")).predict_proba(lazy).compute()
    np.testing.assert_allclose(proba, model.predict_proba(crops)[age], atol=1e-6)
    with pytest.raises(ValueError, match="not one of the estimator's tasks"):
        mdist.SingleTask(model, "mood").predict(crops)


def test_grid_search_runs_on_the_cluster_with_a_thread_per_worker(client, shapes):
    import joblib
    from distributed import get_task_stream
    from sklearn.model_selection import GridSearchCV, KFold

    from mtlfaces import MultiTaskFaceClassifier

    from .conftest import TINY

    X, y = shapes
    X, y = X[:240], y.iloc[:240]
    # Multi-task y (labels and missing values) cannot be stratified: plain KFold.
    search = dict(param_grid={"learning_rate": [1e-2]}, cv=KFold(2), refit=False,
                  error_score="raise")
    estimator = MultiTaskFaceClassifier(**{**TINY, "epochs": 4})
    with get_task_stream(client) as stream, joblib.parallel_backend("dask"):
        on_dask = GridSearchCV(estimator, n_jobs=2, **search).fit(X, y)
    workers = {t["worker"] for t in stream.data if "batch_of" in str(t["key"])
               or "fit_and_score" in str(t["key"])}
    assert len(workers) == 2, stream.data[:4]
    local = GridSearchCV(estimator, n_jobs=1, **search).fit(X, y)
    np.testing.assert_allclose(on_dask.cv_results_["mean_test_score"],
                               local.cv_results_["mean_test_score"], atol=0.05)


def test_a_folder_that_holds_another_run_or_other_files_is_refused(photos, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(mdist.DistributedError, match="not empty"):
        mdist.analyze_to_parquet([str(photos)], other)
    with pytest.raises(mdist.DistributedError, match="not part of a run"):
        mdist.analyze_to_parquet([str(photos)], other, overwrite=True)
    assert (other / "notes.txt").read_text() == "mine"
    run = tmp_path / "run"
    run.mkdir()
    (run / mdist.MANIFEST).write_text(json.dumps({
        "format": mdist.FORMAT, "format_version": 1, "model": "bundled", "options": {},
        "columns": [], "inputs_sha256": "0" * 64, "partition_size": 2}))
    with pytest.raises(mdist.DistributedError, match="other .*inputs"):
        mdist.analyze_to_parquet([str(photos)], run)
    with pytest.raises(ValueError, match="partition_size"):
        mdist.analyze_to_parquet([str(photos)], tmp_path / "new", partition_size=0)
    with pytest.raises(TypeError, match="colour"):
        mdist.analyze_column(pd.Series(["x"]), threshold=0.2, colour=True)


def test_the_distributed_route_has_the_analyzers_options_and_defaults():
    import inspect

    from mtlfaces import Analyzer

    wanted = {n: p.default for n, p in inspect.signature(Analyzer).parameters.items()
              if p.kind is inspect.Parameter.KEYWORD_ONLY}
    given = inspect.signature(mdist.analyze_to_parquet).parameters
    assert {n: given[n].default for n in wanted if n in given} == wanted


def test_the_command_line_says_which_options_go_together(tmp_path):
    from click.testing import CliRunner

    from mtlfaces.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["predict", "x.jpg", "--workers", "2"])
    assert result.exit_code == 2 and "--workers: only with --parquet DIR" in result.output
    result = runner.invoke(main, ["predict", "x.jpg", "--parquet", str(tmp_path / "o"),
                                  "--annotate", str(tmp_path / "a")])
    assert result.exit_code == 2 and "--annotate cannot go with --parquet" in result.output
    result = runner.invoke(main, ["predict", "x.jpg", "--parquet", str(tmp_path / "o"),
                                  "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])
    assert result.exit_code == 2 and "choose one of --workers" in result.output
    assert not (tmp_path / "o").exists()
