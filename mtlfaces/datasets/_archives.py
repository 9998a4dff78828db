"""Reading dataset files (folders, zip and tar archives), decoding and resizing their images, and building the label frames every loader returns."""

import os
import tarfile
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..images import IMAGE_EXTENSIONS, resize_square
from ..tasks import normalize_label


COLUMNS = ["age", "gender", "emotion", "age_years", "race", "subject", "split", "source", "path"]


class DatasetError(ValueError):
    """A dataset path is missing, unreadable or not in the expected layout."""


# --------------------------------------------------------------------- reading
def _is_image_name(name):
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _archive_kind(path):
    low = path.lower()
    if os.path.isdir(path):
        return "dir"
    if low.endswith(".zip"):
        return "zip"
    if low.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return "tar"
    return "file"


def _check_exists(path, what):
    if not os.path.exists(path):
        raise DatasetError(f"{path}: no such file or folder (expected {what})")


def _iter_members(path, keep):
    """Yield (member name, bytes) for files under a folder, zip or tar whose name passes ``keep``."""
    kind = _archive_kind(path)
    try:
        if kind == "dir":
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for f in sorted(files):
                    full = os.path.join(root, f)
                    rel = os.path.relpath(full, path).replace(os.sep, "/")
                    if keep(rel):
                        with open(full, "rb") as fh:
                            yield rel, fh.read()
        elif kind == "zip":
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if not info.is_dir() and keep(info.filename):
                        yield info.filename, zf.read(info)
        elif kind == "tar":
            with tarfile.open(path) as tf:
                for member in tf:
                    if member.isfile() and keep(member.name):
                        yield member.name, tf.extractfile(member).read()
        else:
            raise DatasetError(f"{path}: expected a folder, .zip or .tar.gz archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise DatasetError(f"{path}: archive unreadable ({type(exc).__name__}: {exc})") from None


def _member_path(path, name):
    """How a file inside a dataset is named in ``y["path"]`` (``archive::member`` for archives)."""
    return os.path.join(path, name) if _archive_kind(path) == "dir" else f"{path}::{name}"


def _emotion_from_folder(name, skipped):
    """The emotion named by a member's parent folder, or None (recorded in ``skipped``)."""
    parts = name.replace("\\", "/").split("/")
    folder = parts[-2] if len(parts) >= 2 else ""
    try:
        return normalize_label("emotion", folder)
    except ValueError:
        skipped.append({"path": name, "reason": "folder is not an emotion class",
                        "detail": folder})
        return None


def decode_image(data, image_size, grayscale, name="<bytes>"):
    """Decode encoded image bytes into a uint8 (size, size[, 3]) array; raises DatasetError."""
    import cv2

    from ..images import MAX_PIXELS, ImageError, _header_size, check_pixels

    buf = np.frombuffer(data, dtype=np.uint8)
    size = _header_size(data) if buf.size else None
    if size is not None:
        try:
            check_pixels(size[0], size[1], MAX_PIXELS, name)
        except ImageError as exc:
            raise DatasetError(str(exc)) from None
    # Both flags apply the EXIF orientation, as mtlfaces.images.read_image does.
    flag = cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_COLOR
    img = cv2.imdecode(buf, flag) if buf.size else None
    if img is None:
        raise DatasetError(f"{name}: not a readable image")
    if not grayscale:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return resize_uint8(img, image_size)


def resize_uint8(img, image_size):
    """Resize one uint8 image to a square of side ``image_size`` (None: as it is), with
    :func:`mtlfaces.images.resize_square`."""
    return img if image_size is None else resize_square(img, image_size)


def _decode_all(items, image_size, grayscale, strict, n_jobs=2, crop=None):
    """Decode [(name, bytes)] in threads (OpenCV releases the GIL).

    With ``crop`` (a :class:`~mtlfaces.FaceCropper`), each image is decoded at full
    resolution and re-cropped by it (detect, align, crop to ``image_size``); images
    where it finds no (frontal) face are skipped. Returns (images, ok mask, skipped
    entries).
    """
    if crop is not None:
        crop = crop.__class__(**{**crop.get_params(), "size": image_size,
                                 "grayscale": grayscale, "on_missing": "raise"})

    def one(item):
        name, data = item
        try:
            if crop is None:
                return decode_image(data, image_size, grayscale, name), None
            full = decode_image(data, None, False, name)
            return crop.transform([full])[0], None
        except DatasetError as exc:
            return None, {"path": name, "reason": "unreadable image", "detail": str(exc)}
        except ValueError as exc:  # the cropper found no (frontal) face
            return None, {"path": name, "reason": "no face found by the cropper",
                          "detail": str(exc)}

    # dlib's detector and shape predictor are not thread-safe (concurrent calls
    # crashed the process): re-cropping runs in one thread.
    workers = 1 if crop is not None else max(1, n_jobs)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, items))
    skipped = [entry for _, entry in results if entry]
    unreadable = [e for e in skipped if e["reason"] == "unreadable image"]
    if unreadable and strict:
        more = f" (and {len(unreadable) - 1} more)" if len(unreadable) > 1 else ""
        raise DatasetError(unreadable[0]["detail"] + more)
    ok = np.array([img is not None for img, _ in results], dtype=bool)
    shape = (image_size, image_size) if grayscale else (image_size, image_size, 3)
    images = np.stack([img for img, _ in results if img is not None]) if ok.any() \
        else np.empty((0,) + shape, dtype=np.uint8)
    return images, ok, skipped


def _frame(rows):
    import pandas as pd

    df = pd.DataFrame(rows)
    for col in COLUMNS:
        if col not in df.columns:
            df[col] = None
    df = df[COLUMNS + [c for c in df.columns if c not in COLUMNS]]
    for col in ("age", "gender", "emotion", "race", "subject", "split", "source", "path"):
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    return df.reset_index(drop=True)


def _report(df, skipped, source):
    df.attrs["skipped"] = skipped
    if skipped:
        reasons = {}
        for item in skipped:
            reasons[item["reason"]] = reasons.get(item["reason"], 0) + 1
        summary = "; ".join(f"{n} {r}" for r, n in reasons.items())
        warnings.warn(f"{source}: skipped {len(skipped)} file(s): {summary}", stacklevel=3)


def _subset(n, limit, random_state):
    """Indices of the rows to keep (all, or a seeded random subset of ``limit``)."""
    if limit is None or limit >= n:
        return np.arange(n)
    if limit < 1:
        raise ValueError(f"limit={limit!r} must be a positive integer")
    rng = np.random.RandomState(random_state)
    return np.sort(rng.choice(n, size=int(limit), replace=False))


# ------------------------------------------------------------------- splits
def with_age_in_years(y):
    """``y`` with its ``age`` column in years wherever ``age_years`` knows them.

    The loaders give ``age`` as a group name and keep exact ages in ``age_years``
    (UTKFace, numeric CSV ages); :class:`~mtlfaces.MultiTaskFaceClassifier`'s
    ``age_sigma`` needs the years. Rows without ``age_years`` keep their ``age``.
    Raises ValueError when ``y`` has no age in years at all.
    """
    years = y["age_years"] if "age_years" in y.columns else None
    if years is None or years.isna().all():
        raise ValueError("no age label is in years (y has no age_years values); soft age "
                         "targets need ages in years")
    age = y["age"].to_numpy(dtype=object).copy()  # missing labels stay None
    known = years.notna().to_numpy()
    age[known] = years.to_numpy(dtype=float)[known]
    return y.assign(age=age)
