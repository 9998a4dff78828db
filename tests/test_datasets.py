"""Loaders on small fixtures built here, and (when present) the real archives."""

import io
import os
import tarfile
import zipfile

import cv2
import numpy as np
import pandas as pd
import pytest

from mtlfaces import datasets as D

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def _jpg(value=128, size=40):
    img = np.full((size, size, 3), value, np.uint8)
    img[5:15, 5:15] = 255 - value
    return cv2.imencode(".jpg", img)[1].tobytes()


def _png(value=100, size=48):
    img = np.full((size, size), value, np.uint8)
    return cv2.imencode(".png", img)[1].tobytes()


UTK_NAMES = {
    "25_0_2_20170116174525125.jpg.chip.jpg": "ok",
    "3_1_0_20170109150557335.jpg.chip.jpg": "ok",
    "70_1_1_20170112213500903.jpg.chip.jpg": "ok",
    "24_0_1_20170116220224657 .jpg.chip.jpg": "space before .jpg",
    "39_1_20170116174525125.jpg.chip.jpg": "no race",
    "55_0_0_20170116232725357jpg.chip.jpg": "missing dot",
    "abc_0_0_20170116232725357.jpg.chip.jpg": "bad age",
    "30_7_0_20170116232725357.jpg.chip.jpg": "bad gender",
    "31_1_0_20170116232725358.jpg.chip.jpg": "not an image",
}


