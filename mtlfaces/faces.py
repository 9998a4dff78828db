"""Finding faces with dlib: detection, landmarks, alignment, head pose, and a Pipeline cropper.

The landmark and MMOD detector model files come from the ``face_recognition_models``
package, installed with mtlfaces; nothing is downloaded.
"""

import math
import os
import threading
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ._defaults import DEFAULT_THRESHOLD
from .images import ImageError, as_rgb_uint8, check_batch, read_image, resize_square, to_gray

DETECTORS = ("hog", "cnn")
#: Side in pixels (about) of the smallest face dlib's HOG detector finds at upsample 0, in
#: the image it scans (half that at upsample 1).
HOG_MIN_FACE = 80
_models = {}
_lock = threading.Lock()
_cnn_lock = threading.Lock()

# A generic 3-D face (millimetres, nose tip at the origin, y up) for head pose:
# nose tip, chin, left eye outer corner, right eye outer corner, mouth corners.
_MODEL_POINTS = np.array([
    (0.0, 0.0, 0.0), (0.0, -330.0, -65.0), (-225.0, 170.0, -135.0),
    (225.0, 170.0, -135.0), (-150.0, -150.0, -125.0), (150.0, -150.0, -125.0),
], dtype=np.float64)
_POSE_LANDMARKS = [30, 8, 36, 45, 48, 54]  # the same points in dlib's 68-point scheme


def _model(name):
    """dlib detectors and predictors, loaded once per process (they are not picklable)."""
    with _lock:
        if name not in _models:
            import dlib
            import face_recognition_models as frm

            if name == "hog":
                _models[name] = dlib.get_frontal_face_detector()
            elif name == "cnn":
                _models[name] = dlib.cnn_face_detection_model_v1(
                    frm.cnn_face_detector_model_location())
            elif name == "landmarks5":
                _models[name] = dlib.shape_predictor(
                    frm.pose_predictor_five_point_model_location())
            elif name == "landmarks68":
                _models[name] = dlib.shape_predictor(frm.pose_predictor_model_location())
            elif name == "descriptor":
                _models[name] = dlib.face_recognition_model_v1(
                    frm.face_recognition_model_location())
        return _models[name]


@dataclass
class Face:
    """One detected face.

    Attributes
    ----------
    box : tuple of int
        (left, top, right, bottom) in the input image's pixel coordinates.
    score : float
        Detector score (HOG: SVM margin, higher is surer; CNN: confidence).
    landmarks : ndarray of shape (5, 2) or (68, 2)
        (x, y) landmark positions in the input image.
    crop : ndarray or None
        The aligned face chip (eyes level, ``dlib.get_face_chip``), uint8.
    pose : tuple of float or None
        (yaw, pitch, roll) in degrees, from 68 landmarks; None without them.
    located : {"detector", "landmarks", "whole"}
        How the face was found: by the detector; in crops mode, by landmarks fitted to
        the whole image (no detection); or not at all (the whole image, resized).
    """

    box: tuple
    score: float
    landmarks: np.ndarray = field(repr=False)
    crop: np.ndarray = field(default=None, repr=False)
    pose: tuple = None
    located: str = "detector"

    @property
    def area(self):
        left, top, right, bottom = self.box
        return max(0, right - left) * max(0, bottom - top)

    def is_frontal(self, max_yaw=25.0, max_pitch=30.0, max_roll=None):
        """True when the head pose is within the limits (needs ``pose``)."""
        if self.pose is None:
            raise ValueError("this face has no pose; detect with pose=True (68 landmarks)")
        yaw, pitch, roll = self.pose
        ok = abs(yaw) <= max_yaw and abs(pitch) <= max_pitch
        return ok and (max_roll is None or abs(roll) <= max_roll)


