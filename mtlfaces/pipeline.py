"""One route from media to labels: :func:`analyze` and the :class:`Analyzer` behind it.

Every entry point (``mtlfaces predict``, the examples, the README's snippets) goes
through here, so a photo gets the same answer whichever way it is asked:

1. a source (a path, a folder, a video, a webcam index, an array) is read, and each
   image or frame becomes RGB uint8 once, where it enters (:func:`mtlfaces.images.read_image`,
   :func:`mtlfaces.images.as_rgb_uint8`, or OpenCV's BGR frames converted here);
2. dlib detects the faces, aligns and crops them at the size and colour of the network in
   use (its input shape, not a default);
3. the network classifies every face of the image in one batch, and for age group and
   gender the descriptor read-out's probabilities are averaged in where it is on;
4. in videos, faces are followed between detections, tracked and their predictions smoothed.

The records :func:`analyze` returns are the rows ``mtlfaces predict --json`` writes.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ._defaults import DEFAULT_EVERY, DETECTORS, RETRY_THRESHOLD_DROP
from .faces import DEFAULT_THRESHOLD, _align_rgb, _detect_rgb, _whole_face
from .images import IMAGE_EXTENSIONS, MAX_PIXELS, ImageError, as_rgb_uint8, read_image, to_gray
from .tasks import YEARS_TASK, answer, classes_by_task
from .tracking import FaceTracker, relabel, shift_boxes
from .video import VIDEO_EXTENSIONS, VideoError, VideoReader

#: Keys of a record, in the order ``mtlfaces predict --csv`` writes them; a model with other
#: tasks adds ``TASK`` and ``TASK_probability`` after these (an ``age_years`` head: the
#: age in years, one number; :func:`output_columns`). ``status`` is "ok" for a face,
#: "no_face" for an image or frame without one, "error" (with ``error``, the message) for an
#: input that could not be read.
FIELDS = ["source", "frame", "time", "status", "face", "track", "left", "top", "right",
          "bottom", "detector_score", "located", "yaw", "pitch", "roll", "age",
          "age_probability", "gender", "gender_probability", "emotion", "emotion_probability",
          "error"]


def output_columns(classes, probabilities=False):
    """The columns after :data:`FIELDS` for a model with ``classes`` (task -> class names):
    ``[(name, kind)]``, kind "label", "number" or "probability". Each other task adds its
    label and probability; an ``age_years`` head (:data:`mtlfaces.tasks.YEARS_TASK`) its
    age (one number); with ``probabilities``, one ``TASK.CLASS`` column per class (none for the
    years)."""
    out = []
    for task in classes:
        if task == YEARS_TASK:
            out.append((task, "number"))
        elif task not in FIELDS:
            out += [(task, "label"), (f"{task}_probability", "probability")]
    if probabilities:
        out += [(f"{t}.{c}", "probability") for t, labels in classes.items()
                if t != YEARS_TASK for c in labels]
    return out


#: Still images with no face found whose longer side is at most this are searched again
#: with the detector's upsampling raised from 0 to 1 (faces of 40 rather than 80 pixels),
#: keeping the faces that reach the threshold or else the best HOG detection down to the
#: threshold minus :data:`RETRY_THRESHOLD_DROP`; if HOG still finds none and the detector
#: is "auto" (the default), dlib's CNN detector (MMOD) searches them once at upsample 0.
#: ``benchmarks/bench_detection.py`` measures what each search adds and costs.
RETRY_SIDE = 512


def _check_detector(detector):
    if detector not in DETECTORS:
        raise ValueError(f"detector={detector!r}; expected one of "
                         + ", ".join(repr(d) for d in DETECTORS))


@dataclass
class FaceResult:
    """One classified face.

    Attributes
    ----------
    box : tuple
        (left, top, right, bottom) in the image's pixels.
    score : float
        Detector score.
    pose : tuple or None
        (yaw, pitch, roll) in degrees.
    labels : dict
        task -> most probable label.
    probabilities : dict
        task -> probability of that label.
    track : int or None
        Track id in a video.
    located : str
        "detector", or in crops mode "landmarks" / "whole" (see :class:`mtlfaces.faces.Face`).
    distributions : dict
        task -> full probability vector, in the model's class order.
    classes : dict
        task -> the model's classes, in that order.
    """

    box: tuple
    score: float
    pose: tuple
    labels: dict
    probabilities: dict
    track: int = None
    distributions: dict = field(default=None, repr=False)
    classes: dict = field(default=None, repr=False)
    located: str = "detector"

    def row(self):
        """The face's part of a record (box, score, pose, labels, probabilities, track, and
        ``distributions``: task -> {class: probability} over all classes)."""
        left, top, right, bottom = self.box
        score = None if self.score is None or np.isnan(self.score) else round(self.score, 4)
        out = {"status": "ok", "left": left, "top": top, "right": right, "bottom": bottom,
               "detector_score": score, "located": self.located}
        if self.pose is not None:
            out.update({"yaw": round(self.pose[0], 1), "pitch": round(self.pose[1], 1),
                        "roll": round(self.pose[2], 1)})
        for task, label in self.labels.items():
            out[task] = label
            if self.probabilities.get(task) is not None:  # none for the age in years
                out[f"{task}_probability"] = round(float(self.probabilities[task]), 4)
        if self.track is not None:
            out["track"] = self.track
        if self.distributions is not None and self.classes is not None:
            out["distributions"] = {
                task: {str(c): round(float(p), 4) for c, p in zip(self.classes[task], dist)}
                for task, dist in self.distributions.items() if task != YEARS_TASK}
        return out


class FaceAnalyzer:
    """Detect and classify all faces of one image with a fitted classifier.

    The building block of :class:`Analyzer`; use :func:`analyze` unless you need the
    :class:`FaceResult` objects themselves.

    Parameters
    ----------
    classifier : MultiTaskFaceClassifier
        Fitted; the input shape of its network decides the crops' size and colour.
    detector : {"auto", "hog", "cnn"}, default="auto"
        dlib's HOG detector (fast, upright faces) or its CNN detector (turned and tilted
        faces too, far slower). "auto": HOG, and for a small still image in which HOG
        finds no face, even at its retry, the CNN once (:data:`RETRY_SIDE`), which makes
        such a photo far slower (``benchmarks/bench_detection.py`` times it). "hog" never
        runs the CNN.
    upsample : int, default=0
    threshold : float, default=0.2
        Minimum HOG detector score (:data:`DEFAULT_THRESHOLD`); the second search of a
        small still image where none is kept (:data:`RETRY_SIDE`), if it finds no face
        reaching it either, keeps its best detection down to ``threshold - 0.4``
        (:data:`RETRY_THRESHOLD_DROP`). ``upsample`` of 1 or more turns the retries off.
    padding : float, default=0.1
        Margin around the face in the crop (see :func:`mtlfaces.detect_faces`).
    pose : bool, default=True
        Estimate head pose per face (68 landmarks, ~1 ms per face).
    readout : DescriptorReadout, optional
        Average this read-out of dlib's face descriptor into the tasks both have
        (see :mod:`mtlfaces.descriptors`). Can be set or cleared between calls.
    max_side : int, optional
        Detect on a copy shrunk to at most this many pixels a side (faster on large
        photos, but faces under about 80 pixels in the shrunk copy are missed); None
        (default) detects at full resolution. :meth:`scale` tells the factor.
    crops : bool, default=False
        Each still image is one face crop (a dataset's, another tool's export): the
        largest face the detector finds, else the face aligned on landmarks fitted to the
        whole image, else the whole image resized (``located`` tells which). Every image
        then gets one answer. Video frames are always searched.
    """

    def __init__(self, classifier, detector="auto", upsample=0, threshold=DEFAULT_THRESHOLD,
                 padding=0.1, pose=True, readout=None, max_side=None, crops=False):
        self.classifier = classifier
        self.detector = detector
        self.upsample = upsample
        self.threshold = threshold
        self.padding = padding
        self.pose = pose
        self.readout = readout
        _check_detector(detector)
        if max_side is not None and (not isinstance(max_side, int) or max_side < 64):
            raise ValueError(f"max_side={max_side!r}; expected None or an integer >= 64")
        self.max_side = max_side
        self.crops = bool(crops)

    def scale(self, shape):
        """The factor (at most 1) an image of ``shape`` is shrunk by before detection."""
        side = max(shape[:2])
        return 1.0 if not self.max_side or side <= self.max_side else self.max_side / side

    def _crop_format(self):
        """(side, grayscale) of the network's input."""
        model = getattr(self.classifier, "model_", None)
        if model is not None:
            height, _, channels = model.input_shape[1:]
            return int(height), int(channels) == 1
        return int(self.classifier.image_size), bool(self.classifier.grayscale)

    def _detect(self, rgb, still=False):
        """The faces of ``rgb``; a small still image with none is searched again at
        upsample 1 (:data:`RETRY_SIDE`), keeping the faces that reach the threshold or, if
        there are none, the best HOG detection within :data:`RETRY_THRESHOLD_DROP` below it;
        if HOG still finds none and the detector is "auto", by dlib's CNN detector."""
        size, gray = self._crop_format()
        first = "hog" if self.detector == "auto" else self.detector
        options = dict(detector=first, threshold=self.threshold, pose=self.pose,
                       crop_size=size, crop_padding=self.padding, grayscale=gray,
                       max_side=self.max_side)
        faces = _detect_rgb(rgb, upsample=self.upsample, **options)
        if not faces and still and self.upsample == 0 and max(rgb.shape[:2]) <= RETRY_SIDE:
            hog = first == "hog"  # the CNN's threshold is a confidence: kept
            retry = dict(options, threshold=self.threshold - RETRY_THRESHOLD_DROP) \
                if hog else options
            faces = _detect_rgb(rgb, upsample=1, **retry)
            if hog:
                # The faces that reach the threshold, else the best weaker one alone: a
                # weak false detection (the astronaut's mission patch scores about 0 at
                # upsample 1) does not come along with a face.
                faces = ([f for f in faces if f.score >= self.threshold]
                         or sorted(faces, key=lambda f: f.score, reverse=True)[:1])
            if not faces and self.detector == "auto":
                # Last, dlib's CNN detector (RETRY_SIDE): it finds turned, tilted and
                # partly hidden faces that HOG misses, at a far higher cost.
                faces = _detect_rgb(rgb, upsample=0, **dict(options, detector="cnn"))
        return faces

    def detect(self, image, bgr=False):
        """The faces of ``image`` (RGB unless ``bgr``), cropped for the classifier."""
        return self._detect(as_rgb_uint8(image, bgr=bgr))

    def classify(self, crops):
        """{task: (n, n_classes)} probabilities for a stack of crops, in one batched call."""
        if len(crops) == 0:
            return {t: np.empty((0, len(c))) for t, c in
                    classes_by_task(self.classifier).items()}
        proba = self.classifier.predict_proba(np.stack(crops))
        if not isinstance(proba, list):
            proba = [proba]
        return dict(zip(self.classifier.tasks_, proba))

    def _classify_faces(self, rgb, faces):
        return self._classify_later(rgb, faces)()

    def _classify_later(self, rgb, faces, pool=None):
        """Start classifying ``faces``; returns a function of no argument that gives the
        probabilities. With a thread ``pool``, the network runs there (TensorFlow releases
        the GIL) while the caller goes on, e.g. detecting the next video frame. dlib is
        never called from the pool (its models are not thread-safe): the read-out's
        descriptors are computed here, now."""
        crops = [f.crop for f in faces]
        future = pool.submit(self.classify, crops) if pool is not None else None
        # The read-out needs landmarks that fit a face: not for a whole image used as given.
        keep = [i for i, f in enumerate(faces) if f.located != "whole"]
        readout = None
        if self.readout is not None and keep:
            from .descriptors import _descriptors_rgb

            readout = self.readout.predict_proba(_descriptors_rgb(rgb, [faces[i] for i in keep]))

        def finish(proba=None):
            """The probabilities; ``proba`` when given: the network's, computed elsewhere
            (the service classifies several requests' faces in one call)."""
            if proba is None:
                proba = future.result() if future is not None else self.classify(crops)
            if readout is None:
                return proba
            from .descriptors import mean_with

            kept = {t: p[keep] for t, p in proba.items()}
            mixed = mean_with(kept, classes_by_task(self.classifier), readout, self.readout)
            out = {t: np.array(p, dtype=np.float64) for t, p in proba.items()}
            for t in out:
                out[t][keep] = mixed[t]
            return out
        return finish

    def results(self, faces, proba):
        """:class:`FaceResult` per face from the task probabilities of its crop."""
        out = []
        classes = classes_by_task(self.classifier)
        for i, face in enumerate(faces):
            dist = {t: p[i] for t, p in proba.items()}
            answers = {t: answer(t, d, classes[t]) for t, d in dist.items()}
            labels = {t: a[0] for t, a in answers.items()}
            probs = {t: a[1] for t, a in answers.items()}
            out.append(FaceResult(face.box, face.score, face.pose, labels, probs,
                                  distributions=dist, classes={t: classes[t] for t in dist},
                                  located=face.located))
        return out

    def _align(self, rgb, boxes):
        size, gray = self._crop_format()
        return _align_rgb(rgb, boxes, pose=self.pose, crop_size=size,
                          crop_padding=self.padding, grayscale=gray)

    def _follow(self, rgb, boxes):
        faces = self._align(rgb, boxes)
        return self.results(faces, self._classify_faces(rgb, faces))

    def follow(self, image, boxes, bgr=False):
        """Classify faces at known boxes (between detections in a video)."""
        return self._follow(as_rgb_uint8(image, bgr=bgr), boxes)

    def _find(self, rgb, still=False):
        """The faces of ``rgb`` to classify (crops mode: exactly one per still image)."""
        if self.crops and still:
            size, gray = self._crop_format()
            return self._detect(rgb, still=True)[:1] or [_whole_face(
                rgb, crop_size=size, crop_padding=self.padding, grayscale=gray,
                pose=self.pose)]
        return self._detect(rgb, still)

    def _analyze(self, rgb, still=False):
        faces = self._find(rgb, still)
        return self.results(faces, self._classify_faces(rgb, faces))

    def analyze(self, image, bgr=False):
        """All faces of one still image, classified: a list of :class:`FaceResult`, largest
        first."""
        return self._analyze(as_rgb_uint8(image, bgr=bgr), still=True)


