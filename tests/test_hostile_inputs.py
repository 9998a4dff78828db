"""Odd arrays, images and videos: the same image gets the same answer, or a clear error.

Each test is one finding of the hardening issue, built here from ``skimage.data``.
"""

import struct
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skimage import data

from mtlfaces import FaceCropper, detect_faces
from mtlfaces.faces import DEFAULT_THRESHOLD
from mtlfaces.images import ImageError, as_rgb_uint8, read_image
from mtlfaces.pipeline import Analyzer, expand
from mtlfaces.video import VideoError, VideoReader


# ------------------------------------------------------------------ arrays
@pytest.mark.parametrize("shape", [(32, 32, 3), (32, 32, 1), (32, 32, 4)])
def test_one_image_is_not_read_as_a_batch_of_rows(fitted, shape):
    one = np.random.RandomState(0).randint(0, 255, shape).astype(np.uint8)
    with pytest.raises(ImageError, match=r"X\[np.newaxis\]"):
        fitted.predict(one)
    assert fitted.predict(one[np.newaxis]).shape == (1, len(fitted.tasks_))


def test_the_cropper_refuses_one_image_as_a_batch(astronaut):
    with pytest.raises(ImageError, match=r"pass \[image\]"):
        FaceCropper().transform(astronaut)
    assert FaceCropper().transform([astronaut]).shape == (1, 48, 48)


def _as(image_u8, kind):
    """The same picture in another dtype and scale."""
    if kind == "uint8":
        return image_u8
    if kind == "uint16":
        return image_u8.astype(np.uint16) * 257
    if kind == "int32 8-bit":
        return image_u8.astype(np.int32)
    if kind == "int64 16-bit":
        return image_u8.astype(np.int64) * 257
    if kind == "float [0, 1]":
        return image_u8.astype(np.float64) / 255
    if kind == "float [0, 255]":
        return image_u8.astype(np.float32)
    raise AssertionError(kind)


KINDS = ["uint8", "uint16", "int32 8-bit", "int64 16-bit", "float [0, 1]", "float [0, 255]"]


def test_wide_integers_holding_16_bit_values_are_scaled_not_saturated(fitted, shapes_test):
    X = shapes_test[0][:4]
    expected = fitted.predict_proba(X)
    got = fitted.predict_proba(_as(X, "int64 16-bit"))
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, atol=1e-5)
        assert g.max() < 1.0 - 1e-6 or e.max() >= 1.0 - 1e-6  # not saturated to certainty
    img = _as(data.astronaut(), "int64 16-bit")
    np.testing.assert_array_equal(as_rgb_uint8(img), data.astronaut())
    with pytest.raises(ValueError, match="8-bit .* or 16-bit"):
        fitted.predict(np.full((1, 32, 32), 70000, np.int64))
    with pytest.raises(ImageError, match="from -1 to"):
        as_rgb_uint8(np.full((8, 8), -1, np.int32))
    with pytest.raises(ImageError, match=r"must be in \[0, 1\] or \[0, 255\]"):
        as_rgb_uint8(np.full((8, 8), 1000.0))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(KINDS), min_size=2, max_size=6),
       pick=st.integers(0, 10**6))
def test_an_images_answer_does_not_depend_on_its_batch(fitted, shapes_test, kinds, pick):
    """The scale is decided per image: mixing dtypes and ranges in one batch (as a list
    of arrays converted to one float array) changes nobody's answer."""
    X = shapes_test[0]
    rows = [(pick + 7 * i) % len(X) for i in range(len(kinds))]
    batch = np.stack([_as(X[r], k).astype(np.float64) for r, k in zip(rows, kinds)])
    together = fitted.predict_proba(batch)
    for i, (r, k) in enumerate(zip(rows, kinds)):
        alone = fitted.predict_proba(_as(X[r], k).astype(np.float64)[np.newaxis])
        for t, a in zip(together, alone):
            np.testing.assert_allclose(t[i], a[0], atol=1e-5, err_msg=f"{k} in {kinds}")


# -------------------------------------------------------- missing faces
def test_a_photo_with_no_face_never_becomes_a_made_up_face():
    coffee = data.coffee()
    assert FaceCropper().threshold == DEFAULT_THRESHOLD == 0.2
    with pytest.raises(ValueError, match="1 of 1 image.*no face: image 0"):
        FaceCropper().transform([coffee])
    with pytest.warns(UserWarning, match="dropped: image 0"):
        crops, faces = FaceCropper(on_missing="drop").crop([coffee])
    assert crops.shape == (0, 48, 48) and faces == [None]


