"""Mixup for masked multi-task training: blends of two faces with blended targets.

Each training image is replaced by ``lam * x_i + (1 - lam) * x_j``, where ``j`` is another
image of the same batch **with the same tasks labelled** (a FER2013 face with another
emotion-only face, a UTKFace face with another age-and-gender face; a soft target given
where the label is missing, a teacher's guess, counts as carrying the task) and ``lam`` is drawn
per image from Beta(alpha, alpha). Each head's target becomes the same blend of the two
faces' targets, weighted by their sample weights::

    weight = lam * w_i + (1 - lam) * w_j
    target = (lam * w_i * p_i + (1 - lam) * w_j * p_j) / weight

so the head's cross-entropy, linear in the target, is the blend of the two faces' losses.
Pairing within a label pattern keeps every label real: a blend never carries a task that
one of its faces lacks (no label is invented, none is half-missing). An image with no
partner of its pattern in the batch stays as it is.

The targets use :mod:`mtlfaces._losses`' layout, with the soft target always given:
column 0 the class index (of the face with the larger share, for the accuracy metric),
column 1 the weight, then the soft target.
"""

import numpy as np

from ._losses import MISSING


def soft_targets(target, n_classes):
    """(n, 2 + n_classes) targets from a head's (n, 2) or (n, 2 + n_classes) targets.

    The soft part is the row's own soft target where it has one, else the one-hot of
    its class (all zeros where the label is missing).
    """
    target = np.asarray(target, dtype=np.float32)
    codes = target[:, 0].astype(np.int64)
    onehot = np.zeros((len(target), n_classes), dtype=np.float32)
    known = codes >= 0
    onehot[np.flatnonzero(known), codes[known]] = 1.0
    if target.shape[1] > 2:
        soft = target[:, 2:]
        given = soft.sum(axis=1) > 0
        onehot[given] = soft[given]
    return np.concatenate([target[:, :2], onehot], axis=1)


def carries(target):
    """Which rows of a head's targets carry the task: a label, or a soft target (a
    teacher's guess where the label is missing)."""
    target = np.asarray(target)
    out = target[:, 0] >= 0
    if target.shape[1] > 2:
        out = out | (target[:, 2:].sum(axis=1) > 0)
    return out


def partners(patterns, rng):
    """For each row, another row with the same label pattern (itself when it has none).

    ``patterns`` is an (n,) array of hashable pattern codes; the partners are a random
    pairing within each pattern in which no row is its own partner.
    """
    patterns = np.asarray(patterns)
    out = np.arange(len(patterns))
    for value in np.unique(patterns):
        rows = np.flatnonzero(patterns == value)
        if len(rows) < 2:
            continue
        # A random cyclic shift of a random order: nobody is their own partner.
        order = rng.permutation(rows)
        out[order] = np.roll(order, int(rng.randint(1, len(rows))))
    return out


def mix_batch(images, targets, n_classes, alpha, rng):
    """Mix one batch; returns (images, targets) with every head's targets soft.

    Parameters
    ----------
    images : ndarray of shape (b, h, w, c)
    targets : dict of str to ndarray
        Each head's (b, 2) or (b, 2 + k) targets (:mod:`mtlfaces._losses`' layout).
    n_classes : dict of str to int
    alpha : float
        Beta(alpha, alpha) concentration; larger blends more evenly.
    rng : numpy.random.RandomState
    """
    tasks = list(targets)
    labelled = np.stack([carries(targets[t]) for t in tasks], axis=1)
    patterns = labelled @ (1 << np.arange(len(tasks)))
    j = partners(patterns, rng)
    lam = rng.beta(alpha, alpha, size=len(images)).astype(np.float32)
    lam[j == np.arange(len(images))] = 1.0
    shape = (-1,) + (1,) * (np.ndim(images) - 1)
    mixed = lam.reshape(shape) * images + (1 - lam).reshape(shape) * images[j]
    out = {}
    for t in tasks:
        soft = soft_targets(targets[t], n_classes[t])
        wi, wj = soft[:, 1] * lam, soft[j, 1] * (1 - lam)
        weight = wi + wj
        blend = wi[:, None] * soft[:, 2:] + wj[:, None] * soft[j, 2:]
        positive = weight > 0
        blend[positive] /= weight[positive, None]
        code = np.where(wi >= wj, soft[:, 0], soft[j, 0])
        code[~labelled[:, tasks.index(t)]] = MISSING
        out[t] = np.concatenate([code[:, None], weight[:, None], blend], axis=1)
    return mixed.astype(np.float32), out


def mixup_batches(images, targets, n_classes, batch_size, alpha, seed):
    """A ``keras.utils.PyDataset`` of shuffled, mixed batches (reshuffled every epoch)."""
    import keras

    class MixupBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.RandomState(seed)
            self.order = self.rng.permutation(len(images))

        def __len__(self):
            return int(np.ceil(len(images) / batch_size))

        def __getitem__(self, index):
            rows = np.sort(self.order[index * batch_size:(index + 1) * batch_size])
            return mix_batch(images[rows], {t: v[rows] for t, v in targets.items()},
                             n_classes, alpha, self.rng)

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(images))

    return MixupBatches()