@dataclass
class Frame:
    """One analysed image or video frame.

    ``image`` is the RGB uint8 picture the faces were found in; ``frame`` and ``time`` are
    None for still images; ``scale`` is below 1 when faces were detected on a shrunk copy
    (``max_side``), which misses faces under about ``HOG_MIN_FACE / scale`` pixels
    (:data:`mtlfaces.faces.HOG_MIN_FACE`).
    """

    source: str
    image: np.ndarray = field(repr=False)
    faces: list
    frame: int = None
    time: float = None
    scale: float = 1.0

    def records(self, status_rows=False):
        """One dict per face: where it came from, then :meth:`FaceResult.row`. With
        ``status_rows``, an image or frame without a face gives one ``no_face`` record."""
        where = {"source": self.source, "frame": self.frame,
                 "time": None if self.time is None else round(self.time, 3)}
        if not self.faces and status_rows:
            return [{**where, "status": "no_face"}]
        return [{**where, "face": i, **face.row()} for i, face in enumerate(self.faces)]


def error_record(source, error):
    """The record of an input that could not be read: status "error" and the message."""
    return {"source": str(source), "frame": None, "time": None, "status": "error",
            "error": str(error)}


@dataclass
class Input:
    """One input of a run: an image, a video or a webcam (folders are expanded).

    ``kind`` is "image", "video", "webcam" or "array"; ``value`` is the path, webcam index
    or array.
    """

    kind: str
    value: object
    name: str