def head_pose(landmarks68, image_shape):
    """Estimate (yaw, pitch, roll) in degrees from 68 dlib landmarks with ``cv2.solvePnP``.

    A generic face model and a pinhole camera with focal length = image width
    are assumed, so the angles are approximate (a few degrees), enough to tell
    frontal from turned faces. Positive yaw: the face turns towards the image's
    right; positive pitch: it tilts up; positive roll: it tilts clockwise in the image.
    """
    import cv2

    h, w = image_shape[:2]
    pts = np.asarray(landmarks68, dtype=np.float64)[_POSE_LANDMARKS]
    camera = np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1]], dtype=np.float64)
    # Image y points down, the model's y up: flip the model so both agree.
    model = _MODEL_POINTS * np.array([1.0, -1.0, -1.0])
    ok, rvec, _ = cv2.solvePnP(model, pts, camera, np.zeros(4), flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return None
    rot, _ = cv2.Rodrigues(rvec)
    pitch = math.degrees(math.atan2(rot[2, 1], rot[2, 2]))
    yaw = math.degrees(math.atan2(-rot[2, 0], math.hypot(rot[2, 1], rot[2, 2])))
    # solvePnP may return the mirrored solution (pitch near ±180): fold it back.
    if pitch > 90:
        pitch -= 180
    elif pitch < -90:
        pitch += 180
    # Roll straight from the eye line is more robust than the PnP decomposition.
    eyes = np.asarray(landmarks68, dtype=np.float64)
    left, right = eyes[36:42].mean(axis=0), eyes[42:48].mean(axis=0)
    roll = math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))
    return (float(-yaw), float(-pitch), float(roll))


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name}={value!r} is invalid; expected one of {list(choices)}")


def detect_faces(image, detector="hog", upsample=0, threshold=DEFAULT_THRESHOLD, landmarks=5,
                 pose=False, crop_size=48, crop_padding=0.1, grayscale=True, bgr=False,
                 max_side=None):
    """Find every face in one image.

    Parameters
    ----------
    image : ndarray or path
        RGB (or BGR with ``bgr=True``), grayscale, RGBA; uint8, uint16 or float;
        any size. A path is read with :func:`mtlfaces.images.read_image`.
    detector : {"hog", "cnn"}, default="hog"
        dlib's HOG frontal detector (fast) or its CNN (MMOD) detector (more
        poses, ~3 s per frame on a CPU).
    upsample : int, default=0
        Times to upsample before detecting (finds smaller faces; slower; at 1 the
        HOG detector fires on the mission patch in ``skimage.data.astronaut()``).
    threshold : float, default=0.2
        Minimum detector score (:data:`DEFAULT_THRESHOLD`; dlib's own default is 0, which
        lets weak false detections through).
    landmarks : {5, 68}, default=5
        Landmark model for alignment; 68 is needed for head pose.
    pose : bool, default=False
        Estimate head pose (forces 68 landmarks).
    crop_size : int or None, default=48
        Side of the aligned crop (the bundled model's input); None skips cropping.
    crop_padding : float, default=0.1
        Margin around the face in the crop, as a fraction of the face size. 0.1
        is the margin under which the bundled model scores best on re-cropped
        validation faces (see MODEL_CARD.md): it frames the face
        roughly as FER2013 and UTKFace do.
    grayscale : bool, default=True
        Crops in grayscale (True) or RGB.
    bgr : bool, default=False
        ``image`` is BGR (OpenCV order).
    max_side : int or None, default=None
        Detect on a copy shrunk to at most this many pixels a side, for speed, and map the
        boxes back (landmarks and crops use the full image). dlib's HOG detector needs a
        face of about 80 pixels (40 with ``upsample=1``) *in the image it scans*, so
        shrinking an 8000-pixel photo to 1024 misses every face under 625 pixels. None
        (default) detects at full resolution, which takes seconds on a large photo.

    Returns
    -------
    list of Face, largest first.
    """
    _check_choice("detector", detector, DETECTORS)
    _check_choice("landmarks", landmarks, (5, 68))
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        image = read_image(image)
        bgr = False
    return _detect_rgb(as_rgb_uint8(image, bgr=bgr), detector=detector, upsample=upsample,
                       threshold=threshold, landmarks=landmarks, pose=pose,
                       crop_size=crop_size, crop_padding=crop_padding, grayscale=grayscale,
                       max_side=max_side)


