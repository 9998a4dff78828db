"""Loaders for the public face datasets, in the layouts they are published in.

Every loader returns ``(X, y)``: X a uint8 array (n, size, size) for grayscale or
(n, size, size, 3) for colour, and y a DataFrame whose ``age``, ``gender`` and
``emotion`` columns use the classifier's vocabulary (None = no label), plus
metadata columns ``path``, ``split``, ``source`` and, where the dataset has them,
``age_years``, ``race``, ``subject``. ``y.attrs["skipped"]`` lists what was left
out and why; a warning says how many.
"""

import hashlib
import io
import json
import os
import re
import tarfile
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .images import IMAGE_EXTENSIONS
from .tasks import AGE_GROUPS, FER2013_EMOTION_CODES, UTKFACE_GENDER_CODES, age_to_group, normalize_label

UTKFACE_RACES = {0: "White", 1: "Black", 2: "Asian", 3: "Indian", 4: "Others"}
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

    buf = np.frombuffer(data, dtype=np.uint8)
    flag = cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_COLOR
    img = cv2.imdecode(buf, flag) if buf.size else None
    if img is None:
        raise DatasetError(f"{name}: not a readable image")
    if not grayscale:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return resize_uint8(img, image_size)


def resize_uint8(img, image_size):
    """Resize one uint8 image to a square of side ``image_size`` (area filter when shrinking)."""
    import cv2

    if image_size is None or img.shape[:2] == (image_size, image_size):
        return img
    interp = cv2.INTER_AREA if min(img.shape[:2]) >= image_size else cv2.INTER_LINEAR
    return cv2.resize(img, (image_size, image_size), interpolation=interp)


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