# ---------------------------------------------------------------- images
def test_exif_orientation_is_applied(astronaut, tmp_path):
    from PIL import Image

    sideways = np.ascontiguousarray(np.rot90(astronaut))  # as a phone stores a portrait
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "portrait.jpg"
    Image.fromarray(sideways).save(path, exif=exif, quality=95)
    assert detect_faces(sideways) == []  # as stored, dlib sees no face
    upright = read_image(path)
    assert upright.shape == astronaut.shape
    assert np.abs(upright.astype(int) - astronaut).mean() < 4
    assert len(detect_faces(path)) == 1


def _png_header_only(path, width, height):
    """A PNG whose header declares width × height and whose pixel data is cut off."""
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))
    return path


def test_images_over_the_pixel_limit_are_refused_before_decoding(tmp_path, astronaut):
    bomb = _png_header_only(tmp_path / "bomb.png", 20000, 20000)
    with pytest.raises(ImageError, match="bomb.png: .*400,000,000 pixels.*"
                                         "max_pixels"):
        read_image(bomb)
    small = tmp_path / "astronaut.png"
    cv2.imwrite(str(small), astronaut)
    with pytest.raises(ImageError, match="over the limit of 1,000"):
        read_image(small, max_pixels=1000)
    assert read_image(small, max_pixels=None).shape == (512, 512, 3)


def test_native_decoder_lines_end_up_in_the_message_not_on_stderr(tmp_path, astronaut, capfd):
    ok, png = cv2.imencode(".png", astronaut)
    cut = tmp_path / "cut.png"
    cut.write_bytes(png.tobytes()[: len(png) // 2])
    with pytest.raises(ImageError, match="cut.png: not a readable image.*libpng"):
        read_image(cut)
    assert capfd.readouterr().err == ""


def test_a_small_face_in_a_large_photo_is_found_at_full_resolution(astronaut):
    # The astronaut's face, about 90 px, in a 4000×3000 photo: shrunk to 1024 px it would be
    # 23 px, far under the HOG detector's 80.
    photo = np.full((3000, 4000, 3), 110, np.uint8)
    photo[1500:1840, 2000:2340] = cv2.resize(astronaut, (340, 340), interpolation=cv2.INTER_AREA)
    faces = detect_faces(photo, crop_size=None)
    assert len(faces) == 1 and 2000 < faces[0].box[0] < 2340
    assert detect_faces(photo, crop_size=None, max_side=1024) == []


def test_a_shrunk_detection_is_reported(fitted, astronaut):
    big = cv2.resize(astronaut, (1024, 1024))
    frame = Analyzer(fitted, readout=False, max_side=512).image(big)
    assert frame.scale == 0.5 and len(frame.faces) == 1
    assert Analyzer(fitted, readout=False).image(astronaut).scale == 1.0


# ---------------------------------------------------------------- videos
def _avi(path, frames=60):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    for i in range(frames):
        writer.write(np.full((120, 160, 3), 4 * i, np.uint8))
    writer.release()
    return path


def test_a_truncated_video_is_a_short_read_not_a_quiet_success(tmp_path):
    whole = _avi(tmp_path / "whole.avi").read_bytes()
    half = tmp_path / "half.avi"
    half.write_bytes(whole[: len(whole) // 2])
    reader = VideoReader(str(half))
    assert reader.frame_count == 60
    seen = []
    with pytest.raises(VideoError, match=r"half.avi: truncated: \d+ of the 60 frames"):
        for index, _, _ in reader:
            seen.append(index)
    assert 0 < len(seen) < 60
    assert sum(1 for _ in VideoReader(str(tmp_path / "whole.avi"))) == 60


def test_videos_inside_folders_are_inputs(tmp_path, astronaut):
    cv2.imwrite(str(tmp_path / "a.png"), astronaut)
    _avi(tmp_path / "clip.avi", frames=3)
    (tmp_path / "notes.txt").write_text("x")
    assert [(i.kind, i.name.split("/")[-1]) for i in expand(tmp_path)] == [
        ("image", "a.png"), ("video", "clip.avi")]
