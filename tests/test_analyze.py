"""mtlfaces.analyze(): the one route from media to labels, and the answers it pins."""

import json
import os

import cv2
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import mtlfaces
from mtlfaces.cli import main
from mtlfaces.pipeline import FIELDS

from .test_cli import make_video

# The bundled model's distributions for the astronaut, as mtlfaces 0.3.1 gave them
# (`mtlfaces predict` on the JPEG below; FaceAnalyzer on the array, read-out on and off).
# The restructuring must not change the Keras network's (to 2e-3: the pins were taken on a
# CPU with AVX-512, and one without it answers up to 5.4e-4 away, measured on 2026-12-04;
# saving the photo as a JPEG of quality 95 moves them by up to 0.04: the pins below); the
# 8-bit copy that predicts by default since 0.4 stays within 0.03 of them (its
# probabilities come in steps of 1/256), with the same labels. Pinned on the bundled v7
# network (issue #32): a new bundled network re-pins them.
#: Emotion, which the read-out leaves alone: the same with it and without.
PINNED_EMOTION = {
    "jpeg": [0.01171, 0.000094, 0.009404, 0.951128, 0.013797, 0.003488, 0.010377],
    "array": [0.012079, 0.000093, 0.009168, 0.951662, 0.012752, 0.004338, 0.009909],
}
PINNED = {
    ("jpeg", True): {"age": [0.019472, 0.51921, 0.416526, 0.043417, 0.001375],
                     "gender": [0.917075, 0.082925]},
    ("jpeg", False): {"age": [0.020725, 0.614819, 0.341569, 0.020776, 0.002111],
                      "gender": [0.849968, 0.150032]},
    ("array", True): {"age": [0.016379, 0.494544, 0.440229, 0.047501, 0.001347],
                      "gender": [0.924685, 0.075315]},
    ("array", False): {"age": [0.018055, 0.578138, 0.380791, 0.021149, 0.001867],
                       "gender": [0.865713, 0.134287]},
}
#: The age in years (the read-out does not move it); rounded to 0.1 in the answers.
PINNED_YEARS = {"jpeg": 28.6, "array": 29.0}
PINNED_BOX = (179, 83, 266, 170)


@pytest.fixture(scope="module")
def astronaut_jpeg(tmp_path_factory, astronaut):
    path = tmp_path_factory.mktemp("photo") / "astronaut.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 95])
    return str(path)


@pytest.fixture(scope="module")
def analyzer():
    return mtlfaces.Analyzer()


@pytest.mark.parametrize("kind", ["jpeg", "array"])
@pytest.mark.parametrize("readout", [True, False])
@pytest.mark.parametrize("inference, atol", [("keras", 2e-3), ("auto", 0.03)])
def test_the_bundled_models_answers_for_the_astronaut_are_pinned(astronaut, astronaut_jpeg,
                                                                  kind, readout, inference,
                                                                  atol):
    source = astronaut_jpeg if kind == "jpeg" else astronaut
    clf = mtlfaces.load_pretrained().set_params(inference=inference)
    assert (inference == "auto") == (clf._int8_network() is not None)  # it ships one
    frames = list(mtlfaces.Analyzer(clf, readout=readout).frames(source))
    assert len(frames) == 1 and len(frames[0].faces) == 1
    face = frames[0].faces[0]
    assert tuple(int(v) for v in face.box) == PINNED_BOX
    labels = dict(face.labels)
    years = labels.pop("age_years")
    assert labels == {"age": "Young", "gender": "Female", "emotion": "Happy"}
    assert years == pytest.approx(PINNED_YEARS[kind], abs=0.1 if inference == "keras" else 1.0)
    for task, want in dict(PINNED[(kind, readout)], emotion=PINNED_EMOTION[kind]).items():
        np.testing.assert_allclose(face.distributions[task], want, atol=atol, err_msg=task)


def test_readout_auto_is_on_for_images_with_the_bundled_model(astronaut, analyzer):
    record = analyzer.analyze(astronaut)[0]
    on = mtlfaces.Analyzer(readout=True).analyze(astronaut)[0]
    off = mtlfaces.Analyzer(readout=False).analyze(astronaut)[0]
    assert record["gender_probability"] == on["gender_probability"]
    assert record["gender_probability"] != off["gender_probability"]


def _cli_records(*args):
    result = CliRunner().invoke(main, ["predict", *map(str, args), "--json", "-"],
                                catch_exceptions=False)
    return result.exit_code, [json.loads(line) for line in result.stdout.splitlines()]


def test_the_cli_writes_analyzes_records_for_a_photo(astronaut_jpeg, analyzer):
    code, rows = _cli_records(astronaut_jpeg)
    assert code == 0
    assert rows == analyzer.analyze(astronaut_jpeg)
    assert rows[0]["gender"] == "Female" and rows[0]["source"] == astronaut_jpeg


