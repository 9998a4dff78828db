"""Masked multi-task loss and metric.

Each head's target is a (n, 2) float array: column 0 the class index (-1 when the
label is missing), column 1 the sample's weight; a (n, 2 + n_classes) array adds a
soft target per sample (``age_sigma``, ``fit(soft_targets=...)``), used instead of the
class's one-hot where its row is not all zeros. A sample with neither a label nor a soft
target contributes nothing to that head's loss; one with a soft target and no label (a
teacher's guess, in distillation) counts in the loss but not in the accuracy. A head's
loss is the weighted mean over the samples of the batch that carry that task, so its
scale does not depend on how many do.
"""

MISSING = -1


def masked_crossentropy(label_smoothing=0.0):
    """Return a Keras loss function for one head (see module docstring)."""
    from keras import ops

    def loss(y_true, y_pred):
        labels = ops.cast(y_true[:, 0], "int32")
        weights = ops.cast(y_true[:, 1], "float32")
        mask = ops.cast(ops.greater_equal(labels, 0), "float32")
        y_pred = ops.cast(y_pred, "float32")
        n_classes = ops.shape(y_pred)[-1]
        onehot = ops.one_hot(ops.maximum(labels, 0), n_classes)
        if y_true.shape[-1] is not None and y_true.shape[-1] > 2:
            soft = ops.cast(y_true[:, 2:], "float32")
            given = ops.cast(ops.greater(ops.sum(soft, axis=-1, keepdims=True), 0.0), "float32")
            onehot = given * soft + (1.0 - given) * onehot
            mask = ops.maximum(mask, given[:, 0])
        if label_smoothing:
            onehot = onehot * (1.0 - label_smoothing) + label_smoothing / n_classes
        ce = -ops.sum(onehot * ops.log(ops.clip(y_pred, 1e-7, 1.0)), axis=-1)
        batch = ops.cast(ops.shape(labels)[0], "float32")
        # Keras averages the returned vector over the batch: rescale so the
        # result is the mean over labelled samples only.
        return ce * weights * mask * (batch / ops.maximum(ops.sum(mask), 1.0))

    loss.__name__ = "masked_crossentropy"
    return loss


def masked_accuracy_metric(name="accuracy"):
    """A Keras metric: accuracy over the samples whose label is present."""
    import keras
    from keras import ops

    class MaskedAccuracy(keras.metrics.Metric):
        def __init__(self, name=name, **kwargs):
            super().__init__(name=name, **kwargs)
            self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
            self.count = self.add_variable(shape=(), initializer="zeros", name="count")

        def update_state(self, y_true, y_pred, sample_weight=None):
            labels = ops.cast(y_true[:, 0], "int32")
            mask = ops.cast(ops.greater_equal(labels, 0), "float32")
            hits = ops.cast(
                ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), labels), "float32"
            )
            self.correct.assign_add(ops.sum(hits * mask))
            self.count.assign_add(ops.sum(mask))

        def result(self):
            return self.correct / ops.maximum(self.count, 1.0)

        def reset_state(self):
            self.correct.assign(0.0)
            self.count.assign(0.0)

    return MaskedAccuracy()