def _folder_media(folder):
    """The images and videos under ``folder`` (recursively, sorted), as :class:`Input`."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for f in sorted(files):
            path = os.path.join(root, f)
            if f.lower().endswith(IMAGE_EXTENSIONS):
                found.append(Input("image", path, path))
            elif f.lower().endswith(VIDEO_EXTENSIONS):
                found.append(Input("video", path, path))
    return found


def expand(source, name="array"):
    """The :class:`Input` items of one source, or raise ValueError naming it.

    A folder gives its images and videos (recursively, sorted); a glob pattern
    (``photos/**/*.jpg``) that names no file the images and videos it matches, sorted; a path
    with a video extension a video; a string of digits that is no file a webcam; an array an image, or a stack
    (n, h, w, c) of images. An array is named ``name``, a stack's images ``name[i]``.
    """
    if isinstance(source, np.ndarray):
        if source.ndim == 4:
            return [Input("array", img, f"{name}[{i}]") for i, img in enumerate(source)]
        return [Input("array", source, name)]
    if isinstance(source, int) and not isinstance(source, bool):
        return [Input("webcam", source, f"webcam {source}")]
    if not isinstance(source, (str, os.PathLike)):
        raise ValueError(f"{source!r}: expected a path, a folder, a webcam index or an "
                         f"image array, not {type(source).__name__}")
    path = os.fspath(source)
    if os.path.isdir(path):
        media = _folder_media(path)
        if not media:
            raise ValueError(f"{path}: no images or videos in this folder")
        return media
    if os.path.exists(path):
        kind = "video" if os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS else "image"
        return [Input(kind, path, path)]
    if path.isdigit():
        return [Input("webcam", int(path), f"webcam {path}")]
    if any(c in path for c in "*?["):
        return _matches(path)
    raise ValueError(f"{path}: no such file or folder")


def _matches(pattern):
    """The images and videos a glob pattern matches (``**`` spans folders), sorted; matched
    folders give their media."""
    import glob

    found = []
    for path in sorted(glob.glob(pattern, recursive=True)):
        if os.path.isdir(path):
            found.extend(_folder_media(path))
        elif path.lower().endswith(IMAGE_EXTENSIONS):
            found.append(Input("image", path, path))
        elif path.lower().endswith(VIDEO_EXTENSIONS):
            found.append(Input("video", path, path))
    if not found:
        raise ValueError(f"{pattern}: no images or videos match this pattern")
    return found


class Analyzer:
    """Find and classify every face of images, folders, videos and webcams.

    Holds the model, the read-out and dlib's models across calls: make one and call it
    many times. :func:`analyze` is the one-call form.

    Parameters
    ----------
    model : MultiTaskFaceClassifier, str or None, default=None
        A fitted estimator, a model file, or None for the bundled model.
    readout : "auto", bool or DescriptorReadout, default="auto"
        Average the descriptor read-out into age group and gender. "auto": the bundled
        read-out with the bundled model on images and arrays, not on videos and webcams
        (at about 0.08 s per face it would cost most of the frame rate) nor with another
        model. True: the bundled read-out everywhere; False: nowhere; a
        :class:`~mtlfaces.DescriptorReadout`: that one everywhere.
    detector, upsample, threshold, padding, pose
        As in :class:`FaceAnalyzer`.
    every : int, default=2
        Video: detect faces on every ``every``-th frame and follow them in between
        (:data:`mtlfaces._defaults.DEFAULT_EVERY`; 1 detects on every frame).
    smooth : float, default=0.7
        Video: weight of the past in each track's smoothed predictions (0 = none).
    max_frames : int, optional
        Video and webcam: stop after this many frames.
    max_side : int, optional
        Detect on a copy shrunk to at most this many pixels a side (see
        :class:`FaceAnalyzer`); None (default) detects at full resolution.
    max_pixels : int or None, default=50_000_000
        Refuse image files with more pixels than this, before decoding
        (:data:`mtlfaces.images.MAX_PIXELS`); None lifts the limit.
    crops : bool, default=False
        Each image is one face crop: one answer per image (see :class:`FaceAnalyzer`).
    """

    def __init__(self, model=None, *, readout="auto", detector="auto", upsample=0,
                 threshold=DEFAULT_THRESHOLD, padding=0.1, pose=True, every=DEFAULT_EVERY,
                 smooth=0.7, max_frames=None, max_side=None, max_pixels=MAX_PIXELS,
                 crops=False):
        self.check_options(readout=readout, every=every, smooth=smooth,
                           max_frames=max_frames, max_pixels=max_pixels, detector=detector)
        self.bundled = model is None
        self.classifier = _classifier(model)
        self.readout = readout
        self.every = every
        self.smooth = smooth
        self.max_frames = max_frames
        self.max_pixels = max_pixels
        self.faces = FaceAnalyzer(self.classifier, detector=detector, upsample=upsample,
                                  threshold=threshold, padding=padding, pose=pose,
                                  max_side=max_side, crops=crops)
        self._bundled_readout = None  # loaded and checked on first use

    @staticmethod
    def check_options(*, readout="auto", every=DEFAULT_EVERY, smooth=0.7,
                      max_frames=None, max_pixels=MAX_PIXELS, **others):
        """Raise ValueError naming the first bad option, before a model or input is read
        (the detector's options are checked where the detector is made)."""
        FaceTracker(smoothing=smooth)
        _check_detector(others.get("detector", DETECTORS[0]))
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every={every!r}; expected a positive integer")
        if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 1):
            raise ValueError(f"max_frames={max_frames!r}; expected None or a positive integer")
        if max_pixels is not None and (not isinstance(max_pixels, int) or max_pixels < 1):
            raise ValueError(f"max_pixels={max_pixels!r}; expected None or a positive integer")
        if not (readout in ("auto", True, False) or hasattr(readout, "predict_proba")):
            raise ValueError(f"readout={readout!r}; expected 'auto', True, False or a "
                             "DescriptorReadout")

    def _readout_for(self, kind):
        """The read-out for an input of ``kind`` ("image", "array", "video", "webcam")."""
        wanted = self.readout
        if wanted == "auto":
            wanted = self.bundled and kind in ("image", "array")
        if wanted is False:
            return None
        if wanted is True:
            if self._bundled_readout is None:
                self._bundled_readout = _checked_readout(self.classifier)
            return self._bundled_readout
        return wanted

    def image(self, image, name="array"):
        """The :class:`Frame` of one image: a path, or an array (RGB, gray or RGBA)."""
        if isinstance(image, (str, os.PathLike)):
            rgb, name, kind = read_image(image, self.max_pixels), os.fspath(image), "image"
        else:
            rgb, kind = as_rgb_uint8(image), "array"
        self.faces.readout = self._readout_for(kind)
        return Frame(name, rgb, self.faces._analyze(rgb, still=True),
                     scale=self.faces.scale(rgb.shape))

    def video(self, source, name=None):
        """The :class:`Frame` of each frame of a video file or webcam, tracked and smoothed.

        Raises :class:`~mtlfaces.video.VideoError` when it cannot be opened. The reader
        is closed when the iteration ends or is abandoned.
        """
        import cv2

        reader = source if isinstance(source, VideoReader) else VideoReader(source)
        name = name or (f"webcam {reader.source}" if isinstance(reader.source, int)
                        else str(reader.source))
        self.faces.readout = self._readout_for("webcam" if isinstance(reader.source, int)
                                               else "video")
        classes = classes_by_task(self.classifier)
        tracker = FaceTracker(smoothing=self.smooth)
        previous = None
        pending = None  # the frame whose faces the network is classifying meanwhile

        def resolve(job):
            rgb, faces, finish, index, t = job
            results = self.faces.results(faces, finish())
            relabel(tracker.update(results), classes)
            return Frame(name, rgb, results, frame=index, time=t,
                         scale=self.faces.scale(rgb.shape))

        # Two stages overlap: while the network classifies frame i's faces in a thread,
        # this thread decodes frame i + 1 and runs dlib on it. Frames still come out in
        # order, each one frame later.
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mtlfaces-classify")
        frames = iter(reader)
        try:
            while True:
                try:
                    index, t, bgr = next(frames)
                except StopIteration:
                    break
                except VideoError:  # a short read: the frames read so far come out first
                    if pending is not None:
                        yield resolve(pending)
                        pending = None
                    raise
                if self.max_frames is not None and index >= self.max_frames:
                    break
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # where the frame enters
                gray = to_gray(rgb)
                if index % self.every != 0 and pending is not None:
                    yield resolve(pending)  # following needs the tracks as of this frame
                    pending = None
                if index % self.every == 0 or not tracker.tracks:
                    faces = self.faces._detect(rgb)
                else:
                    boxes = [tr["box"] for tr in tracker.tracks.values() if tr["missed"] == 0]
                    faces = self.faces._align(rgb, shift_boxes(previous, gray, boxes))
                previous = gray
                job = (rgb, faces, self.faces._classify_later(rgb, faces, pool), index, t)
                if pending is not None:
                    yield resolve(pending)
                pending = job
            if pending is not None:
                yield resolve(pending)
        finally:
            pool.shutdown(wait=True)
            reader.close()

    def frames(self, source):
        """Every :class:`Frame` of ``source`` (a path, folder, video, webcam index or array,
        or a list of them), in order; raises on the first input that cannot be read."""
        for item in _inputs(source):
            yield from self.frames_of(item)

    def frames_of(self, item):
        """The :class:`Frame` objects of one :class:`Input`."""
        if item.kind in ("video", "webcam"):
            yield from self.video(item.value, item.name)
        else:
            yield self.image(item.value, item.name)

    def analyze(self, source, as_frame=False, status_rows=False, on_error="raise"):
        """Records of every face of ``source`` (see :func:`analyze`)."""
        if on_error not in ("raise", "record"):
            raise ValueError(f"on_error={on_error!r}; expected 'raise' or 'record'")
        records = []
        for one, name in _named(source):
            try:
                items = expand(one, name)
            except ValueError as exc:
                if on_error == "raise":
                    raise
                records.append(error_record(one if isinstance(one, (str, os.PathLike, int))
                                            else type(one).__name__, exc))
                continue
            for item in items:
                try:
                    for frame in self.frames_of(item):
                        records.extend(frame.records(status_rows))
                except (ImageError, VideoError) as exc:
                    if on_error == "raise":
                        raise
                    records.append(error_record(item.name, exc))
        return to_frame(records) if as_frame else records