def _detect_rgb(rgb, detector="hog", upsample=0, threshold=DEFAULT_THRESHOLD, landmarks=5,
                pose=False, crop_size=48, crop_padding=0.1, grayscale=True, max_side=None):
    """:func:`detect_faces` on an image that is RGB uint8 already (the pipeline's path)."""
    import cv2

    h, w = rgb.shape[:2]
    scale = 1.0
    small = rgb
    if max_side and max(h, w) > max_side:
        scale = max_side / max(h, w)
        small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA)
    if min(small.shape[:2]) < 8:  # dlib cannot find a face in a few pixels
        return []
    if detector == "hog":
        rects, scores, _ = _model("hog").run(small, int(upsample), float(threshold))
        found = list(zip(rects, scores))
    else:
        with _cnn_lock:  # one network, with its own buffers: one image at a time
            found = [(d.rect, d.confidence) for d in _model("cnn")(small, int(upsample))]
        found = [(r, s) for r, s in found if s >= threshold]
    boxes = [(rect.left() / scale, rect.top() / scale, rect.right() / scale,
              rect.bottom() / scale) for rect, _ in found]
    return _align_rgb(rgb, boxes, [s for _, s in found], landmarks=landmarks, pose=pose,
                      crop_size=crop_size, crop_padding=crop_padding, grayscale=grayscale)


def align_faces(image, boxes, scores=None, landmarks=5, pose=False, crop_size=48,
                crop_padding=0.1, grayscale=True, bgr=False):
    """Landmarks, aligned crops and pose for faces at known boxes (no detection).

    Used to follow faces between detections in a video: the landmarks are
    refitted inside the previous box on the new frame.

    Parameters
    ----------
    image : ndarray
        As in :func:`detect_faces` (RGB unless ``bgr``).
    boxes : sequence of (left, top, right, bottom)
    scores : sequence of float, optional
        Detector scores to carry along (default 0).
    Other parameters as in :func:`detect_faces`.

    Returns
    -------
    list of Face, largest first.
    """
    return _align_rgb(as_rgb_uint8(image, bgr=bgr), boxes, scores, landmarks=landmarks,
                      pose=pose, crop_size=crop_size, crop_padding=crop_padding,
                      grayscale=grayscale)


def _align_rgb(rgb, boxes, scores=None, landmarks=5, pose=False, crop_size=48,
               crop_padding=0.1, grayscale=True):
    """:func:`align_faces` on an image that is RGB uint8 already (the pipeline's path)."""
    import dlib

    h, w = rgb.shape[:2]
    use68 = landmarks == 68 or pose
    scores = [0.0] * len(boxes) if scores is None else scores
    faces = []
    for (left, top, right, bottom), score in zip(boxes, scores):
        rect = dlib.rectangle(int(round(left)), int(round(top)), int(round(right)),
                              int(round(bottom)))
        # Crops always come from the 5-point alignment, so asking for pose or 68
        # landmarks never changes the crop the classifier sees.
        shape5 = _model("landmarks5")(rgb, rect)
        shape = _model("landmarks68")(rgb, rect) if use68 else shape5
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        crop = None
        if crop_size:
            crop = dlib.get_face_chip(rgb, shape5, size=int(crop_size),
                                      padding=float(crop_padding))
            if grayscale:
                crop = to_gray(crop)
        box = (max(0, rect.left()), max(0, rect.top()), min(w, rect.right()), min(h, rect.bottom()))
        faces.append(Face(box=box, score=float(score), landmarks=points, crop=crop,
                          pose=head_pose(points, rgb.shape) if use68 else None))
    faces.sort(key=lambda f: f.area, reverse=True)
    return faces


def _plausible_eyes(points, width, height):
    """Do 5-point landmarks fitted to a whole image look like a face filling it? (Eye
    distance 15-70 % of the width, both eyes in the image's upper 70 %, the nose below
    them, the eye line within 30 degrees of level.)"""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3), (xn, yn) = points[:5]
    a, b = np.array([(x0 + x1) / 2, (y0 + y1) / 2]), np.array([(x2 + x3) / 2, (y2 + y3) / 2])
    dist = float(np.hypot(*(a - b)))
    inside = all(0 <= p[0] < width and 0 <= p[1] < 0.7 * height for p in (a, b))
    level = abs(math.degrees(math.atan2(abs(a[1] - b[1]), abs(a[0] - b[0]) + 1e-9))) < 30
    return inside and level and 0.15 * width < dist < 0.7 * width and yn > max(a[1], b[1])