# ------------------------------------------------------------------- caching
def _cache_path(cache_dir, source, path, params):
    st = os.stat(path)
    key = json.dumps({"path": os.path.abspath(path), "size": st.st_size, "mtime": st.st_mtime,
                      "params": params, "v": 2}, sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    return os.path.join(cache_dir, f"{source}-{digest}.npz")


def _cached(loader):
    """Wrap a loader so ``cache_dir=`` stores (X, y) as .npz keyed by source and parameters."""
    import functools

    @functools.wraps(loader)
    def wrapper(path, *args, cache_dir=None, **kwargs):
        if cache_dir is None:
            return loader(path, *args, **kwargs)
        import pandas as pd

        path = os.fspath(path)
        _check_exists(path, "a dataset")
        cache = _cache_path(cache_dir, loader.__name__, path, [args, sorted(kwargs.items())])
        if os.path.exists(cache):
            with np.load(cache, allow_pickle=False) as npz:
                X = npz["X"]
                y = pd.read_json(io.StringIO(str(npz["y"])), orient="split", dtype=False)
                y = y.astype(object).where(y.notna(), None)
                skipped = json.loads(str(npz["skipped"]))
            y.attrs["skipped"] = skipped
            return X, y
        X, y = loader(path, *args, **kwargs)
        os.makedirs(cache_dir, exist_ok=True)
        tmp = cache + ".tmp.npz"
        np.savez(tmp, X=X, y=y.to_json(orient="split"),
                 skipped=json.dumps(y.attrs.get("skipped", [])))
        os.replace(tmp, cache)
        return X, y

    return wrapper


# ------------------------------------------------------------------- UTKFace
_UTK_SUFFIX = re.compile(r"\.?jpg\.chip\.jpg$|\.jpg$|\.png$", re.IGNORECASE)


def parse_utkface_name(name):
    """Parse a UTKFace file name into ``{age_years, gender, race}``.

    Handles the malformed names of the real release: a space before ``.jpg``, a
    missing dot before ``jpg.chip.jpg``, and a missing race field (race None).

    Raises
    ------
    ValueError
        With the reason, when age or gender cannot be read.
    """
    base = os.path.basename(name)
    stem = _UTK_SUFFIX.sub("", base).strip()
    parts = [p.strip() for p in stem.split("_")]
    if len(parts) not in (3, 4):
        raise ValueError(f"{base}: expected <age>_<gender>_<race>_<datetime>")
    if not parts[0].isdigit():
        raise ValueError(f"{base}: age {parts[0]!r} is not a number")
    age = int(parts[0])
    if not 0 <= age <= 130:
        raise ValueError(f"{base}: age {age} is out of range")
    if parts[1] not in ("0", "1"):
        raise ValueError(f"{base}: gender {parts[1]!r} is not 0 or 1")
    race = None
    if len(parts) == 4:
        if parts[2] not in ("0", "1", "2", "3", "4"):
            raise ValueError(f"{base}: race {parts[2]!r} is not 0-4")
        race = UTKFACE_RACES[int(parts[2])]
    return {"age_years": age, "gender": UTKFACE_GENDER_CODES[int(parts[1])], "race": race}


@_cached
def load_utkface(path, image_size=64, grayscale=True, limit=None, random_state=None,
                 strict=False, n_jobs=2, crop=None):
    """Load UTKFace (aligned & cropped) from its folder or ``.tar.gz``.

    Parameters
    ----------
    path : str or path-like
        The ``UTKFace`` folder, a folder above it, or ``UTKFace.tar.gz``.
    image_size : int, default=64
        Side of the square output images.
    grayscale : bool, default=True
    limit : int, optional
        Load a seeded random subset of this many images.
    random_state : int, optional
        Seed for ``limit``.
    strict : bool, default=False
        Raise on the first unreadable image or unparsable name instead of skipping it.
    n_jobs : int, default=2
        Decoding threads.
    crop : FaceCropper, optional
        Re-crop every image through this cropper (dlib detection and alignment,
        optionally ``frontal_only=True``), as the reference pipeline did; images
        where it finds no face are skipped and reported. Its ``size`` and
        ``grayscale`` are replaced by ``image_size`` and ``grayscale``.
    cache_dir : str, optional
        Store the decoded arrays here (keyed by path, size, mtime and parameters);
        a second call with the same arguments loads them in a fraction of a second.

    Returns
    -------
    X : ndarray of uint8
    y : DataFrame
        ``age`` (group), ``gender``, ``emotion`` (None), ``age_years``, ``race``,
        ``split`` (None: hold out a part yourself), ``source`` ("utkface"), ``path``.
    """
    path = os.fspath(path)
    _check_exists(path, "the UTKFace folder or UTKFace.tar.gz")
    rows, items, skipped = [], [], []
    for name, data in _iter_members(path, _is_image_name):
        try:
            info = parse_utkface_name(name)
        except ValueError as exc:
            if strict:
                raise DatasetError(f"{path}: {exc}") from None
            skipped.append({"path": name, "reason": "unparsable file name", "detail": str(exc)})
            continue
        base = os.path.basename(name)
        if not re.fullmatch(r"\d+_[01]_[0-4]_\d+\.jpg\.chip\.jpg", base):
            info["name_repaired"] = True
        rows.append({"age": age_to_group(info["age_years"]), "gender": info["gender"],
                     "emotion": None, "age_years": info["age_years"], "race": info["race"],
                     "split": None, "source": "utkface", "path": _member_path(path, name),
                     "name_repaired": info.get("name_repaired", False)})
        items.append((name, data))
    if not rows:
        raise DatasetError(f"{path}: no UTKFace images found (expected <age>_<gender>_<race>_"
                           "<datetime>.jpg.chip.jpg files)")
    keep = _subset(len(rows), limit, random_state)
    rows = [rows[i] for i in keep]
    items = [items[i] for i in keep]
    X, ok, bad = _decode_all(items, image_size, grayscale, strict, n_jobs, crop)
    skipped += bad
    df = _frame([r for r, good in zip(rows, ok) if good])
    _report(df, skipped, path)
    return X, df


# ------------------------------------------------------------------- FER2013
_FER_SPLITS = {"training": "Training", "publictest": "PublicTest", "privatetest": "PrivateTest"}
_FER_FOLDER_SPLITS = {"train": "Training", "training": "Training", "test": "Test",
                      "val": "PublicTest", "validation": "PublicTest",
                      "publictest": "PublicTest", "privatetest": "PrivateTest"}


def _parse_fer_pixels(pixels, source):
    """Vectorised parse of FER2013's space-separated pixel strings → (n, 48, 48) uint8."""
    counts = np.array([s.count(" ") + 1 for s in pixels])
    bad = np.flatnonzero(counts != 48 * 48)
    text = " ".join(pixels)
    values = np.fromstring(text, dtype=np.int32, sep=" ")
    if bad.size or values.size != len(pixels) * 2304:
        row = int(bad[0]) if bad.size else -1
        raise DatasetError(f"{source}: row {row + 2} has {counts[row]} pixel values, expected 2304")
    if values.min(initial=0) < 0 or values.max(initial=0) > 255:
        raise DatasetError(f"{source}: pixel values outside 0-255")
    return values.astype(np.uint8).reshape(-1, 48, 48)


def _load_fer_csv(fh, source):
    import pandas as pd

    try:
        df = pd.read_csv(fh, dtype={"emotion": "Int64", "pixels": str, "Usage": str})
    except Exception as exc:
        raise DatasetError(f"{source}: not a readable FER2013 CSV ({exc})") from None
    missing = {"emotion", "pixels"} - set(df.columns)
    if missing:
        raise DatasetError(f"{source}: missing column(s) {sorted(missing)}; "
                           "expected the original emotion,pixels,Usage header")
    images = _parse_fer_pixels(df["pixels"].tolist(), source)
    codes = df["emotion"].to_numpy()
    emotions = []
    for i, code in enumerate(codes):
        if pd.isna(code) or int(code) not in FER2013_EMOTION_CODES:
            raise DatasetError(f"{source}: row {i + 2} has emotion code {code}, expected 0-6")
        emotions.append(FER2013_EMOTION_CODES[int(code)])
    usage = df["Usage"] if "Usage" in df.columns else pd.Series([None] * len(df))
    splits = [_FER_SPLITS.get(str(u).strip().lower(), str(u)) if isinstance(u, str) else None
              for u in usage]
    return images, emotions, splits


def _fer_split_from_name(name):
    parts = name.replace("\\", "/").split("/")
    prefix = parts[-1].split("_")[0].lower()
    if prefix in _FER_SPLITS:
        return _FER_SPLITS[prefix]
    for part in reversed(parts[:-2]):
        if part.lower() in _FER_FOLDER_SPLITS:
            return _FER_FOLDER_SPLITS[part.lower()]
    return None


@_cached
def load_fer2013(path, image_size=48, grayscale=True, usage=None, limit=None,
                 random_state=None, strict=False, n_jobs=2):
    """Load FER2013 from the original CSV or the per-class folder layout.

    Parameters
    ----------
    path : str or path-like
        ``fer2013.csv``; a ``.tar.gz``/``.zip``/folder holding it; or the folder
        layout ``train/<class>/*.jpg`` + ``test/<class>/*.jpg`` (folder or zip).
    image_size : int, default=48
        FER2013 images are 48×48; other sizes are resized.
    grayscale : bool, default=True
        False repeats the gray channel three times.
    usage : str or sequence of str, optional
        Keep only these splits (``"Training"``, ``"PublicTest"``, ``"PrivateTest"``,
        and ``"Test"`` for the folder layout's undivided test folder).
    limit, random_state, strict, n_jobs, cache_dir
        As in :func:`load_utkface`.

    Returns
    -------
    X : ndarray of uint8
    y : DataFrame
        ``emotion`` labelled, ``age`` and ``gender`` None, ``split`` from the CSV's
        Usage column or the file-name prefix / folder.
    """
    path = os.fspath(path)
    _check_exists(path, "fer2013.csv, an archive holding it, or train/ and test/ class folders")
    kind = _archive_kind(path)
    skipped = []
    if kind == "file" or (kind != "dir" and path.lower().endswith(".csv")):
        with open(path, "rb") as fh:
            images, emotions, splits = _load_fer_csv(fh, path)
        names = [f"{path}#row{i + 2}" for i in range(len(emotions))]
    else:
        csv_member = None
        image_items = []
        for name, data in _iter_members(path, lambda n: n.lower().endswith(".csv")
                                        or _is_image_name(n)):
            if name.lower().endswith("fer2013.csv") or (name.lower().endswith(".csv")
                                                        and csv_member is None):
                csv_member = (name, data)
            elif _is_image_name(name):
                image_items.append((name, data))
        if csv_member is not None:
            images, emotions, splits = _load_fer_csv(io.BytesIO(csv_member[1]),
                                                     f"{path}::{csv_member[0]}")
            names = [f"{path}::{csv_member[0]}#row{i + 2}" for i in range(len(emotions))]
        elif image_items:
            images, emotions, splits, names = [], [], [], []
            decodable = []
            for name, data in image_items:
                emotion = _emotion_from_folder(name, skipped)
                if emotion is None:
                    continue
                decodable.append((name, data))
                emotions.append(emotion)
                splits.append(_fer_split_from_name(name))
                names.append(_member_path(path, name))
            X, ok, bad = _decode_all(decodable, 48, True, strict, n_jobs)
            skipped += bad
            emotions = [e for e, g in zip(emotions, ok) if g]
            splits = [s for s, g in zip(splits, ok) if g]
            names = [n for n, g in zip(names, ok) if g]
            images = X
        else:
            raise DatasetError(f"{path}: no fer2013.csv and no <split>/<emotion>/ images inside")
    images = np.asarray(images)
    keep = np.arange(len(emotions))
    if usage is not None:
        wanted = {usage} if isinstance(usage, str) else set(usage)
        unknown = wanted - {"Training", "PublicTest", "PrivateTest", "Test"}
        if unknown:
            raise ValueError(f"usage={sorted(unknown)} is not a FER2013 split; expected "
                             "'Training', 'PublicTest', 'PrivateTest' or 'Test'")
        keep = np.array([i for i in keep if splits[i] in wanted], dtype=int)
    keep = keep[_subset(len(keep), limit, random_state)]
    images = images[keep]
    if image_size != 48 or not grayscale:
        images = np.stack([resize_uint8(im, image_size) for im in images]) if len(images) \
            else images.reshape(0, image_size, image_size)
        if not grayscale:
            images = np.repeat(images[..., np.newaxis], 3, axis=-1)
    df = _frame([{"emotion": emotions[i], "split": splits[i], "source": "fer2013",
                  "path": names[i]} for i in keep])
    _report(df, skipped, path)
    return images, df


# ----------------------------------------------------------------------- CK+
@_cached
def load_ckplus(path, image_size=48, grayscale=True, include_contempt=False, limit=None,
                random_state=None, strict=False, n_jobs=2):
    """Load the CK+48 crops (``CK+48/<class>/S<subject>_<seq>_<frame>.png``), folder or zip.

    Parameters
    ----------
    include_contempt : bool, default=False
        CK+'s ``contempt`` has no FER2013 counterpart and is dropped by default;
        when kept its label is ``"Contempt"``, outside the 7-class emotion
        vocabulary (train it as a task of its own name, not ``emotion``).
    Other parameters as in :func:`load_utkface`.

    Returns
    -------
    X : ndarray of uint8
    y : DataFrame
        ``emotion``, ``subject`` (e.g. ``"S005"``, for subject-wise splits),
        ``source`` ("ckplus").
    """
    path = os.fspath(path)
    _check_exists(path, "the CK+48 folder or CK+48.zip")
    rows, items, skipped = [], [], []
    for name, data in _iter_members(path, _is_image_name):
        parts = name.replace("\\", "/").split("/")
        if len(parts) >= 2 and parts[-2].lower() == "contempt":
            if not include_contempt:
                continue
            emotion = "Contempt"
        else:
            emotion = _emotion_from_folder(name, skipped)
            if emotion is None:
                continue
        match = re.match(r"(S\d+)_", parts[-1])
        rows.append({"emotion": emotion, "subject": match.group(1) if match else None,
                     "split": None, "source": "ckplus", "path": _member_path(path, name)})
        items.append((name, data))
    if not rows:
        raise DatasetError(f"{path}: no CK+ images found (expected <class>/S<subject>_*.png)")
    keep = _subset(len(rows), limit, random_state)
    rows = [rows[i] for i in keep]
    items = [items[i] for i in keep]
    X, ok, bad = _decode_all(items, image_size, grayscale, strict, n_jobs)
    skipped += bad
    df = _frame([r for r, good in zip(rows, ok) if good])
    _report(df, skipped, path)
    return X, df


# ----------------------------------------------------------------------- CSV
CSV_COLUMNS = ["image", "age", "gender", "emotion", "source", "split"]


def load_csv(path, image_size=64, grayscale=True, limit=None, random_state=None,
             strict=False, n_jobs=2, crop=None):
    """Load a dataset in the ``sample_dataset.csv`` format.

    The CSV has one row per image: ``image`` (a path; relative paths resolve
    against the CSV's folder) and any of ``age`` (years or group name),
    ``gender``, ``emotion``; empty cells are missing labels. Other columns
    (``source``, ``split``, ``race``...) are kept as metadata. ``crop`` re-crops
    the images through a :class:`~mtlfaces.FaceCropper` (see :func:`load_utkface`).

    Returns
    -------
    X : ndarray of uint8
    y : DataFrame with canonical labels (see module docstring).
    """
    import pandas as pd

    path = os.fspath(path)
    _check_exists(path, "a CSV file in the sample_dataset.csv format")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, comment=None)
    except Exception as exc:
        raise DatasetError(f"{path}: not a readable CSV ({exc})") from None
    table.columns = [c.strip() for c in table.columns]
    image_col = next((c for c in ("image", "path", "file", "filename", "image_path")
                      if c in table.columns), None)
    if image_col is None:
        raise DatasetError(f"{path}: no image column; expected a column named 'image' "
                           f"(found {list(table.columns)})")
    label_cols = [c for c in ("age", "gender", "emotion") if c in table.columns]
    if not label_cols:
        raise DatasetError(f"{path}: no label column; expected any of age, gender, emotion")
    root = os.path.dirname(os.path.abspath(path))
    rows, items, skipped = [], [], []
    keep = _subset(len(table), limit, random_state)
    for i in keep:
        rec = table.iloc[i]
        line = i + 2
        image = rec[image_col].strip()
        full = image if os.path.isabs(image) else os.path.join(root, image)
        row = {"path": full}
        try:
            for col in label_cols:
                row[col] = normalize_label(col, rec[col])
                if col == "age" and rec[col].strip().replace(".", "", 1).isdigit():
                    row["age_years"] = float(rec[col])
        except ValueError as exc:
            if strict:
                raise DatasetError(f"{path}, line {line}: {exc}") from None
            skipped.append({"path": full, "reason": "invalid label", "detail": f"line {line}: {exc}"})
            continue
        for col in table.columns:
            if col not in label_cols and col != image_col and col not in row:
                row[col] = rec[col] if rec[col] != "" else None
        try:
            with open(full, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            if strict:
                raise DatasetError(f"{path}, line {line}: image {full}: {exc.strerror}") from None
            skipped.append({"path": full, "reason": "missing image file", "detail": f"line {line}"})
            continue
        rows.append(row)
        items.append((full, data))
    X, ok, bad = _decode_all(items, image_size, grayscale, strict, n_jobs, crop)
    skipped += bad
    if not ok.any():
        raise DatasetError(f"{path}: no usable rows ({len(skipped)} skipped)")
    df = _frame([r for r, good in zip(rows, ok) if good])
    _report(df, skipped, path)
    return X, df


def write_csv(X, y, path, image_dir=None):
    """Write images and labels as a CSV in the ``sample_dataset.csv`` format.

    Every image is written as a PNG under ``image_dir`` (default: ``images/``
    next to the CSV), so data loaded from archives or FER2013's pixel strings
    becomes a self-contained folder. The CSV is written to a temporary name and
    renamed, so an interrupted run never leaves a complete-looking file.

    Parameters
    ----------
    X : ndarray of uint8
        Images as returned by the loaders.
    y : DataFrame
        Labels and metadata (``age``/``age_years``, ``gender``, ``emotion``,
        ``source``, ``split``).
    path : str
        Output CSV path.

    Returns
    -------
    str : the CSV path.
    """
    import cv2
    import pandas as pd

    X = np.asarray(X)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} images but y has {len(y)} rows")
    path = os.fspath(path)
    root = os.path.dirname(os.path.abspath(path))
    image_dir = image_dir or os.path.join(root, "images")
    os.makedirs(image_dir, exist_ok=True)
    records = []
    sources = y["source"] if "source" in y else pd.Series(["data"] * len(y))
    for i in range(len(y)):
        src = sources.iloc[i] or "data"
        sub = os.path.join(image_dir, str(src))
        os.makedirs(sub, exist_ok=True)
        file = os.path.join(sub, f"{i:06d}.png")
        img = X[i]
        if img.dtype != np.uint8:
            img = np.clip(np.asarray(img, dtype=np.float64) * (255 if img.max() <= 1 else 1),
                          0, 255).astype(np.uint8)
        if img.ndim == 3 and img.shape[-1] == 3:
            img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(file, img):
            raise OSError(f"{file}: could not write image")
        rec = y.iloc[i]
        age = rec.get("age_years") if "age_years" in y and rec.get("age_years") is not None \
            and not pd.isna(rec.get("age_years")) else rec.get("age")
        if isinstance(age, float) and age.is_integer():
            age = int(age)
        records.append({
            "image": os.path.relpath(file, root).replace(os.sep, "/"),
            "age": age, "gender": rec.get("gender"), "emotion": rec.get("emotion"),
            "source": rec.get("source"), "split": rec.get("split"),
        })
    out = pd.DataFrame(records, columns=CSV_COLUMNS)
    tmp = path + ".tmp"
    out.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


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