def test_the_cli_writes_analyzes_records_for_a_folder(tmp_path, astronaut, analyzer):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    bgr = cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(folder / "a.png"), bgr)
    cv2.imwrite(str(folder / "sub" / "b.jpg"), bgr[:, ::-1])
    code, rows = _cli_records(folder)
    assert code == 0
    assert rows == analyzer.analyze(str(folder))
    assert [r["source"] for r in rows] == [str(folder / "a.png"), str(folder / "sub" / "b.jpg")]


def test_the_cli_writes_analyzes_records_for_a_video(tmp_path, astronaut):
    video = make_video(tmp_path / "walk.mp4", astronaut, frames=8)
    code, rows = _cli_records(video, "--every", "2")
    assert code == 0
    expected = mtlfaces.analyze(str(video), every=2)
    assert rows == expected
    assert [r["frame"] for r in rows] == list(range(8))
    # Videos leave the read-out out unless asked: their answers are the network's alone.
    with_readout = mtlfaces.analyze(str(video), every=2, readout=True)
    assert [r["gender_probability"] for r in with_readout] != [r["gender_probability"]
                                                                for r in rows]


def test_analyze_as_frame_has_the_csv_columns(astronaut, analyzer):
    frame = analyzer.analyze([astronaut, np.zeros((120, 160, 3), np.uint8)], as_frame=True)
    assert isinstance(frame, pd.DataFrame)
    classes = {"age": mtlfaces.AGE_GROUPS, "gender": mtlfaces.GENDERS,
               "emotion": mtlfaces.EMOTIONS}
    # The bundled network's fourth head answers one number, the age in years: one column.
    assert list(frame.columns) == FIELDS + ["age_years"] + [
        f"{t}.{c}" for t, cs in classes.items() for c in cs]
    assert frame["age_years"].dtype.kind == "f" and 18 < frame["age_years"][0] < 65
    assert list(frame["source"]) == ["array[0]"]  # the blank image has no face, so no row
    assert frame[[f"age.{c}" for c in mtlfaces.AGE_GROUPS]].sum(axis=1)[0] == pytest.approx(1, abs=0.02)


def test_status_rows_and_recorded_errors_match_the_cli(tmp_path, astronaut, analyzer):
    folder = tmp_path / "mixed"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / "b_blank.png"), np.zeros((100, 100, 3), np.uint8))
    (folder / "c_bad.jpg").write_bytes(b"not an image")
    code, rows = _cli_records(folder)
    assert code == 1  # c_bad.jpg
    assert rows == analyzer.analyze(str(folder), status_rows=True, on_error="record")
    assert [r["status"] for r in rows] == ["ok", "no_face", "error"]
    with pytest.raises(ValueError, match="c_bad.jpg"):
        analyzer.analyze(str(folder))
    missing = analyzer.analyze([str(tmp_path / "nowhere.png")], on_error="record")
    assert missing[0]["status"] == "error" and "no such file" in missing[0]["error"]


def test_a_stack_of_arrays_names_each_image(astronaut, analyzer):
    stack = np.stack([astronaut, astronaut[:, ::-1]])
    rows = analyzer.analyze(stack)
    assert [r["source"] for r in rows] == ["array[0]", "array[1]"]
    # A list of arrays (of any sizes) names each by its place, so answers can be matched.
    small = astronaut[::2, ::2]
    rows = analyzer.analyze([astronaut, small, np.stack([small])])
    assert [r["source"] for r in rows] == ["array[0]", "array[1]", "array[2][0]"]
    assert rows[1]["right"] < rows[0]["right"]