def _whole_face(rgb, crop_size=48, crop_padding=0.1, grayscale=True, pose=False):
    """The face of an image that is a face crop already (crops mode, no face detected):
    aligned on landmarks fitted to the whole image where they look like a face, else the
    whole image resized. One :class:`Face` with ``located`` "landmarks" or "whole"."""
    h, w = rgb.shape[:2]
    face = _align_rgb(rgb, [(0, 0, w - 1, h - 1)], [float("nan")], pose=pose,
                      crop_size=crop_size, crop_padding=crop_padding, grayscale=grayscale)[0]
    five = face.landmarks if len(face.landmarks) == 5 else face.landmarks[[36, 39, 45, 42, 33]]
    if _plausible_eyes(five, w, h):
        face.located = "landmarks"
        return face
    crop = resize_square(rgb, int(crop_size)) if crop_size else None
    if crop is not None and grayscale:
        crop = to_gray(crop)
    return Face(box=(0, 0, w, h), score=float("nan"), landmarks=face.landmarks, crop=crop,
                pose=face.pose, located="whole")


def center_crop(image, size, grayscale=True, bgr=False):
    """The largest centred square of the image, resized: the fallback when no face is found."""
    rgb = as_rgb_uint8(image, bgr=bgr)
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    out = resize_square(rgb[top:top + side, left:left + side], size)
    return to_gray(out) if grayscale else out


