"""The user-facing benchmarks run (quick modes) and write what they print."""

import json
import os
import sys

import pytest

from .conftest import load_script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")
SHARED = os.path.join(ROOT, "..", "shared", "data")


def on_the_datasets(test):
    """A benchmark's run on the real datasets: opt-in (-m slow), skipped without them."""
    for mark in (pytest.mark.slow, pytest.mark.shared_data,
                 pytest.mark.skipif(not os.path.isdir(SHARED),
                                    reason="../shared/data not present")):
        test = mark(test)
    return test


def _bench(name, monkeypatch, tmp_path):
    if BENCH not in sys.path:
        sys.path.insert(0, BENCH)
    import common

    monkeypatch.setattr(common, "RESULTS", str(tmp_path))
    return load_script("benchmarks", name)


def _result(tmp_path, name):
    result = json.loads((tmp_path / f"{name}_quick.json").read_text())
    assert result["quick"] is True  # a quick run never passes for a published one
    return result


def test_classifier_benchmark_quick(tmp_path, monkeypatch, capsys):
    bench = _bench("bench_classifier", monkeypatch, tmp_path)
    assert bench.main(["--quick"]) == 0
    result = _result(tmp_path, "classifier")
    assert [r["batch"] for r in result["throughput"]] == [1, 8]
    assert all(r["faces_per_s"] > 0 and r["mirror_averaging"] for r in result["throughput"])
    assert result["fit_seconds_per_epoch"] > 0 and result["peak_rss_mb"] > 100
    assert [r["precision"].split()[0] for r in result["fit"]] == ["float32", "bfloat16"]
    assert all(r["images_per_s"] > 0 for r in result["fit"])
    from mtlfaces._hardware import bf16_instructions

    assert result["cpu_bf16_instructions"] == bf16_instructions()
    assert "faces_per_s" in capsys.readouterr().out


def test_pipeline_benchmark_quick(tmp_path, monkeypatch):
    bench = _bench("bench_pipeline", monkeypatch, tmp_path)
    assert bench.main(["--quick"]) == 0
    rows = {r["case"]: r for r in _result(tmp_path, "pipeline")["rows"]}
    on = rows["photo 512x512, 1 face, read-out on"]
    off = rows["photo 512x512, 1 face, read-out off"]
    assert on["ms"] > off["ms"] > 0  # the descriptor costs time
    assert rows["video 640x480, 1 face, detect every 3"]["per_s"] > 0


@on_the_datasets
def test_accuracy_benchmark_quick_goes_through_mtlfaces_evaluate(tmp_path, monkeypatch):
    bench = _bench("bench_accuracy", monkeypatch, tmp_path)
    assert bench.main(["--quick", "--data-dir", SHARED]) == 0
    rows = _result(tmp_path, "accuracy")["rows"]
    tasks = {(r["dataset"], r["task"]) for r in rows}
    assert {("UTKFace", "age"), ("UTKFace", "gender"), ("FER2013", "emotion")} <= tasks
    # The bundled model is far above chance on its own validation faces.
    gender = next(r for r in rows if r["task"] == "gender")
    assert gender["accuracy"] > 0.8 and gender["faces"] > 0
    years = next(r for r in rows if r["task"] == "age_years")  # the bundled model's 4th task
    assert 0 < years["mae_years"] < 10 and "accuracy" not in years


@pytest.mark.parametrize("script, result, where", [
    ("bench_small_data", "small_data", "DOCS"), ("bench_crops", "crops", "DOCS"),
    ("bench_speed", "speed", "DOCS"), ("bench_distributed", "distributed", "DOCS"),
    ("bench_pipeline", "pipeline", "DOCS"), ("bench_speed", "speed", "README"),
    ("bench_pipeline", "pipeline", "README")])
def test_each_generated_block_is_what_its_benchmark_writes(script, result, where):
    """The docs' tables and the README's lines are the committed full runs' output,
    rendered by the script."""
    bench = load_script("benchmarks", script)
    card = load_script("recipes", "model_card")
    with open(os.path.join(BENCH, "results", f"{result}.json")) as fh:
        data = json.load(fh)
    assert data["quick"] is False
    if where == "DOCS":
        path, markers, render = bench.DOCS, bench.MARKERS, bench.render
    else:
        path, markers, render = bench.README, bench.README_MARKERS, bench.render_summary
    assert card.committed_block(path, markers) == render(data)