def _named(source):
    """``(source, name for an array)`` of each of ``source``'s sources: the arrays of a list
    are named by their place in it (``array[2]``; a stack in a list: ``array[2][0]``)."""
    if isinstance(source, (list, tuple)):
        return [(s, f"array[{k}]") for k, s in enumerate(source)]
    return [(source, "array")]


def _inputs(source):
    for s, name in _named(source):
        yield from expand(s, name)


def flat_record(record):
    """``record`` with its ``distributions`` as one ``TASK.CLASS`` key per class (the CSV's
    and the DataFrame's columns)."""
    row = {k: v for k, v in record.items() if k != "distributions"}
    for task, dist in (record.get("distributions") or {}).items():
        row.update({f"{task}.{label}": p for label, p in dist.items()})
    return row


def to_frame(records):
    """Records as a DataFrame: the columns of :data:`FIELDS` (plus any other tasks'), then
    one ``TASK.CLASS`` column per class with its probability (the ``distributions``)."""
    import pandas as pd

    flat = [flat_record(r) for r in records]
    extra = [k for r in flat for k in r if k not in FIELDS]
    return pd.DataFrame(flat, columns=FIELDS + list(dict.fromkeys(extra)))


def _classifier(model):
    if model is None:
        return _bundled_model()
    if isinstance(model, (str, os.PathLike)):
        from ._classifier import load_model

        return load_model(model)
    if not hasattr(model, "predict_proba") or not hasattr(model, "tasks_"):
        raise ValueError(f"model={type(model).__name__}: expected a fitted "
                         "MultiTaskFaceClassifier, a model file or None (the bundled model)")
    return model


