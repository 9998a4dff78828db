"""dlib detection, alignment, pose and the FaceCropper on real faces from scikit-image."""

import math

import cv2
import numpy as np
import pytest
from sklearn.base import clone

from mtlfaces.faces import FaceCropper, center_crop, detect_faces
from mtlfaces.images import ImageError, as_rgb_uint8


def _eye_tilt(crop):
    """Angle of the eye line (degrees) in an aligned crop, from a fresh landmark fit."""
    faces = detect_faces(cv2.resize(crop, (256, 256)), landmarks=68, crop_size=None, upsample=1)
    pts = faces[0].landmarks
    left, right = pts[36:42].mean(axis=0), pts[42:48].mean(axis=0)
    return math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))


def test_astronaut_has_exactly_one_face_on_her_face(astronaut):
    faces = detect_faces(astronaut, upsample=0, pose=True)
    assert len(faces) == 1
    left, top, right, bottom = faces[0].box
    # Her face: about x 180-265, y 85-170 in the 512x512 image (eyes near y 120).
    assert 160 < left < 200 and 250 < right < 290 and 60 < top < 110 and 150 < bottom < 200
    assert faces[0].landmarks.shape == (68, 2)
    # The crop is the bundled model's input, by default.
    assert faces[0].crop.shape == (48, 48) and faces[0].crop.dtype == np.uint8
    assert faces[0].is_frontal()


def test_upsample_one_also_finds_the_mission_patch_and_threshold_drops_it(astronaut):
    assert len(detect_faces(astronaut, upsample=1, threshold=0.0)) == 2
    assert len(detect_faces(astronaut, upsample=1, threshold=0.5)) == 1


@pytest.mark.parametrize("angle", [0, 20, -20])
def test_aligned_crop_is_upright_even_when_the_input_is_rotated(astronaut, angle):
    M = cv2.getRotationMatrix2D((256, 256), angle, 1.0)
    rotated = cv2.warpAffine(astronaut, M, (512, 512))
    faces = detect_faces(rotated, crop_size=128, pose=True)
    # Rotated, the mission patch sometimes scores too (weakly): take the surest face.
    face = max(faces, key=lambda f: f.score)
    assert 120 < face.box[0] < 260 and face.box[1] < 200
    # The pose sees the roll of the input (cv2 turns counter-clockwise for angle > 0) ...
    roll0 = detect_faces(astronaut, pose=True)[0].pose[2]
    assert abs(face.pose[2] - (roll0 - angle)) < 5
    # ... and the crop has it removed: eyes level within a few degrees.
    assert abs(_eye_tilt(face.crop)) < 5


def test_lfw_faces_are_found_and_non_faces_are_not():
    from skimage.data import lfw_subset

    lfw = lfw_subset()  # 100 faces then 100 non-faces, 25x25 float images
    up = np.stack([cv2.resize((x * 255).astype(np.uint8), (100, 100),
                              interpolation=cv2.INTER_CUBIC) for x in lfw])
    found = [len(detect_faces(x)) > 0 for x in up]
    assert sum(found[:100]) >= 80
    assert sum(found[100:]) <= 10


@pytest.mark.parametrize("make", [
    lambda a: np.zeros((300, 300, 3), np.uint8),  # blank
    lambda a: np.full((1, 1), 128, np.uint8),  # 1x1
    lambda a: cv2.resize(a, (6, 6)),  # too small to hold a findable face
])
def test_no_face_images_give_an_empty_list(astronaut, make):
    assert detect_faces(make(astronaut)) == []


def test_sixteen_bit_rgba_gray_float_and_bgr_inputs_find_the_same_face(astronaut):
    ref = detect_faces(astronaut)[0].box
    variants = {
        "uint16": astronaut.astype(np.uint16) * 257,
        "rgba": np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)]),
        "float": astronaut / 255.0,
        "gray": cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY),
    }
    for name, img in variants.items():
        faces = detect_faces(img)
        assert len(faces) == 1, name
        assert np.abs(np.subtract(faces[0].box, ref)).max() <= 6, name
    bgr = detect_faces(astronaut[:, :, ::-1], bgr=True)
    assert bgr[0].box == ref
    np.testing.assert_array_equal(bgr[0].crop, detect_faces(astronaut)[0].crop)