@on_the_datasets
def test_crops_benchmark_quick(tmp_path, monkeypatch):
    bench = _bench("bench_crops", monkeypatch, tmp_path)
    bench.main(["--quick", "--data", SHARED])
    rows = {r["mode"]: r for r in _result(tmp_path, "crops")["rows"]}
    assert rows["crops"]["answered"] == 1.0
    assert rows["crops"]["answered"] >= rows["photo (retries: upsample 1, CNN)"]["answered"]


def test_the_served_headline_accuracy_is_what_the_recipe_measured():
    card = load_script("recipes", "model_card")
    with open(card.QUANTIZE) as fh, open(card.HEADLINE) as served:
        assert json.load(served) == card.headline(json.load(fh))


@on_the_datasets
def test_speed_benchmark_quick(tmp_path, monkeypatch):
    bench = _bench("bench_speed", monkeypatch, tmp_path)
    assert bench.main(["--quick", "--data-dir", SHARED]) == 0
    rows = {r["lever"]: r for r in _result(tmp_path, "speed")["rows"]}
    now = rows["Keras, one call for both views, chunks of 64"]
    old = rows["0.3: two calls (image, then mirror), chunks of 256"]
    assert now["accuracy"] == old["accuracy"]  # the same answers, one call fewer
    assert now["latency_ms"] < old["latency_ms"]
    int8 = rows["int8 TensorFlow Lite copy, one call, chunks of 64 (the default)"]
    assert int8["faces_per_s_256"] > now["faces_per_s_256"]


@pytest.mark.slow
def test_service_benchmark_with_two_worker_processes():
    """Two worker processes each load the model and answer (about 20 s: opt-in)."""
    import cv2
    from skimage import data

    bench = load_script("benchmarks", "bench_service")
    photo = cv2.imencode(".jpg", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))[1].tobytes()
    rows = bench.run(2, photo, 8, (4,))
    assert rows[0]["ok"] == 8 and rows[0]["requests_per_s"] > 0


@pytest.mark.slow
def test_distributed_benchmark_quick(tmp_path, monkeypatch):
    """Clusters of 1 and 2 workers, read-out off and on (about a minute: opt-in)."""
    bench = _bench("bench_distributed", monkeypatch, tmp_path)
    assert bench.main(["--quick"]) == 0
    result = _result(tmp_path, "distributed")
    runs = result["runs"]
    assert len(runs) == 8 and all(r["images_per_s"] > 0 for r in runs.values())
    assert runs["2 separate processes (no Dask, the ceiling), read-out off"]["speedup"] > 1.0
    assert runs["2 workers, read-out off"]["speedup"] > 1.0
    assert len(runs["2 workers, read-out on"]["worker_peak_mb"]) == 2
    rows = bench.cost_model(result)
    assert rows and all(r["hours"] > 0 for r in rows)
    assert "| read-out | workers | hours | core-hours |" in bench.render(result)


def test_bad_inputs_benchmark_builds_its_corpus(tmp_path):
    """The corpus builds (the full run, which takes minutes, is the benchmark's own)."""
    bench = load_script("benchmarks", "bench_bad_inputs")
    images = bench.build_images(str(tmp_path), quick=True)
    assert {c["expect"] for c in images} == {"faces:1", "error", "no_face"}
    assert all(os.path.exists(c["path"]) for c in images)


@on_the_datasets
def test_small_data_benchmark_quick(tmp_path, monkeypatch):
    bench = _bench("bench_small_data", monkeypatch, tmp_path)
    assert bench.main(["--quick", "--data-dir", SHARED]) == 0
    rows = _result(tmp_path, "small_data")["rows"]
    assert [r["faces"] for r in rows] == [0, 100, 100]
    bundled, tuned, _ = rows
    # Two gentle epochs on 100 faces keep most of what the bundled network knows.
    assert tuned["gender"] > bundled["gender"] - 0.1


@on_the_datasets
def test_loading_benchmark_quick(tmp_path, monkeypatch):
    bench = _bench("loading", monkeypatch, tmp_path)
    assert bench.main(["--quick", "--data-dir", SHARED]) == 0
    rows = _result(tmp_path, "loading")["rows"]
    assert [r["images"] for r in rows] == [1000, 1000, 927]  # CK+ has 927 without contempt
    assert all(r["cached_load_s"] < r["first_load_s"] for r in rows)


