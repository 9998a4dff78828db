"""Reading and writing videos with OpenCV, frame by frame (memory stays flat)."""

import os

from ._native import captured_stderr

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
        self.frames_read = 0
        if isinstance(source, os.PathLike):
            source = self.source = os.fspath(source)
        if isinstance(source, str) and not os.path.exists(source):
            raise VideoError(f"{source}: no such file")
        with captured_stderr() as native:
            self._cap = cv2.VideoCapture(source)
        if not self._cap.isOpened():
            what = f"webcam {source}" if isinstance(source, int) else source
            detail = f" ({native.text})" if native.text else ""
            raise VideoError(f"{what}: cannot open as a video{detail}")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and fps > 0 and fps < 1000 else 25.0
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 and not isinstance(source, int) else None
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        first, native = self._read()
        if first is None:
            self._cap.release()
            detail = f" ({native})" if native else ""
            raise VideoError(f"{source}: no frame could be decoded (truncated or not a "
                             f"video){detail}")
        self._first = first

    def _read(self):
        """(next BGR frame or None, what the decoder printed)."""
        with captured_stderr() as native:
            ok, frame = self._cap.read()
        return (frame if ok else None), native.text

    def __iter__(self):
        """Yield every frame; raise :class:`VideoError` after the last one read when the
        file ended before the frame count its container declares (a truncated file)."""
        index = 0
        frame, native = self._first, ""
        while frame is not None:
            yield index, index / self.fps, frame
            index += 1
            self.frames_read = index
            frame, native = self._read()
        if self.frame_count and index < self.frame_count - max(1, self.frame_count // 100):
            detail = f"; the decoder said: {native}" if native else ""
            raise VideoError(f"{self.source}: truncated: {index} of the {self.frame_count} "
                             f"frames its container declares could be decoded{detail}")

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