def test_analyze_names_what_it_cannot_read(tmp_path, analyzer):
    from mtlfaces.images import ImageError

    with pytest.raises(ValueError, match="nowhere.jpg: no such file or folder"):
        analyzer.analyze(str(tmp_path / "nowhere.jpg"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images or videos in this folder"):
        analyzer.analyze(str(tmp_path / "empty"))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ImageError, match="bad.png: not a readable image"):
        analyzer.analyze(str(bad))
    with pytest.raises(ValueError, match="every=0"):
        mtlfaces.Analyzer(every=0)
    with pytest.raises(ValueError, match="readout='sometimes'"):
        mtlfaces.Analyzer(readout="sometimes")


def test_glob_patterns_expand_to_the_media_they_match(tmp_path):
    from mtlfaces.pipeline import expand

    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/1.jpg", "a/b/2.png", "a/b/3.avi", "a/notes.txt", "4.jpg"):
        (tmp_path / name).write_bytes(b"x")
    found = expand(str(tmp_path / "a" / "**" / "*.*"))
    assert [(i.kind, os.path.relpath(i.value, tmp_path)) for i in found] == [
        ("image", "a/1.jpg"), ("image", "a/b/2.png"), ("video", "a/b/3.avi")]
    assert [i.name for i in expand(str(tmp_path / "*.jpg"))] == [str(tmp_path / "4.jpg")]
    with pytest.raises(ValueError, match=r"\*.gif: no images or videos match this pattern"):
        expand(str(tmp_path / "*.gif"))


def test_crops_follow_the_model_in_use(astronaut, tmp_path):
    """A model with another input size gets crops of that size, whatever the defaults say."""
    from mtlfaces import MultiTaskFaceClassifier
    from mtlfaces.datasets import make_shapes
    from mtlfaces.pipeline import FaceAnalyzer

    from .conftest import TINY

    X, y = make_shapes(100, seed=3)
    clf = MultiTaskFaceClassifier(**dict(TINY, epochs=1, image_size=32)).fit(X, y)
    clf.set_params(image_size=64)  # a parameter changed after fitting does not decide
    faces = FaceAnalyzer(clf).detect(astronaut)
    assert faces[0].crop.shape == (32, 32)
    assert mtlfaces.analyze(astronaut, clf)[0]["face"] == 0


def test_annotations_use_the_tables_names():
    from mtlfaces.annotate import annotate, label_line
    from mtlfaces.pipeline import FaceResult

    face = FaceResult((10, 10, 90, 90), 1.0, None,
                      {"age": "Very Old", "gender": "Male", "emotion": "Neutral"}, {})
    assert label_line(face) == "Very Old, Male, Neutral"
    face.labels["age"] = "Middle Age"
    assert label_line(face).startswith("Middle Age, ")
    drawn = annotate(np.zeros((100, 100, 3), np.uint8), [face])
    assert drawn.any() and drawn.shape == (100, 100, 3)


def test_a_small_photo_is_searched_again_at_upsample_1(astronaut, monkeypatch):
    from mtlfaces import pipeline

    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)  # face ~45 px
    clf = mtlfaces.load_pretrained()
    assert len(mtlfaces.analyze(small, clf)) == 1
    monkeypatch.setattr(pipeline, "RETRY_SIDE", 0)
    assert mtlfaces.analyze(small, clf) == []


def test_the_second_search_keeps_weaker_detections(astronaut, monkeypatch):
    """At 156 px the astronaut's face scores -0.50 at upsample 0 and 0.14 at upsample 1: the
    retry finds it only because it keeps scores down to the threshold minus 0.4
    (RETRY_THRESHOLD_DROP, measured by benchmarks/bench_detection.py)."""
    from mtlfaces._defaults import RETRY_THRESHOLD_DROP

    small = cv2.resize(astronaut, (156, 156), interpolation=cv2.INTER_AREA)
    clf = mtlfaces.load_pretrained()
    rows = mtlfaces.analyze(small, clf, readout=False)
    assert len(rows) == 1 and rows[0]["status"] == "ok"
    assert -RETRY_THRESHOLD_DROP + 0.2 <= rows[0]["detector_score"] < 0.2
    # Her face (around x 200-280, y 60-180 of 512), not the mission patch.
    cx = (rows[0]["left"] + rows[0]["right"]) / 2 * 512 / 156
    cy = (rows[0]["top"] + rows[0]["bottom"]) / 2 * 512 / 156
    assert 180 < cx < 300 and 40 < cy < 200
    # A stricter threshold moves the retry's with it: at 0.6 it keeps 0.2 and up.
    assert mtlfaces.analyze(small, clf, readout=False, threshold=0.6) == []


def test_the_retry_lowers_only_the_hog_threshold(monkeypatch):
    """The CNN detector's threshold is a confidence, not a HOG margin: its retry keeps it."""
    from mtlfaces import pipeline

    calls = []

    def detect(rgb, upsample=0, **options):
        calls.append((options["detector"], upsample, options["threshold"]))
        return []

    monkeypatch.setattr(pipeline, "_detect_rgb", detect)
    image = np.zeros((100, 100, 3), np.uint8)
    for detector in ("auto", "hog", "cnn"):
        analyzer = pipeline.FaceAnalyzer(mtlfaces.load_pretrained(), detector=detector,
                                         threshold=0.3)
        assert analyzer._detect(image, still=True) == []
    # auto: HOG at upsample 0, its retry at upsample 1, then the CNN once; hog: no CNN;
    # cnn: upsample 0, then 1.
    assert calls == [("hog", 0, 0.3), ("hog", 1, pytest.approx(-0.1)), ("cnn", 0, 0.3),
                     ("hog", 0, 0.3), ("hog", 1, pytest.approx(-0.1)),
                     ("cnn", 0, 0.3), ("cnn", 1, 0.3)]
    # A video frame (not still) is searched once, with HOG.
    calls.clear()
    assert pipeline.FaceAnalyzer(mtlfaces.load_pretrained())._detect(image) == []
    assert calls == [("hog", 0, 0.2)]