def test_detection_benchmark_filters_one_low_threshold_pass_exactly(monkeypatch, tmp_path):
    """bench_detection detects once at its lowest threshold and filters by score: the boxes
    kept at a threshold are those dlib gives when asked for that threshold."""
    from skimage import data

    from mtlfaces.faces import detect_faces

    bench = _bench("bench_detection", monkeypatch, tmp_path)
    image = bench.as_jpeg(data.astronaut())  # its mission patch scores just above 0
    low = detect_faces(image, upsample=1, threshold=min(bench.THRESHOLDS), crop_size=None)
    assert len(low) > 1  # the face and weaker, false detections
    for t in bench.THRESHOLDS:
        direct = detect_faces(image, upsample=1, threshold=t, crop_size=None)
        assert sorted(f.box for f in direct) == sorted(f.box for f in low if f.score >= t)
    rows = bench.scan({"astronaut": (data.astronaut(), 1)}, -0.5)
    assert [r["encoding"] for r in rows] == ["png", "jpeg"] and rows[0]["side"] == 512
    # At the library's default (0.2) nothing but her face is kept (her face: the first
    # search finds it, so no retry); at dlib's 0 the JPEG's mission patch is kept too.
    for r in rows:
        assert len(bench.kept(r["upsample0"], r["upsample1"], True, (0.2, 0.2))) == 1
    assert len(bench.kept(rows[1]["upsample0"], rows[1]["upsample1"], True, (0.0, 0.0))) == 2
    # The retry runs only where the first search kept nothing, and only on small images.
    assert bench.kept([0.1], [0.9, 0.5], True, (0.2, 0.2)) == [0.9, 0.5]
    assert bench.kept([0.1], [0.9, 0.5], False, (0.2, 0.2)) == []
    assert bench.kept([0.3], [0.9], True, (0.2, -0.5)) == [0.3]
    # Below the threshold the retry keeps its best detection alone, as the pipeline does.
    assert bench.kept([], [0.9, 0.0], True, (0.2, -0.2)) == [0.9]
    assert bench.kept([], [0.1, -0.1, -0.3], True, (0.2, -0.2)) == [0.1]


def test_detection_benchmark_gives_a_subsets_faces_to_their_own_photos(monkeypatch, tmp_path):
    """The CNN searches only the photos HOG left without a face: its records, numbered in
    that subset, go back to their photos' places."""
    bench = _bench("bench_detection", monkeypatch, tmp_path)
    records = [{"source": "array[1]", "status": "ok", "gender": "Female"},
               {"source": "array[0]", "status": "no_face"},
               {"source": "array[1]", "status": "ok", "gender": "Male"}]
    out = bench.renumbered(records, [5, 9])
    assert list(out) == [5, 9] and out[5] == []
    assert [(r["source"], r["gender"]) for r in out[9]] == [("array[9]", "Female"),
                                                            ("array[9]", "Male")]


@on_the_datasets
def test_detection_benchmark_quick(tmp_path, monkeypatch):
    bench = _bench("bench_detection", monkeypatch, tmp_path)
    assert bench.main(["--quick", "--data", SHARED]) == 0
    result = _result(tmp_path, "detection")
    rows = result["rows"]
    same = [r for r in rows if r["threshold"] == r["retry_threshold"]]
    assert [r["threshold"] for r in same] == list(bench.THRESHOLDS)
    found = [r["lfw_face_found"] for r in same]
    assert found == sorted(found)  # a lower threshold never finds fewer faces
    extra = [r["extra_on_one_face_images"] for r in same]
    assert extra == sorted(extra) and result["lfw_photos"] == 40
    library = [r for r in rows if r["library"]]  # the pipeline's own policy, marked once
    assert [(r["threshold"], r["retry_threshold"], r["cnn"]) for r in library] == [
        (*bench.LIBRARY_POLICY, True)]
    # The CNN's search only adds: where HOG kept a face, it does not run.
    hog_alone = [r for r in rows if not r["cnn"] and
                 (r["threshold"], r["retry_threshold"]) == bench.LIBRARY_POLICY]
    assert len(hog_alone) == 1 and library[0]["lfw_face_found"] >= hog_alone[0]["lfw_face_found"]
    assert library[0]["false_detections"] >= hog_alone[0]["false_detections"]
    # Each photo where the CNN found a face is a photo more with one (none counted twice,
    # none given to another photo).
    cnn = result["cnn_lfw_photos"]
    assert library[0]["lfw_face_found"] * 40 == pytest.approx(
        hog_alone[0]["lfw_face_found"] * 40 + cnn["found"])
    assert cnn["searched"] == round((1 - hog_alone[0]["lfw_face_found"]) * 40)
    assert result["cnn_seconds_per_small_image"] > 0
