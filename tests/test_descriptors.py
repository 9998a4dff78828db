"""dlib's face descriptor and the read-out of age group and gender from it, on real faces."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mtlfaces import detect_faces
from mtlfaces.descriptors import (PRETRAINED_READOUT_PATH, DescriptorReadout, ReadoutFileError,
                                  crop_descriptors, crop_landmarks, face_descriptors,
                                  load_pretrained_readout, mean_with)


def _features(n, seed=0):
    """Descriptor-shaped numbers with two labels that depend on them (for the read-out's
    arithmetic; the real descriptors are tested on real faces below)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0.0, 0.1, (n, 128))
    gender = np.where(X[:, 0] + 0.02 * rng.normal(size=n) > 0, "Male", "Female").astype(object)
    score = X[:, 1] + X[:, 2]
    age = np.asarray(["Child", "Young", "Old"], dtype=object)[np.digitize(score, [-0.05, 0.05])]
    return X, pd.DataFrame({"gender": gender, "age": age})


@pytest.fixture(scope="module")
def astronaut_faces(astronaut):
    faces = detect_faces(astronaut, threshold=0.2)
    assert len(faces) == 1
    return faces


def test_readout_probabilities_are_scikit_learns_logistic_regression():
    """The numpy-only predict_proba is the fitted pipeline's, binary and multiclass."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _features(1200)
    readout = DescriptorReadout(C=0.5).fit(X[:1000], y.iloc[:1000])
    proba = readout.predict_proba(X[1000:])
    for task in ("gender", "age"):
        reference = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000))
        reference.fit(X[:1000], y[task][:1000].astype(str))
        assert readout.classes_[task] == list(reference.classes_)
        np.testing.assert_allclose(proba[task], reference.predict_proba(X[1000:]), atol=1e-6)
    assert np.mean(readout.predict(X[1000:])["gender"] == y["gender"][1000:].to_numpy()) > 0.8


def test_readout_leaves_missing_labels_out_and_never_invents_them():
    X, y = _features(300)
    y.loc[:99, "age"] = None
    y.loc[100:119, "gender"] = np.nan
    readout = DescriptorReadout().fit(X, y)
    assert readout.n_samples_ == {"gender": 280, "age": 200}
    alone = DescriptorReadout().fit(X[100:], {"age": y["age"][100:]})
    np.testing.assert_allclose(readout.predict_proba(X)["age"], alone.predict_proba(X)["age"])
    # Labels are spelled as everywhere in mtlfaces: "f"/"m", ages in years become groups.
    spelled = DescriptorReadout().fit(X, {"gender": y["gender"].map({"Male": "m", "Female": "f"}),
                                          "age": [3 if a == "Child" else 70 for a in y["age"]]})
    assert spelled.classes_ == {"gender": ["Female", "Male"], "age": ["Child", "Very Old"]}
    assert spelled.n_samples_ == {"gender": 280, "age": 300}


def test_readout_errors_name_the_problem():
    X, y = _features(50)
    with pytest.raises(ValueError, match=r"shape \(50, 12\); expected \(n, 128\)"):
        DescriptorReadout().fit(X[:, :12], y)
    with pytest.raises(ValueError, match=r"y\['gender'\] has 1 distinct label"):
        DescriptorReadout().fit(X, {"gender": ["Male"] * 50})
    with pytest.raises(ValueError, match="49 labels for 50 descriptors"):
        DescriptorReadout().fit(X, {"gender": y["gender"][:49]})
    with pytest.raises(RuntimeError, match="not fitted"):
        DescriptorReadout().predict_proba(X)


def test_readout_round_trips_through_json_and_damage_is_named(tmp_path):
    X, y = _features(200)
    readout = DescriptorReadout().fit(X, y)
    path = readout.save(tmp_path / "readout.json")
    payload = json.loads(open(path).read())  # plain JSON: loading it runs nothing
    assert payload["format"] == "mtlfaces-descriptor-readout" and set(payload["tasks"]) == {
        "gender", "age"}
    again = DescriptorReadout.load(path)
    assert again.classes_ == readout.classes_ and again.n_samples_ == readout.n_samples_
    for task in readout.tasks_:
        np.testing.assert_allclose(again.predict_proba(X)[task], readout.predict_proba(X)[task])
    payload["tasks"]["age"]["coef"] = payload["tasks"]["age"]["coef"][:-1]
    (tmp_path / "short.json").write_text(json.dumps(payload))
    with pytest.raises(ReadoutFileError, match=r"short\.json: a damaged.*'age'"):
        DescriptorReadout.load(tmp_path / "short.json")
    (tmp_path / "half.json").write_text(open(path).read()[:500])
    with pytest.raises(ReadoutFileError, match=r"half\.json: not a JSON descriptor read-out"):
        DescriptorReadout.load(tmp_path / "half.json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ReadoutFileError, match=r"other\.json: not an mtlfaces descriptor"):
        DescriptorReadout.load(tmp_path / "other.json")
    with pytest.raises(ReadoutFileError, match=r"missing\.json: no such file"):
        DescriptorReadout.load(tmp_path / "missing.json")


def test_descriptors_tell_the_same_person_from_a_blank(astronaut, astronaut_faces):
    """The astronaut and her mirror image are one person to dlib (its threshold is a
    distance of 0.6); described where she was detected in the whole photo, she is the
    person of her crop; a blank image has no face (a centred box is described)."""
    image = np.ascontiguousarray(astronaut)
    face = astronaut_faces[0]
    left, top, right, bottom = face.box
    crop = np.ascontiguousarray(image[max(0, top - 40):bottom + 40, max(0, left - 40):right + 40])
    crops = [crop, np.ascontiguousarray(crop[:, ::-1]), np.full_like(crop, 128)]
    features, found = crop_descriptors(crops)
    assert features.shape == (3, 128) and found == 2
    assert np.linalg.norm(features[0] - features[1]) < 0.6
    assert np.linalg.norm(features[0] - features[2]) > 0.6
    in_photo = face_descriptors(image, astronaut_faces)
    assert in_photo.shape == (1, 128) and np.linalg.norm(in_photo[0] - features[0]) < 0.4
    gray = face_descriptors(image.mean(2).astype(np.uint8), astronaut_faces)
    assert np.linalg.norm(gray[0] - in_photo[0]) < 0.6  # grey is accepted, same person
    with pytest.raises(TypeError, match=r"faces\[0\] is tuple"):
        face_descriptors(image, [face.box])


def test_crop_landmarks_place_the_chip_crop_descriptors_describe(astronaut):
    """crop_landmarks is where crop_descriptors puts the chip: the descriptor of dlib's
    chip at those landmarks is the crop's; with no face found, a centred box of three
    quarters of the crop (its landmarks lie inside it) and ``detected`` False."""
    import dlib

    from mtlfaces.faces import _model

    crop = np.ascontiguousarray(astronaut[20:300, 100:360])
    rgb, shape, detected = crop_landmarks(crop)
    assert detected and rgb.flags.c_contiguous and rgb.dtype == np.uint8
    chip = dlib.get_face_chip(rgb, shape, size=150, padding=0.25)
    own = np.asarray(_model("descriptor").compute_face_descriptor(chip))
    np.testing.assert_allclose(own, crop_descriptors([crop])[0][0], atol=1e-6)
    blank = np.full((200, 160, 3), 128, np.uint8)
    _, shape, detected = crop_landmarks(blank)
    box = shape.rect
    assert not detected
    assert (box.left(), box.top(), box.right(), box.bottom()) == (20, 25, 140, 175)


def test_crop_descriptors_in_processes_are_the_same_in_order(astronaut):
    image = np.ascontiguousarray(astronaut[20:300, 100:360])
    crops = np.stack([image, image[:, ::-1], np.full_like(image, 90)] * 2)
    alone, found = crop_descriptors(crops)
    split, found2 = crop_descriptors(crops, n_jobs=2, chunk=2)
    np.testing.assert_allclose(split, alone, atol=1e-6)
    assert found == found2 == 4


def test_bundled_readout_is_json_and_calls_the_astronaut_a_woman(astronaut, astronaut_faces):
    """The read-out shipped with the package (fitted on UTKFace's training part by
    recipes/readout.py): age group and gender, all classes."""
    from mtlfaces import AGE_GROUPS, GENDERS

    with open(PRETRAINED_READOUT_PATH) as fh:
        assert json.load(fh)["format"] == "mtlfaces-descriptor-readout"
    import mtlfaces

    readout = mtlfaces.load_pretrained_readout()  # also at the top level, lazily
    assert isinstance(readout, mtlfaces.DescriptorReadout)
    assert sorted(readout.tasks_) == ["age", "gender"]
    assert sorted(readout.classes_["age"]) == sorted(AGE_GROUPS)
    assert sorted(readout.classes_["gender"]) == sorted(GENDERS)
    assert readout.n_samples_["gender"] > 15000
    labels = readout.predict(face_descriptors(astronaut, astronaut_faces))
    assert labels["gender"][0] == "Female" and labels["age"][0] != "Child"


def test_mean_with_reorders_the_readouts_columns_and_keeps_other_tasks():
    X, y = _features(200)
    readout = DescriptorReadout().fit(X, y)
    classes = {"gender": ["Male", "Female"], "age": ["Child", "Young", "Old"],
               "emotion": ["Happy", "Sad"]}
    proba = {"gender": np.tile([1.0, 0.0], (3, 1)), "age": np.tile([0.0, 0.0, 1.0], (3, 1)),
             "emotion": np.tile([0.3, 0.7], (3, 1))}
    own = readout.predict_proba(X[:3])
    out = mean_with(proba, classes, own, readout)
    male = readout.classes_["gender"].index("Male")
    np.testing.assert_allclose(out["gender"][:, 0], (1.0 + own["gender"][:, male]) / 2)
    np.testing.assert_allclose(out["age"].sum(1), 1.0)
    assert out["emotion"] is proba["emotion"]
    with pytest.raises(ValueError, match="'gender'.*not the read-out's"):
        mean_with(proba, dict(classes, gender=["M", "F"]), own, readout)


def test_analyzer_averages_the_readout_into_age_and_gender_only(astronaut):
    import mtlfaces
    from mtlfaces.pipeline import FaceAnalyzer

    clf = mtlfaces.load_pretrained()
    readout = load_pretrained_readout()
    plain = FaceAnalyzer(clf).analyze(astronaut)[0].distributions
    both_face = FaceAnalyzer(clf, readout=readout).analyze(astronaut)[0]
    own = readout.predict_proba(face_descriptors(astronaut, detect_faces(astronaut, pose=True)))
    for task in ("age", "gender"):
        order = [readout.classes_[task].index(str(c)) for c in
                 clf.classes_[clf.tasks_.index(task)]]
        np.testing.assert_allclose(both_face.distributions[task],
                                   (plain[task] + own[task][0, order]) / 2, atol=1e-5)
    np.testing.assert_allclose(both_face.distributions["emotion"], plain["emotion"], atol=1e-6)
    assert both_face.labels["gender"] == "Female" and both_face.labels["emotion"] == "Happy"


def test_cli_adds_the_readout_to_the_bundled_model_only(astronaut, tmp_path):
    import cv2

    from mtlfaces.cli import main

    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))

    def gender_probability(*args):
        result = CliRunner().invoke(main, ["predict", str(path), "--json", "-", *args])
        assert result.exit_code == 0, result.output
        row = json.loads(result.stdout.splitlines()[0])
        assert row["gender"] == "Female"
        return row["gender_probability"]

    default, on, off = (gender_probability(), gender_probability("--descriptor"),
                        gender_probability("--no-descriptor"))
    assert default == on != off


def test_cli_descriptor_with_another_model_is_asked_for_and_checked(astronaut, tmp_path):
    """With --model the read-out is off unless --descriptor asks for it; a model without
    age group or gender cannot take it, and the error says so (exit 2, no traceback)."""
    import cv2

    from mtlfaces import MultiTaskFaceClassifier
    from mtlfaces.cli import main
    from mtlfaces.datasets import make_shapes

    from .conftest import TINY

    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    X, y = make_shapes(200, seed=4)
    both, emotion = tmp_path / "both.mtlfaces", tmp_path / "emotion.mtlfaces"
    MultiTaskFaceClassifier(epochs=1, **TINY).fit(X, y).save(both)
    MultiTaskFaceClassifier(epochs=1, **TINY).fit(X, y[["emotion"]]).save(emotion)

    def rows(*args):
        result = CliRunner().invoke(main, ["predict", str(path), "--json", "-", *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout.splitlines()[0])

    plain, added = rows("--model", both), rows("--model", both, "--descriptor")
    assert plain["age_probability"] != added["age_probability"]
    assert plain["emotion_probability"] == added["emotion_probability"]
    result = CliRunner().invoke(main, ["predict", str(path), "--model", str(emotion),
                                       "--descriptor"])
    assert result.exit_code == 2
    assert "--descriptor: the model has none of the read-out's tasks (gender, age)" in \
        result.output and "Traceback" not in result.output
    assert "--no-descriptor on the command line" in result.output  # the fix, named


def test_cli_leaves_the_readout_out_of_videos_unless_asked(astronaut, tmp_path):
    """On video the read-out would cost most of the frame rate: off by default, on with
    --descriptor; images in the same run still get it."""
    import cv2

    from mtlfaces.cli import main

    from .test_cli import make_video

    video = make_video(tmp_path / "clip.mp4", astronaut, frames=3)
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))

    def rows(*args):
        result = CliRunner().invoke(main, ["predict", str(photo), str(video), "--json", "-",
                                           "--max-frames", "2", *args])
        assert result.exit_code == 0, result.output
        out = [json.loads(line) for line in result.stdout.splitlines()]
        return ({r["source"]: r["gender_probability"] for r in out if r.get("frame") is None},
                [r["gender_probability"] for r in out if r.get("frame") is not None])

    (default_photo, default_video), (on_photo, on_video), (off_photo, off_video) = (
        rows(), rows("--descriptor"), rows("--no-descriptor"))
    assert default_video and default_video == off_video != on_video
    assert default_photo == on_photo != off_photo