def test_a_turned_face_that_hog_misses_is_found_by_the_cnn(astronaut):
    """The astronaut at 400 px turned by 50 degrees: HOG finds her at neither upsample;
    the last search of a small photo, dlib's CNN detector, does."""
    side = 400
    small = cv2.resize(astronaut, (side, side), interpolation=cv2.INTER_AREA)
    turn = cv2.getRotationMatrix2D((side / 2, side / 2), 50, 1.0)
    turned = cv2.warpAffine(small, turn, (side, side), borderMode=cv2.BORDER_REFLECT)
    clf = mtlfaces.load_pretrained()
    rows = mtlfaces.analyze(turned, clf, readout=False)
    assert len(rows) == 1 and rows[0]["status"] == "ok" and rows[0]["gender"] == "Female"
    # Her face: where the turn took the middle of its box in the upright photo.
    centre = turn @ np.array([222.5 * side / 512, 126.5 * side / 512, 1.0])
    box = rows[0]["left"], rows[0]["top"], rows[0]["right"], rows[0]["bottom"]
    assert box[0] < centre[0] < box[2] and box[1] < centre[1] < box[3]
    # HOG alone (detector="hog", no CNN search) finds nothing.
    assert mtlfaces.analyze(turned, clf, readout=False, detector="hog") == []


def test_crops_mode_answers_every_image_once(astronaut, analyzer):
    rng = np.random.RandomState(0)
    texture = rng.randint(0, 255, (120, 120, 3)).astype(np.uint8)
    tight = np.ascontiguousarray(astronaut[70:190, 160:290])
    clf = analyzer.classifier
    rows = mtlfaces.analyze([tight, texture], clf, crops=True, readout=False)
    assert [r["source"] for r in rows] == ["array[0]", "array[1]"]
    assert rows[0]["located"] == "detector" and rows[0]["gender"] == "Female"
    # Crops mode trusts that each image is a face: it answers even for noise.
    assert rows[1]["located"] in ("landmarks", "whole") and rows[1]["detector_score"] is None
    assert rows[1]["left"] == 0 and rows[1]["right"] in (119, 120)
    assert mtlfaces.analyze(texture, clf, readout=False) == []  # photo mode: no face there
    # A face crop the detector misses is aligned on landmarks fitted to the whole image...
    from mtlfaces.faces import _plausible_eyes, _whole_face

    face = _whole_face(tight)
    assert face.located == "landmarks" and face.crop.shape == (48, 48)
    # ...unless they do not look like a face filling it: then the image is used as given.
    eyes = np.array([[80, 40], [70, 40], [30, 40], [40, 40], [55, 70]], float)
    assert _plausible_eyes(eyes, 100, 100)
    assert not _plausible_eyes(eyes, 400, 100)  # eyes 5 % of the width apart... in 400 px
    assert not _plausible_eyes(eyes[:, ::-1], 100, 100)  # a face on its side
    assert not _plausible_eyes(np.vstack([eyes[:4], [[55, 10]]]), 100, 100)  # nose above


def test_the_pipelined_video_loop_keeps_each_frames_own_answers(tmp_path, astronaut):
    """Frame i is classified in a thread while frame i + 1 is detected: with no smoothing,
    every frame's answers must be those of that frame alone, in order."""
    from mtlfaces.pipeline import FaceAnalyzer

    video = make_video(tmp_path / "walk.mp4", astronaut, frames=6)
    clf = mtlfaces.load_pretrained()
    # Detection on every frame, so that each frame can be compared with detecting it alone.
    frames = list(mtlfaces.Analyzer(clf, smooth=0.0, every=1).video(str(video)))
    assert [f.frame for f in frames] == list(range(6))
    single = FaceAnalyzer(clf)
    for frame in frames:
        alone = single._analyze(frame.image)
        assert [r.box for r in frame.faces] == [r.box for r in alone]
        for got, want in zip(frame.faces, alone):
            for task in got.distributions:
                np.testing.assert_allclose(got.distributions[task], want.distributions[task],
                                           atol=1e-6)


def test_an_unknown_detector_is_refused_before_any_work():
    with pytest.raises(ValueError, match=r"detector='retina'; expected one of 'auto', 'hog', 'cnn'"):
        mtlfaces.Analyzer(detector="retina")
    # The building block too: a typo was once taken for the CNN.
    with pytest.raises(ValueError, match="detector='HOG'"):
        mtlfaces.pipeline.FaceAnalyzer(None, detector="HOG")
