"""Following faces across video frames: optical-flow box shifts, track matching, smoothing."""

import numpy as np



def shift_boxes(previous_gray, gray, boxes):
    """Move boxes with the image motion inside them (sparse Lucas-Kanade optical flow).

    Used between detections: corners found in each box on the previous frame
    are tracked into the current one, and the box moves by their median shift.
    A box with nothing trackable stays where it was.
    """
    import cv2

    moved = []
    h, w = gray.shape[:2]
    for left, top, right, bottom in boxes:
        l, t = max(0, int(left)), max(0, int(top))
        r, b = min(w, int(right)), min(h, int(bottom))
        if r - l < 8 or b - t < 8:
            moved.append((left, top, right, bottom))
            continue
        mask = np.zeros_like(previous_gray)
        mask[t:b, l:r] = 255
        pts = cv2.goodFeaturesToTrack(previous_gray, maxCorners=40, qualityLevel=0.01,
                                      minDistance=4, mask=mask)
        if pts is None:
            moved.append((left, top, right, bottom))
            continue
        new, status, _ = cv2.calcOpticalFlowPyrLK(previous_gray, gray, pts, None)
        good = status.reshape(-1) == 1
        if good.sum() < 3:
            moved.append((left, top, right, bottom))
            continue
        dx, dy = np.median((new - pts).reshape(-1, 2)[good], axis=0)
        moved.append((left + dx, top + dy, right + dx, bottom + dy))
    return moved


def _iou(a, b):
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, right - left) * max(0, bottom - top)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _match(a, b):
    """Overlap score of two boxes: IoU, or for disjoint-ish boxes whose centres are within
    half a face width, a score just above the usual threshold (fast motion)."""
    iou = _iou(a, b)
    if iou > 0:
        return iou
    ca = ((a[0] + a[2]) / 2, (a[1] + a[3]) / 2)
    cb = ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    width = max(a[2] - a[0], b[2] - b[0], 1)
    dist = np.hypot(ca[0] - cb[0], ca[1] - cb[1])
    return 0.31 if dist < 0.5 * width else 0.0


class FaceTracker:
    """Follow faces across video frames and smooth their predictions over time.

    Detections are matched to tracks greedily by box overlap (IoU). Each
    track keeps an exponential moving average of its class probabilities, so
    labels don't flicker from frame to frame; on frames without detection
    (``every > 1``) the last boxes are kept, and the face crops are re-cut
    there and classified, so predictions still follow the face.

    Parameters
    ----------
    smoothing : float, default=0.7
        Weight of the past in the moving average (0 = no smoothing).
    min_iou : float, default=0.3
        Overlap needed to continue a track.
    max_missed : int, default=5
        Detection rounds a track survives without a match.
    """

    def __init__(self, smoothing=0.7, min_iou=0.3, max_missed=5):
        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing={smoothing!r} must be in [0, 1)")
        self.smoothing = smoothing
        self.min_iou = min_iou
        self.max_missed = max_missed
        self.tracks = {}  # id -> {"box", "dist", "missed"}
        self._next = 0

    def update(self, results):
        """Assign track ids to this frame's results and smooth their distributions in place."""
        pairs = sorted(((_match(r.box, t["box"]), i, tid) for i, r in enumerate(results)
                        for tid, t in self.tracks.items()), reverse=True)
        used_r, used_t = set(), set()
        for overlap, i, tid in pairs:
            if overlap < self.min_iou or i in used_r or tid in used_t:
                continue
            used_r.add(i)
            used_t.add(tid)
            results[i].track = tid
        for i, r in enumerate(results):
            if r.track is None:
                r.track = self._next
                self._next += 1
            track = self.tracks.get(r.track)
            if track is not None and self.smoothing:
                a = self.smoothing
                r.distributions = {t: a * track["dist"][t] + (1 - a) * d
                                   for t, d in r.distributions.items()}
            self.tracks[r.track] = {"box": r.box, "dist": r.distributions, "missed": 0}
        for tid in list(self.tracks):
            if tid not in {r.track for r in results}:
                self.tracks[tid]["missed"] += 1
                if self.tracks[tid]["missed"] > self.max_missed:
                    del self.tracks[tid]
        return results


def relabel(results, classes):
    """Recompute labels and probabilities from (smoothed) distributions."""
    from .tasks import answer

    for r in results:
        for t, d in r.distributions.items():
            r.labels[t], r.probabilities[t] = answer(t, d, classes[t])
    return results