def test_large_images_are_detected_downscaled_and_mapped_back(astronaut):
    big = cv2.resize(astronaut, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    faces = detect_faces(big, max_side=512)
    assert len(faces) == 1
    np.testing.assert_allclose(np.array(faces[0].box) / 4, detect_faces(astronaut)[0].box, atol=6)


def test_bad_arrays_raise_image_errors():
    for bad in (np.zeros((0, 5)), np.zeros((4, 4, 2)), np.array([["a"]]),
                np.full((5, 5), np.nan)):
        with pytest.raises(ImageError):
            as_rgb_uint8(bad)


def test_face_cropper_policies(astronaut, tmp_path):
    blank = np.zeros((200, 200, 3), np.uint8)
    # By default a missing face is an error naming the image, never a made-up face.
    with pytest.raises(ValueError, match="1 of 2 image.*no face: image 1; pass on_missing"):
        FaceCropper().transform([astronaut, blank])
    crops, faces = FaceCropper(size=48, on_missing="center").crop([astronaut, blank])
    assert crops.shape == (2, 48, 48) and faces[0] is not None and faces[1] is None
    np.testing.assert_array_equal(crops[1], center_crop(blank, 48))
    with pytest.warns(UserWarning, match="1 of 3 image.*dropped: image 1"):
        crops, faces = FaceCropper(on_missing="drop").crop([astronaut, blank, astronaut])
    assert crops.shape == (2, 48, 48) and [f is None for f in faces] == [False, True, False]
    np.testing.assert_array_equal(crops[0], crops[1])
    two = FaceCropper(upsample=1, threshold=0.0, on_multiple="raise")  # her face and the patch
    with pytest.raises(ValueError, match="2 faces found"):
        two.transform([astronaut])
    # "largest" and "best" both keep her face, not the patch.
    for policy in ("largest", "best"):
        _, f = FaceCropper(upsample=1, threshold=0.0, on_multiple=policy).crop([astronaut])
        assert f[0].box[1] < 200
    path = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    rgb = FaceCropper(grayscale=False).transform([str(path)])
    assert rgb.shape == (1, 48, 48, 3)
    with pytest.raises(ImageError, match="missing.png: no such file"):
        FaceCropper().transform([str(tmp_path / "missing.png")])
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    with pytest.raises(ImageError, match="junk.jpg: not a readable image"):
        FaceCropper().transform([str(tmp_path / "junk.jpg")])
    assert clone(FaceCropper(size=32)).size == 32


def test_frontal_only_filters_turned_faces(astronaut):
    cropper = FaceCropper(frontal_only=True, on_missing="raise")
    assert cropper.transform([astronaut]).shape == (1, 48, 48)
    with pytest.raises(ValueError, match="no frontal face"):
        FaceCropper(frontal_only=True, max_yaw=1.0, max_pitch=1.0,
                    on_missing="raise").transform([astronaut])


def test_cropper_feeds_the_classifier_in_a_pipeline(astronaut):
    from sklearn.pipeline import make_pipeline
    import pandas as pd

    from mtlfaces import MultiTaskFaceClassifier

    imgs = [astronaut, np.ascontiguousarray(astronaut[:, ::-1])] * 4
    y = pd.DataFrame({"gender": ["Female"] * 4 + ["Male"] * 4})
    pipe = make_pipeline(FaceCropper(size=32), MultiTaskFaceClassifier(
        image_size=32, filters=(4,), dense_units=(8,), epochs=1, validation_fraction=0,
        random_state=0))
    pipe.fit(imgs, y)
    assert pipe.predict(imgs[:2]).shape == (2, 1)