_BUNDLED = {}


def _bundled_model():
    """The bundled model, loaded once per process (it is only read, never fitted here)."""
    if "model" not in _BUNDLED:
        from ._pretrained import load_pretrained

        _BUNDLED["model"] = load_pretrained()
    return _BUNDLED["model"]


def _checked_readout(classifier):
    """The bundled read-out, checked against the classifier's classes."""
    from .descriptors import load_pretrained_readout

    readout = load_pretrained_readout()
    classes = classes_by_task(classifier)
    shared = [t for t in readout.tasks_ if t in classes]
    fix = "leave the read-out out (readout=False; --no-descriptor on the command line)"
    if not shared:
        raise ValueError(f"the model has none of the read-out's tasks "
                         f"({', '.join(readout.tasks_)}); {fix}")
    for task in shared:
        if sorted(map(str, classes[task])) != sorted(readout.classes_[task]):
            raise ValueError(f"the model's {task} classes {list(map(str, classes[task]))} "
                             f"are not the read-out's {readout.classes_[task]}; {fix}")
    return readout


def analyze(source, model=None, *, readout="auto", detector="auto", upsample=0,
            threshold=DEFAULT_THRESHOLD, padding=0.1, pose=True, every=DEFAULT_EVERY,
            smooth=0.7, max_frames=None, max_side=None, max_pixels=MAX_PIXELS, crops=False,
            as_frame=False, status_rows=False, on_error="raise"):
    """Age group, gender and emotion of every face in ``source``.

    The same answers as ``mtlfaces predict``: its ``--json`` lines are these records.

    Parameters
    ----------
    source : str, path, int, ndarray, or a list of them
        An image file, a folder (its images and videos, recursively), a video file, a webcam index,
        an image array (RGB, grayscale or RGBA; uint8, uint16 or float in [0, 1]) or a
        stack (n, h, w, c) of them.
    model : MultiTaskFaceClassifier, str or None, default=None
        A fitted estimator, a model file, or None for the bundled model.
    readout, detector, upsample, threshold, padding, pose
        See :class:`Analyzer`.
    every, smooth, max_frames, max_side, max_pixels
        See :class:`Analyzer`.
    crops : bool, default=False
        Each image is one face crop (a folder of dataset crops, another tool's export): one
        answer per image, aligned on landmarks where the detector finds no face, else the
        image as given, resized; ``located`` says which.
    as_frame : bool, default=False
        Return a pandas DataFrame (columns :data:`FIELDS`, then ``TASK.CLASS`` probability
        columns) instead of a list of dicts.
    status_rows : bool, default=False
        Give an image or video frame with no face one record of status "no_face", so a
        table tells "processed, no face" from "never processed" (as ``mtlfaces predict
        --json/--csv`` does).
    on_error : {"raise", "record"}, default="raise"
        An input that cannot be read (a missing path, a corrupt image or video) raises, or
        becomes a record of status "error" with the message in ``error`` while the others
        are processed.

    Returns
    -------
    list of dict, or DataFrame
        One record per face: ``source``, ``frame`` and ``time`` (videos), ``status`` ("ok"),
        ``face`` (0-based within its image or frame, largest first), ``track`` (videos), the
        box ``left``, ``top``, ``right``, ``bottom``, ``detector_score``, head pose ``yaw``,
        ``pitch``, ``roll``, per task its label and ``TASK_probability``, and
        ``distributions``: task -> {class: probability} over all classes.

    Raises
    ------
    ValueError
        A source that does not exist or a folder with no images.
    mtlfaces.images.ImageError, mtlfaces.video.VideoError
        An image or video that cannot be read, naming it.

    Examples
    --------
    >>> import mtlfaces
    >>> from skimage import data
    >>> faces = mtlfaces.analyze(data.astronaut())  # doctest: +SKIP
    >>> faces[0]["gender"], faces[0]["emotion"]  # doctest: +SKIP
    ('Female', 'Happy')
    """
    analyzer = Analyzer(model, readout=readout, detector=detector, upsample=upsample,
                        threshold=threshold, padding=padding, pose=pose, every=every,
                        smooth=smooth, max_frames=max_frames, max_side=max_side,
                        max_pixels=max_pixels, crops=crops)
    return analyzer.analyze(source, as_frame=as_frame, status_rows=status_rows,
                            on_error=on_error)


__all__ = ["analyze", "Analyzer", "FaceAnalyzer", "FaceResult", "Frame", "FIELDS",
           "error_record", "expand", "to_frame", "ImageError", "VideoError"]