@pytest.fixture
def utk_tar(tmp_path):
    path = tmp_path / "UTKFace.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name, kind in UTK_NAMES.items():
            data = b"garbage" if kind == "not an image" else _jpg()
            info = tarfile.TarInfo(f"UTKFace/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_utkface_parses_labels_repairs_names_and_reports_skips(utk_tar):
    with pytest.warns(UserWarning, match="skipped 3 file"):
        X, y = D.load_utkface(utk_tar, image_size=32)
    assert X.shape == (6, 32, 32) and X.dtype == np.uint8
    by_age = y.set_index("age_years")
    assert by_age.loc[25, "age"] == "Young" and by_age.loc[25, "gender"] == "Male"
    assert by_age.loc[25, "race"] == "Asian"
    assert by_age.loc[3, "age"] == "Child" and by_age.loc[3, "gender"] == "Female"
    assert by_age.loc[70, "age"] == "Very Old"
    assert by_age.loc[39, "race"] is None and by_age.loc[39, "gender"] == "Female"
    assert {24, 55} <= set(by_age.index)
    assert y["emotion"].isna().all() and (y["source"] == "utkface").all()
    reasons = sorted(s["reason"] for s in y.attrs["skipped"])
    assert reasons == ["unparsable file name", "unparsable file name", "unreadable image"]


def test_decoding_on_threads_leaves_the_warning_filters_as_they_were():
    """The loaders decode on threads, and reading an image's header silences Pillow's
    decompression-bomb warning meanwhile. Threads that did so at once used to leave "ignore"
    in the process's filters, silencing every later warning (the loader's own report of
    skipped files was lost now and then)."""
    import warnings
    from concurrent.futures import ThreadPoolExecutor

    from mtlfaces.images import _header_size

    data = _jpg()
    before = list(warnings.filters)
    for _ in range(8):  # without the lock, 6-13 of 20 such rounds left "ignore" behind
        with ThreadPoolExecutor(4) as pool:
            assert set(pool.map(lambda _: _header_size(data), range(1000))) == {(40, 40)}
        assert warnings.filters == before


def test_utkface_strict_mode_and_missing_path(utk_tar, tmp_path):
    with pytest.raises(D.DatasetError, match="abc"):
        D.load_utkface(utk_tar, strict=True)
    with pytest.raises(D.DatasetError, match="nowhere.tar.gz: no such file"):
        D.load_utkface(tmp_path / "nowhere.tar.gz")


def test_utkface_folder_limit_and_cache(utk_tar, tmp_path):
    with tarfile.open(utk_tar) as tf:
        tf.extractall(tmp_path / "x", filter="data")
    folder = tmp_path / "x" / "UTKFace"
    with pytest.warns(UserWarning):
        X, y = D.load_utkface(folder, image_size=16, grayscale=False, limit=4, random_state=1)
    assert X.shape[1:] == (16, 16, 3) and len(X) <= 4
    cache = tmp_path / "cache"
    with pytest.warns(UserWarning):
        X1, y1 = D.load_utkface(folder, image_size=16, cache_dir=cache)
    X2, y2 = D.load_utkface(folder, image_size=16, cache_dir=cache)  # from cache: no warning
    assert len(list(cache.iterdir())) == 1
    np.testing.assert_array_equal(X1, X2)
    pd.testing.assert_frame_equal(y1.astype(str), y2.astype(str))
    assert len(y2.attrs["skipped"]) == 3


def _fer_csv(rows):
    lines = ["emotion,pixels,Usage"]
    for code, value, usage in rows:
        lines.append(f"{code}," + " ".join([str(value)] * 2304) + f",{usage}")
    return ("\n".join(lines) + "\n").encode()


def test_fer2013_csv_and_archive(tmp_path):
    data = _fer_csv([(0, 10, "Training"), (3, 200, "Training"), (6, 90, "PublicTest"),
                     (1, 50, "PrivateTest")])
    csv = tmp_path / "fer2013.csv"
    csv.write_bytes(data)
    X, y = D.load_fer2013(csv)
    assert X.shape == (4, 48, 48) and X[1].min() == 200
    assert list(y["emotion"]) == ["Angry", "Happy", "Neutral", "Disgust"]
    assert list(y["split"]) == ["Training", "Training", "PublicTest", "PrivateTest"]
    tgz = tmp_path / "fer2013.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        info = tarfile.TarInfo("fer2013/fer2013.csv")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    X2, y2 = D.load_fer2013(tgz, usage="PublicTest", image_size=64, grayscale=False)
    assert X2.shape == (1, 64, 64, 3) and list(y2["emotion"]) == ["Neutral"]
    with pytest.raises(ValueError, match="Validation"):
        D.load_fer2013(csv, usage="Validation")


def test_fer2013_bad_csv_rows_are_named(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels,Usage\n0,1 2 3,Training\n")
    with pytest.raises(D.DatasetError, match="row 2 has 3 pixel values"):
        D.load_fer2013(bad)
    code = tmp_path / "code.csv"
    code.write_bytes(_fer_csv([(9, 1, "Training")]))
    with pytest.raises(D.DatasetError, match="emotion code 9"):
        D.load_fer2013(code)


def test_fer2013_folder_layout_zip(tmp_path):
    path = tmp_path / "fer_folders.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("train/angry/Training_1.jpg", _png(10))
        zf.writestr("train/happy/Training_2.jpg", _png(20))
        zf.writestr("test/sad/PublicTest_3.jpg", _png(30))
        zf.writestr("test/surprise/PrivateTest_4.jpg", _png(40))
        zf.writestr("test/neutral/im5.png", _png(50))
        zf.writestr("test/neutral/broken.png", b"nope")
    with pytest.warns(UserWarning, match="skipped 1"):
        X, y = D.load_fer2013(path)
    assert len(X) == 5
    got = dict(zip(y["emotion"], y["split"]))
    assert got == {"Angry": "Training", "Happy": "Training", "Sad": "PublicTest",
                   "Surprise": "PrivateTest", "Neutral": "Test"}


def test_ckplus_zip_contempt_and_subjects(tmp_path):
    path = tmp_path / "CK+48.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("CK+48/anger/S010_004_00000017.png", _png())
        zf.writestr("CK+48/sadness/S011_002_00000021.png", _png())
        zf.writestr("CK+48/contempt/S138_008_00000007.png", _png())
        zf.writestr("CK+48/surprise/S005_001_00000009.png", _png())
    X, y = D.load_ckplus(path)
    assert len(X) == 3 and "Contempt" not in set(y["emotion"])
    assert dict(zip(y["subject"], y["emotion"])) == {"S010": "Angry", "S011": "Sad",
                                                      "S005": "Surprise"}
    X2, y2 = D.load_ckplus(path, include_contempt=True)
    assert len(X2) == 4 and "Contempt" in set(y2["emotion"])


def test_csv_round_trip_and_bad_rows(tmp_path, utk_tar):
    with pytest.warns(UserWarning):
        X, y = D.load_utkface(utk_tar, image_size=32)
    out = tmp_path / "set" / "train.csv"
    D.write_csv(X, y, out)
    table = pd.read_csv(out)
    assert list(table.columns) == D.CSV_COLUMNS and len(table) == len(X)
    X2, y2 = D.load_csv(out, image_size=32)
    np.testing.assert_array_equal(X2, X)
    assert list(y2["age"]) == list(y["age"]) and list(y2["gender"]) == list(y["gender"])
    # Bad rows: an unknown label and a missing file are skipped and reported.
    table.loc[0, "gender"] = "robot"
    table.loc[1, "image"] = "images/nothing.png"
    table.to_csv(out, index=False)
    with pytest.warns(UserWarning, match="skipped 2"):
        X3, _ = D.load_csv(out, image_size=32)
    assert len(X3) == len(X) - 2
    with pytest.raises(D.DatasetError, match=r"line 2: 'robot'"):
        D.load_csv(out, strict=True)


def test_sample_dataset_csv_ships_loads_and_is_what_its_recipe_writes(tmp_path):
    from .conftest import load_script

    root = os.path.join(os.path.dirname(__file__), "..")
    path = os.path.join(root, "sample_dataset.csv")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert {"image", "age", "gender", "emotion", "source", "split"} <= set(table.columns)
    assert (table["age"] == "").any() and table["age"].str.isdigit().any()
    assert table["age"].isin(["Child", "Young", "Middle Age", "Old", "Very Old"]).any()
    assert {"train", "validation"} == set(table["split"])
    for col in ("age", "gender", "emotion"):
        for value in table[col]:
            from mtlfaces.tasks import normalize_label

            normalize_label(col, value)  # every label is valid
    X, y = D.load_csv(path)  # every image is there: nothing skipped
    assert len(X) == len(table) == 24
    recipe = load_script("recipes", "sample_dataset")
    recipe.write_sample(str(tmp_path))
    assert (tmp_path / "sample_dataset.csv").read_text() == open(path).read()
    for name in table["image"]:
        assert (tmp_path / name).read_bytes() == open(os.path.join(root, name), "rb").read()


def test_a_csv_whose_images_are_missing_names_them(tmp_path):
    (tmp_path / "t.csv").write_text("image,age\nnope/a.png,30\nnope/b.png,40\n")
    with pytest.raises(D.DatasetError, match=r"missing image file: nope/a.png, nope/b.png"):
        D.load_csv(tmp_path / "t.csv")


def test_hash_holdout_is_stable_and_sized():
    keys = [f"{i}_0_0_2017.jpg.chip.jpg" for i in range(5000)]
    mask = D.hash_holdout(keys, 0.15)
    assert 0.13 < mask.mean() < 0.17
    np.testing.assert_array_equal(D.hash_holdout(keys[::-1], 0.15), mask[::-1])


@pytest.mark.slow  # reads every face of the three archives (about 13 s): opt-in
@pytest.mark.shared_data
@pytest.mark.skipif(not os.path.isdir(SHARED), reason="../shared/data not present")
def test_real_archives_counts():
    X, y = D.load_utkface(os.path.join(SHARED, "UTKFace.tar.gz"), image_size=16)
    assert len(X) == 19026
    X, y = D.load_fer2013(os.path.join(SHARED, "fer2013.tar.gz"))
    assert (y["split"] == "Training").sum() == 28561
    assert (y["split"] == "PublicTest").sum() == 3579
    assert len(D.load_ckplus(os.path.join(SHARED, "CK+48.zip"))[0]) == 927
    assert len(D.load_ckplus(os.path.join(SHARED, "CK+48.zip"), include_contempt=True)[0]) == 981


def test_recrop_through_the_face_cropper(tmp_path, astronaut):
    from mtlfaces import FaceCropper

    folder = tmp_path / "UTKFace"
    folder.mkdir()
    bgr = cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(folder / "40_1_0_20170116174525125.jpg.chip.jpg"), bgr)
    cv2.imwrite(str(folder / "41_1_0_20170116174525126.jpg.chip.jpg"), bgr[:, ::-1])
    cv2.imwrite(str(folder / "42_0_0_20170116174525127.jpg.chip.jpg"),
                np.full((200, 200, 3), 128, np.uint8))  # no face: skipped
    with pytest.warns(UserWarning, match="1 no face found by the cropper"):
        X, y = D.load_utkface(folder, image_size=40, crop=FaceCropper(frontal_only=True))
    assert X.shape == (2, 40, 40) and sorted(y["age_years"]) == [40, 41]
    # The re-cropped face is the aligned crop, not the whole photo squeezed.
    first = str(folder / "40_1_0_20170116174525125.jpg.chip.jpg")
    expected = FaceCropper(size=40, frontal_only=True).transform([first])[0].astype(int)
    got = X[list(y["age_years"]).index(40)].astype(int)
    squeezed = cv2.resize(cv2.imread(first, cv2.IMREAD_GRAYSCALE), (40, 40),
                          interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(got - expected).mean() < 2 < np.abs(got - squeezed).mean()


def test_validation_mask_is_the_same_fixed_split_for_every_source():
    # Rows as the three loaders and load_csv return them, mixed in one frame.
    names = [f"{i}_0_0_2017{i:05d}.jpg.chip.jpg" for i in range(400)]
    utk = pd.DataFrame({"path": [f"UTKFace.tar.gz::UTKFace/{n}" for n in names],
                        "source": "utkface", "split": None})
    fer = pd.DataFrame({"source": "fer2013", "split": ["Training", "PublicTest"] * 5})
    ck = pd.DataFrame({"subject": [f"S{i // 4:03d}" for i in range(200)], "source": "ckplus",
                       "split": None})
    csv = pd.DataFrame({"source": "utkface", "split": ["train", "validation", "train"]})
    y = pd.concat([utk, fer, ck, csv], ignore_index=True)
    mask = D.validation_mask(y)
    assert mask.dtype == bool and mask.shape == (len(y),)
    np.testing.assert_array_equal(mask[:400], D.utkface_validation_mask(utk))
    np.testing.assert_array_equal(mask[400:410], fer["split"] == "PublicTest")
    np.testing.assert_array_equal(mask[410:610], D.ckplus_validation_mask(ck))
    np.testing.assert_array_equal(mask[610:], [False, True, False])
    # A CK+ subject is held out whole; the split does not depend on the other rows.
    ck_mask = mask[410:610].reshape(-1, 4)
    assert (ck_mask.all(axis=1) | ~ck_mask.any(axis=1)).all() and ck_mask.any()
    np.testing.assert_array_equal(D.validation_mask(y.iloc[::-1])[::-1], mask)
    with pytest.raises(TypeError, match="DataFrame"):
        D.validation_mask(np.zeros(3))


def test_validation_mask_survives_build_dataset_csv_round_trip(tmp_path):
    """write_csv renames the images, so a CSV row's split column, not its path, decides."""
    names = [f"{20 + i % 50}_{i % 2}_0_2017{i:05d}.jpg.chip.jpg" for i in range(80)]
    y = pd.DataFrame({"age": [20 + i % 50 for i in range(80)],
                      "gender": ["Male", "Female"] * 40, "emotion": None, "source": "utkface",
                      "split": None, "path": [f"UTKFace.tar.gz::UTKFace/{n}" for n in names]})
    mask = D.validation_mask(y)
    assert 0 < mask.sum() < 80
    y = y.assign(split=np.where(mask, "validation", "train"))  # as build-dataset does
    X = np.full((80, 8, 8), 100, np.uint8)
    D.write_csv(X, y, tmp_path / "train.csv")
    _, back = D.load_csv(tmp_path / "train.csv", image_size=8)
    assert not back["path"].str.contains("chip").any()  # the file names are gone
    np.testing.assert_array_equal(D.validation_mask(back), mask)
