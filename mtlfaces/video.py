"""Reading and writing videos with OpenCV, frame by frame (memory stays flat)."""

import os

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
# The OpenCV wheels here write mp4v (.mp4) and MJPG (.avi); H.264 (avc1) is not available.
FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}


class VideoError(ValueError):
    """A video cannot be opened or written."""


class VideoReader:
    """Iterate over (index, timestamp in seconds, BGR frame) of a file or webcam.

    Parameters
    ----------
    source : str or int
        A video path, or a webcam index.
    """

    def __init__(self, source):
        import cv2

        self.source = source
        if isinstance(source, str) and not os.path.exists(source):
            raise VideoError(f"{source}: no such file")
        self._cap = cv2.VideoCapture(source)
        if not self._cap.isOpened():
            what = f"webcam {source}" if isinstance(source, int) else source
            raise VideoError(f"{what}: cannot open as a video")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and fps > 0 and fps < 1000 else 25.0
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 and not isinstance(source, int) else None
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise VideoError(f"{source}: no frame could be decoded (truncated or not a video)")
        self._first = first

    def __iter__(self):
        index = 0
        frame = self._first
        while frame is not None:
            yield index, index / self.fps, frame
            index += 1
            ok, frame = self._cap.read()
            if not ok:
                frame = None

    def close(self):
        self._cap.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class VideoWriter:
    """Write BGR frames to ``path`` (``.mp4``: mp4v, ``.avi``: MJPG).

    Frames go to ``<path>.partial<ext>`` while writing; :meth:`finish` renames it
    to ``path``. :meth:`abort` closes the file (still playable) and leaves the
    ``.partial`` name, so an interrupted video never looks complete.
    """

    def __init__(self, path, fps, size):
        import cv2

        ext = os.path.splitext(path)[1].lower()
        if ext not in FOURCC:
            raise VideoError(f"{path}: cannot write {ext or 'this'} video; use .mp4 or .avi")
        root, _ = os.path.splitext(path)
        self.path = path
        self.partial_path = f"{root}.partial{ext}"
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._writer = cv2.VideoWriter(self.partial_path, cv2.VideoWriter_fourcc(*FOURCC[ext]),
                                       float(fps), (int(size[0]), int(size[1])))
        if not self._writer.isOpened():
            raise VideoError(f"{path}: the video writer could not be opened")
        self.frames = 0

    def write(self, frame):
        self._writer.write(frame)
        self.frames += 1

    def finish(self):
        self._writer.release()
        os.replace(self.partial_path, self.path)
        return self.path

    def abort(self):
        self._writer.release()
        return self.partial_path