def hash_holdout(keys, fraction=0.15, salt="mtlfaces"):
    """Boolean mask of the rows held out for validation, decided by hashing ``keys``.

    The decision for a key (e.g. a UTKFace file name or a CK+ subject) depends
    on nothing else, so the split is the same whatever subset, order or copy of
    the dataset is loaded.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction={fraction!r} must be in (0, 1)")
    out = np.empty(len(keys), dtype=bool)
    for i, key in enumerate(keys):
        digest = hashlib.sha1(f"{salt}:{key}".encode()).digest()
        out[i] = int.from_bytes(digest[:4], "big") / 2**32 < fraction
    return out


def utkface_validation_mask(y, fraction=0.15):
    """The fixed UTKFace validation part: 15 % of files, chosen by hashing the file name."""
    names = [os.path.basename(str(p).split("::")[-1]) for p in y["path"]]
    return hash_holdout(names, fraction)


def ckplus_validation_mask(y, fraction=0.2):
    """The fixed CK+ validation part: 20 % of subjects (all of a subject's images together)."""
    return hash_holdout([str(s) for s in y["subject"]], fraction)


def validation_mask(y):
    """Rows of a loader's ``y`` that belong to mtlfaces' fixed validation splits.

    The same rows whichever datasets ``y`` mixes, so training scripts, the CLI and
    benchmarks hold out exactly the same faces:

    - a row whose ``split`` is ``"validation"`` or ``"train"`` keeps it (rows that
      ``mtlfaces build-dataset`` wrote and :func:`load_csv` read back: their image
      files are renamed, so the split cannot be worked out again from the path);
    - otherwise UTKFace rows with a ``path``: :func:`utkface_validation_mask` (15 %
      of files); CK+ rows with a ``subject``: :func:`ckplus_validation_mask` (20 % of
      subjects); FER2013 rows: ``split == "PublicTest"``.

    Parameters
    ----------
    y : DataFrame
        Labels as the loaders return them (``source`` and ``split`` columns, and
        ``path`` / ``subject`` where the dataset has them).

    Returns
    -------
    ndarray of bool, shape (n_samples,)
    """
    import pandas as pd

    if not isinstance(y, pd.DataFrame):
        raise TypeError("validation_mask needs the loaders' label DataFrame, got "
                        f"{type(y).__name__}")
    n = len(y)
    split = y["split"].astype(object).to_numpy() if "split" in y else np.full(n, None, object)
    source = y["source"].astype(object).to_numpy() if "source" in y else np.full(n, None, object)
    mask = (split == "validation") | ((source == "fer2013") & (split == "PublicTest"))
    decided = np.isin(split, ["validation", "train"])
    if "path" in y:
        utk = (source == "utkface") & ~decided & y["path"].notna().to_numpy()
        if utk.any():
            mask[utk] = utkface_validation_mask(y[utk])
    if "subject" in y:
        ck = (source == "ckplus") & ~decided & y["subject"].notna().to_numpy()
        if ck.any():
            mask[ck] = ckplus_validation_mask(y[ck])
    return mask


# ---------------------------------------------------------------- synthetic
_SHAPES_AGES = {"Child": 8, "Young": 24, "Middle Age": 38, "Old": 55, "Very Old": 80}


def make_shapes(n=400, size=32, seed=0, missing_gender=0.5):
    """A synthetic labelled set whose labels are visible structure (for tests and examples).

    age group: the row band (of 5) holding a bright blob (flip-invariant);
    gender: a vertical (Female) or horizontal (Male) bar in the other half;
    emotion: a square at the right edge, top (Sad), middle (Neutral) or bottom (Happy).
    ``missing_gender`` of the gender labels are removed.

    Returns
    -------
    X : ndarray of uint8, shape (n, size, size)
    y : DataFrame with ``age`` (years), ``gender`` and ``emotion``.
    """
    import pandas as pd

    rng = np.random.RandomState(seed)
    X = rng.randint(0, 40, size=(n, size, size)).astype(np.float32)
    age = rng.randint(0, 5, n)
    gender = rng.randint(0, 2, n)
    emotion = rng.randint(0, 3, n)
    band = size // 5
    for i in range(n):
        e0 = [2, size // 2 - 3, size - 8][emotion[i]]
        X[i, e0:e0 + 6, size - 6:] = 170
        r0 = age[i] * band
        X[i, r0:r0 + band, : size // 3] = 250
        if gender[i] == 0:
            X[i, 2:size - 2, size // 2 + 4: size // 2 + 8] = 200
        else:
            X[i, size // 2 - 2: size // 2 + 2, size // 2: size - 8] = 200
    y = pd.DataFrame({
        "age": [_SHAPES_AGES[AGE_GROUPS[a]] for a in age],
        "gender": np.array(["Female", "Male"])[gender].astype(object),
        "emotion": np.array(["Sad", "Neutral", "Happy"])[emotion].astype(object),
    })
    drop = rng.rand(n) < missing_gender
    y.loc[drop, "gender"] = None
    return np.clip(X, 0, 255).astype(np.uint8), y