class FaceCropper(TransformerMixin, BaseEstimator):
    """Map raw images (arrays or file paths) to aligned face crops, one per image.

    A scikit-learn transformer for a ``Pipeline`` in front of
    :class:`~mtlfaces.MultiTaskFaceClassifier`: detect with dlib, align on the
    landmarks (eyes level), crop and resize.

    Parameters
    ----------
    size : int, default=48
        Side of the output crops (the bundled model's input: pass
        ``clf.image_size`` for another model).
    grayscale : bool, default=True
    padding : float, default=0.1
        Margin around the face (see :func:`detect_faces`).
    detector : {"hog", "cnn"}, default="hog"
    upsample : int, default=0
    threshold : float, default=0.2
        Minimum HOG detector score (:data:`DEFAULT_THRESHOLD`, as everywhere).
    on_missing : {"raise", "drop", "center"}, default="raise"
        Images with no face (or only non-frontal ones when ``frontal_only``). "raise":
        a ValueError naming every such image. "drop": leave them out, with a warning
        naming them (the output then has fewer rows than X; :meth:`crop` tells which
        images had a face, so keep it out of a Pipeline that also needs y). "center":
        use the centred square of the image as if it were the face, only for inputs you
        know are face crops already; a photo with no face then gets a made-up answer.
    on_multiple : {"largest", "best", "raise"}, default="largest"
        Images with several faces: keep the largest, keep the highest detector
        score, or raise.
    frontal_only : bool, default=False
        Only accept faces whose head pose is within ``max_yaw``/``max_pitch``
        (uses 68 landmarks); others count as missing.
    max_yaw, max_pitch : float, default=25.0 and 30.0
    bgr : bool, default=False
        Array inputs are BGR (OpenCV order). Files are always read correctly.

    Attributes
    ----------
    n_features_in_ : not set; inputs are images of any size.

    Notes
    -----
    ``transform`` returns a uint8 array (n, size, size) (grayscale) or
    (n, size, size, 3). :meth:`crop` also tells which images had a face.
    Tiny inputs (e.g. 25×25 crops) are too small for dlib's HOG detector: set
    ``upsample`` or resize them first, or pass ``on_missing="center"`` when you know
    they are face crops.
    dlib's models are loaded once per process and are not thread-safe: use
    processes, not threads, to crop in parallel (joblib's default backend does).
    """

    def __init__(self, size=48, grayscale=True, padding=0.1, detector="hog", upsample=0,
                 threshold=DEFAULT_THRESHOLD, on_missing="raise", on_multiple="largest",
                 frontal_only=False, max_yaw=25.0, max_pitch=30.0, bgr=False):
        self.size = size
        self.grayscale = grayscale
        self.padding = padding
        self.detector = detector
        self.upsample = upsample
        self.threshold = threshold
        self.on_missing = on_missing
        self.on_multiple = on_multiple
        self.frontal_only = frontal_only
        self.max_yaw = max_yaw
        self.max_pitch = max_pitch
        self.bgr = bgr

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags

    def fit(self, X=None, y=None):
        """Check the parameters; nothing is learned."""
        _check_choice("on_missing", self.on_missing, ("raise", "drop", "center"))
        _check_choice("on_multiple", self.on_multiple, ("largest", "best", "raise"))
        _check_choice("detector", self.detector, DETECTORS)
        if not isinstance(self.size, (int, np.integer)) or self.size < 8:
            raise ValueError(f"size={self.size!r} is invalid; expected an integer >= 8")
        return self

    def _one(self, item, index):
        name = self._name(item, index)
        is_path = isinstance(item, str) or hasattr(item, "__fspath__")
        try:
            image = read_image(item) if is_path else item
            bgr = self.bgr and not is_path
            faces = detect_faces(image, detector=self.detector, upsample=self.upsample,
                                 threshold=self.threshold, pose=self.frontal_only,
                                 crop_size=self.size, crop_padding=self.padding,
                                 grayscale=self.grayscale, bgr=bgr)
        except ImageError as exc:
            message = str(exc)
            raise ImageError(message if name in message else f"{name}: {message}") from None
        if self.frontal_only:
            faces = [f for f in faces if f.is_frontal(self.max_yaw, self.max_pitch)]
        if not faces:
            if self.on_missing == "center":
                return center_crop(image, self.size, self.grayscale, bgr=bgr), None
            return None, None
        if len(faces) > 1:
            if self.on_multiple == "raise":
                raise ValueError(f"{name}: {len(faces)} faces found; on_multiple='raise'")
            if self.on_multiple == "best":
                faces = sorted(faces, key=lambda f: f.score, reverse=True)
        return faces[0].crop, faces[0]

    def crop(self, X):
        """Crop every image: ``(crops, faces)``, ``faces[i]`` the :class:`Face` found in
        image ``i`` or None. ``crops`` has one row per image, except with
        ``on_missing="drop"``: one per image whose ``faces[i]`` is not None."""
        self.fit()
        if isinstance(X, (str, bytes)) or hasattr(X, "__fspath__"):
            raise ValueError(f"X is a single path ({X!r}); pass a list of images or paths")
        if isinstance(X, np.ndarray) and X.dtype != object:
            if X.ndim not in (3, 4):
                raise ValueError(f"X has shape {X.shape}; expected a batch of images (n, h, w) "
                                 "or (n, h, w, c); wrap a single image as [image]")
            check_batch(X.shape, single="[image]")
        items = list(X)
        if not items:
            raise ValueError("X is empty: no images to crop")
        results = [self._one(item, i) for i, item in enumerate(items)]
        faces = [face for _, face in results]
        missing = [self._name(item, i) for i, (item, (crop, _)) in
                   enumerate(zip(items, results)) if crop is None]
        if missing:
            where = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more"
                                              if len(missing) > 5 else "")
            why = "no frontal face" if self.frontal_only else "no face"
            if self.on_missing == "raise":
                raise ValueError(
                    f"{len(missing)} of {len(items)} image(s) had {why}: {where}; pass "
                    "on_missing='drop' to leave them out, or on_missing='center' if they "
                    "are face crops already")
            warnings.warn(f"FaceCropper: {len(missing)} of {len(items)} image(s) had {why} "
                          f"and were dropped: {where}", UserWarning, stacklevel=2)
        crops = [crop for crop, _ in results if crop is not None]
        if not crops:
            shape = (0, self.size, self.size) + (() if self.grayscale else (3,))
            return np.empty(shape, dtype=np.uint8), faces
        return np.stack(crops), faces

    @staticmethod
    def _name(item, index):
        return os.fspath(item) if isinstance(item, str) or hasattr(item, "__fspath__") \
            else f"image {index}"

    def transform(self, X):
        """Aligned face crops, one per input image (uint8)."""
        return self.crop(X)[0]
