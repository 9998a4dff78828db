"""Drawing boxes and label lines on images and frames, readable at any image size."""

import numpy as np

_COLOURS = [(66, 135, 245), (245, 130, 48), (60, 180, 75), (230, 25, 75), (145, 30, 180)]


def label_line(result):
    """'Middle Age, Female, Happy': one face's labels, named as in the table (never
    shortened); a model with an age_years head adds the age: 'Middle Age, 38 years, ...'."""
    from .tasks import YEARS_TASK

    shown = ("age", YEARS_TASK, "gender", "emotion")
    parts = [f"{result.labels[t]:.0f} years" if t == YEARS_TASK else str(result.labels[t])
             for t in shown if t in result.labels]
    parts += [str(result.labels[t]) for t in result.labels if t not in shown]
    return ", ".join(parts)


def annotate(image, results, bgr=False):
    """Return a copy of ``image`` (uint8 RGB, or BGR with ``bgr=True``) with every face drawn.

    Line width and font scale follow the image size, and the label sits above
    the box (below it when there is no room), on a filled background.
    """
    import cv2

    out = np.ascontiguousarray(image).copy()
    h, w = out.shape[:2]
    thick = max(1, round(min(h, w) / 300))
    for i, r in enumerate(results):
        colour = _COLOURS[(r.track if r.track is not None else i) % len(_COLOURS)]
        if bgr:
            colour = colour[::-1]
        left, top, right, bottom = (int(v) for v in r.box)
        cv2.rectangle(out, (left, top), (right, bottom), colour, thick)
        text = label_line(r)
        # Scale the font to the face width, within limits that stay legible.
        scale = float(np.clip((right - left) / 160.0, 0.35, 2.0))
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        y = top - 4 if top - th - base - 4 >= 0 else min(h - base - 1, bottom + th + 4)
        x = int(np.clip(left, 0, max(0, w - tw - 1)))
        cv2.rectangle(out, (x, y - th - base), (x + tw + 2, y + base // 2), colour, -1)
        cv2.putText(out, text, (x + 1, y - base // 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), thick, cv2.LINE_AA)
    return out
