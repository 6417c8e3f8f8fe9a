r"""A small multilayer network in NumPy: affine, ReLU, softmax cross-entropy.

The network the book trains to compare optimizers ("Deep Learning from
Scratch", sections 5 and 6.1.8): ``L`` affine layers with ReLU between them and
a softmax cross-entropy loss on top.  Parameters and gradients are plain dicts
``{"W1": ..., "b1": ..., "W2": ...}``, exactly what every npoptim optimizer's
``update(params, grads)`` takes.

Forward pass, for an input batch :math:`X` of shape ``(n, d)`` and layers
:math:`l = 1..L`:

.. math::
    h_0 = X, \qquad a_l = h_{l-1} W_l + b_l, \qquad
    h_l = \max(a_l, 0) \; (l < L), \qquad z = a_L

Loss, with integer labels :math:`y_i` and optional L2 penalty :math:`\lambda`
on the weights (not the biases), as in the book's ``weight_decay_lambda``:

.. math::
    \mathcal{L} = \frac{1}{n}\sum_i \Big(\log\sum_k e^{z_{ik}} - z_{i y_i}\Big)
                  + \frac{\lambda}{2}\sum_l \lVert W_l \rVert_F^2

Backward pass (Rumelhart, Hinton & Williams, 1986, "Learning representations by
back-propagating errors"):

.. math::
    \delta_L = \frac{1}{n}\big(\mathrm{softmax}(z) - \mathrm{onehot}(y)\big), \qquad
    \frac{\partial\mathcal{L}}{\partial W_l} = h_{l-1}^\top \delta_l + \lambda W_l, \qquad
    \frac{\partial\mathcal{L}}{\partial b_l} = \textstyle\sum_i \delta_{l,i}, \qquad
    \delta_{l-1} = (\delta_l W_l^\top) \odot [a_{l-1} > 0]

Initial weights follow He et al. (2015), "Delving deep into rectifiers",
eq. 10: :math:`W_l \sim \mathcal{N}(0, 2/\mathrm{fan\_in})`, biases zero.

>>> import numpy as np
>>> params = init_params([4, 8, 3], rng=np.random.default_rng(0))
>>> sorted(params), params["W1"].shape, params["b2"].shape
(['W1', 'W2', 'b1', 'b2'], (4, 8), (3,))
>>> loss, grads = loss_and_grads(params, np.ones((2, 4)), np.array([0, 2]))
>>> sorted(grads) == sorted(params)
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["layer_sizes", "init_params", "forward", "loss_and_grads", "loss", "predict", "accuracy"]


def layer_sizes(n_inputs: int, hidden: Sequence[int], n_classes: int) -> list[int]:
    """``[n_inputs, *hidden, n_classes]``, each checked to be a positive int."""
    sizes = [n_inputs, *hidden, n_classes]
    for i, s in enumerate(sizes):
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
            raise ValueError(f"layer sizes must be positive integers, got {s!r} at position {i} of {sizes}")
    return [int(s) for s in sizes]


def init_params(sizes: Sequence[int], *, rng: np.random.Generator, dtype: type = np.float64) -> dict[str, np.ndarray]:
    """He-initialised weights ``W1..WL`` and zero biases ``b1..bL``.

    ``sizes`` is ``[inputs, hidden..., outputs]``; ``rng`` is the only source
    of randomness, so the same generator state gives the same weights.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"init_params: rng must be a np.random.Generator, got {type(rng).__name__}")
    if len(sizes) < 2:
        raise ValueError(f"init_params: sizes needs at least an input and an output size, got {list(sizes)}")
    params: dict[str, np.ndarray] = {}
    for l, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):  # noqa: E741
        params[f"W{l}"] = (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(dtype)
        params[f"b{l}"] = np.zeros(fan_out, dtype=dtype)
    return params


def _n_layers(params: dict[str, np.ndarray]) -> int:
    n = len(params) // 2
    expected = {f"{p}{l}" for l in range(1, n + 1) for p in "Wb"}  # noqa: E741
    if len(params) % 2 or set(params) != expected:
        raise KeyError(f"params must have keys W1, b1, ..., WL, bL; got {sorted(params)}")
    return n


def forward(params: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Scores ``z`` (before the softmax) and the list of layer inputs ``h_0..h_{L-1}``."""
    n = _n_layers(params)
    h, inputs = x, []
    for l in range(1, n + 1):  # noqa: E741
        inputs.append(h)
        a = h @ params[f"W{l}"] + params[f"b{l}"]
        h = np.maximum(a, 0.0) if l < n else a
    return h, inputs


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)  # shift for stability; the result is unchanged
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _check_labels(y: np.ndarray, n: int, n_classes: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,) or y.dtype.kind not in "iu":
        raise ValueError(f"labels must be {n} integers (one per input row), got dtype {y.dtype} shape {y.shape}")
    if n and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got values in [{y.min()}, {y.max()}]")
    return y


def _l2(params: dict[str, np.ndarray], weight_decay_lambda: float) -> float:
    if weight_decay_lambda < 0:
        raise ValueError(f"weight_decay_lambda must be >= 0, got {weight_decay_lambda!r}")
    if not weight_decay_lambda:
        return 0.0
    return 0.5 * weight_decay_lambda * sum(float(np.sum(w * w)) for k, w in params.items() if k.startswith("W"))


def loss(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, *, weight_decay_lambda: float = 0.0) -> float:
    """Mean softmax cross-entropy of the batch, plus the L2 penalty."""
    z, _ = forward(params, x)
    y = _check_labels(y, len(x), z.shape[1])
    return float(-_log_softmax(z)[np.arange(len(y)), y].mean()) + _l2(params, weight_decay_lambda)


def loss_and_grads(
    params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, *, weight_decay_lambda: float = 0.0
) -> tuple[float, dict[str, np.ndarray]]:
    """The loss and its gradient with respect to every parameter (backprop)."""
    z, inputs = forward(params, x)
    n_rows, n = len(x), len(inputs)
    y = _check_labels(y, n_rows, z.shape[1])
    logp = _log_softmax(z)
    value = float(-logp[np.arange(n_rows), y].mean()) + _l2(params, weight_decay_lambda)

    delta = np.exp(logp)                      # softmax(z)
    delta[np.arange(n_rows), y] -= 1.0        # softmax(z) - onehot(y)
    delta /= n_rows
    grads: dict[str, np.ndarray] = {}
    for l in range(n, 0, -1):  # noqa: E741
        h, w = inputs[l - 1], params[f"W{l}"]
        grads[f"W{l}"] = h.T @ delta + weight_decay_lambda * w
        grads[f"b{l}"] = delta.sum(axis=0)
        if l > 1:
            delta = (delta @ w.T) * (h > 0)   # h = relu(a), so h > 0 exactly where a > 0
    return value, {k: grads[k] for k in params}


def predict(params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Predicted class of each row of ``x``."""
    return forward(params, x)[0].argmax(axis=1)


def accuracy(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of rows of ``x`` whose predicted class is ``y``."""
    return float(np.mean(predict(params, x) == np.asarray(y)))
