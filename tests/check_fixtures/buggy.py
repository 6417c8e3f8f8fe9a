"""One defect per class (and two classes with two), each named by the code ``npoptim check`` must give.

``EXPECTED`` maps each class to its rule and exact codes; tests/test_check.py reads it.
"""
import numpy as np

EXPECTED = {
    "SGDIgnoresLr": ("sgd", ["constructor-error"]),
    "SGDTypoInit": ("sgd", ["constructor-error", "own-defaults"]),
    "SGDForgetsLr": ("sgd", ["constructor-error"]),
    "AdamNoSecondMoment": ("adam", ["state-missing"]),
    "SGDNotInPlace": ("sgd", ["not-in-place"]),
    "SGDMutatesGrads": ("sgd", ["mutates-grads"]),
    "MomentumSharedState": ("momentum", ["state-shared-across-keys"]),
    "MomentumOneVelocity": ("momentum", ["state-shared-across-keys"]),
    "AdamStepPerKey": ("adam", ["step-counted-per-key"]),
    "AdaGradEpsInside": ("adagrad", ["eps-inside-root"]),
    "RMSpropEpsInside": ("rmsprop", ["eps-inside-root"]),
    "NesterovUpdatedVelocity": ("nesterov", ["nesterov-updated-velocity"]),
    "AdamNoBiasCorrection": ("adam", ["no-bias-correction"]),
    "AdaGradForgets": ("adagrad", ["wrong-update"]),
    "MomentumWrongSign": ("momentum", ["wrong-update"]),
    "RMSpropFloat32": ("rmsprop", ["wrong-update"]),
    "AdamTwoDefects": ("adam", ["eps-inside-root", "no-bias-correction"]),
    "NesterovTwoDefects": ("nesterov", ["not-in-place", "nesterov-updated-velocity"]),
    "BookAdamStepPerKey": ("adam", ["step-counted-per-key", "eps-hat"]),
    "AdaGradInsideMutates": ("adagrad", ["eps-inside-root", "mutates-grads"]),
    "RMSpropSharedInside": ("rmsprop", ["eps-inside-root", "state-shared-across-keys"]),
    "AdamOffByOne": ("adam", ["wrong-update"]),
}


class SGDIgnoresLr:
    """constructor-error: the argument is not kept (a hard-coded rate)."""

    def __init__(self, lr=0.01):
        self.lr = 0.01

    def update(self, params, grads):
        for key in params:
            params[key] -= self.lr * grads[key]


class SGDTypoInit:
    """constructor-error: ``__int__`` for ``__init__``, so SGD(lr=...) raises; Class() works (own defaults)."""

    lr = 0.01

    def __int__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for key in params:
            params[key] -= self.lr * grads[key]


class SGDForgetsLr:
    """constructor-error: ``self.lr == lr`` compares instead of assigning; update then has no self.lr."""

    def __init__(self, lr=0.01):
        self.lr == lr  # noqa: B015

    def update(self, params, grads):
        for key in params:
            params[key] -= self.lr * grads[key]


class AdamNoSecondMoment:
    """state-missing: v is never created (the teaching code's Adam)."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.iter, self.m, self.v = 0, None, None

    def update(self, params, grads):
        if self.m is None:
            self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2**self.iter) / (1.0 - self.beta1**self.iter)
        for key in params:
            self.m[key] += (1 - self.beta1) * (grads[key] - self.m[key])
            self.v[key] += (1 - self.beta2) * (grads[key] ** 2 - self.v[key])
            params[key] -= lr_t * self.m[key] / (np.sqrt(self.v[key]) + 1e-7)


class SGDNotInPlace:
    """not-in-place: a new array is bound to the key."""

    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for key in params:
            params[key] = params[key] - self.lr * grads[key]


class SGDMutatesGrads:
    """mutates-grads: the gradient array is scaled in place."""

    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for key in params:
            grads[key] *= self.lr
            params[key] -= grads[key]


class MomentumSharedState:
    """state-shared-across-keys: one velocity per *shape*, so equal-shaped parameters share it."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, {}

    def update(self, params, grads):
        for key in params:
            v = self.v.setdefault(params[key].shape, np.zeros_like(params[key]))
            v *= self.momentum
            v -= self.lr * grads[key]
            params[key] += v


class MomentumOneVelocity:
    """state-shared-across-keys: one velocity array for every parameter (raises on different shapes)."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, None

    def update(self, params, grads):
        for key in params:
            if self.v is None:
                self.v = np.zeros_like(params[key])
            self.v = self.momentum * self.v - self.lr * grads[key]
            params[key] += self.v


class AdamStepPerKey:
    """step-counted-per-key: the step counter is advanced inside the loop over the keys."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.iter, self.m, self.v = 0, {}, {}

    def update(self, params, grads):
        for key in params:
            self.m.setdefault(key, np.zeros_like(params[key]))
            self.v.setdefault(key, np.zeros_like(params[key]))
            self.iter += 1
            self.m[key] = self.beta1 * self.m[key] + (1 - self.beta1) * grads[key]
            self.v[key] = self.beta2 * self.v[key] + (1 - self.beta2) * grads[key] ** 2
            m_hat = self.m[key] / (1 - self.beta1**self.iter)
            v_hat = self.v[key] / (1 - self.beta2**self.iter)
            params[key] -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)


class AdaGradEpsInside:
    """eps-inside-root."""

    def __init__(self, lr=0.01):
        self.lr, self.h = lr, None

    def update(self, params, grads):
        if self.h is None:
            self.h = {k: np.zeros_like(p) for k, p in params.items()}
        for key in params:
            self.h[key] += grads[key] * grads[key]
            params[key] -= self.lr * grads[key] / np.sqrt(self.h[key] + 1e-7)


class RMSpropEpsInside:
    """eps-inside-root (Keras' and optax's default placement)."""

    def __init__(self, lr=0.01, decay_rate=0.99):
        self.lr, self.decay_rate, self.h = lr, decay_rate, None

    def update(self, params, grads):
        if self.h is None:
            self.h = {k: np.zeros_like(p) for k, p in params.items()}
        for key in params:
            self.h[key] = self.decay_rate * self.h[key] + (1 - self.decay_rate) * grads[key] ** 2
            params[key] -= self.lr * grads[key] / np.sqrt(self.h[key] + 1e-8)


class NesterovUpdatedVelocity:
    """nesterov-updated-velocity, written as the book's formula with the new v."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, {}

    def update(self, params, grads):
        for key in params:
            v = self.v.setdefault(key, np.zeros_like(params[key]))
            v *= self.momentum
            v -= self.lr * grads[key]
            params[key] += self.momentum**2 * v - (1 + self.momentum) * self.lr * grads[key]


class AdamNoBiasCorrection:
    """no-bias-correction."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.m, self.v = {}, {}

    def update(self, params, grads):
        for key in params:
            m = self.m.setdefault(key, np.zeros_like(params[key]))
            v = self.v.setdefault(key, np.zeros_like(params[key]))
            m[...] = self.beta1 * m + (1 - self.beta1) * grads[key]
            v[...] = self.beta2 * v + (1 - self.beta2) * grads[key] ** 2
            params[key] -= self.lr * m / (np.sqrt(v) + 1e-8)


class AdaGradForgets:
    """wrong-update: h is overwritten with g² instead of accumulated."""

    def __init__(self, lr=0.01):
        self.lr, self.h = lr, {}

    def update(self, params, grads):
        for key in params:
            self.h[key] = grads[key] * grads[key]
            params[key] -= self.lr * grads[key] / (np.sqrt(self.h[key]) + 1e-7)


class MomentumWrongSign:
    """wrong-update: the old velocity is subtracted (v <- -mu v - lr g)."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, {}

    def update(self, params, grads):
        for key in params:
            v = self.v.get(key, np.zeros_like(params[key]))
            self.v[key] = -self.momentum * v - self.lr * grads[key]
            params[key] += self.v[key]


class RMSpropFloat32:
    """wrong-update, small: the accumulator is kept in float32 (a relative error of about 1e-7)."""

    def __init__(self, lr=0.01, decay_rate=0.99):
        self.lr, self.decay_rate, self.h = lr, decay_rate, {}

    def update(self, params, grads):
        for key in params:
            h = self.h.setdefault(key, np.zeros(params[key].shape, dtype=np.float32))
            h *= self.decay_rate
            h += (1 - self.decay_rate) * grads[key] * grads[key]
            params[key] -= self.lr * grads[key] / (np.sqrt(h) + 1e-7)


class AdamTwoDefects:
    """eps-inside-root and no-bias-correction together."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.m, self.v = {}, {}

    def update(self, params, grads):
        for key in params:
            m = self.m.setdefault(key, np.zeros_like(params[key]))
            v = self.v.setdefault(key, np.zeros_like(params[key]))
            m *= self.beta1
            m += (1 - self.beta1) * grads[key]
            v *= self.beta2
            v += (1 - self.beta2) * grads[key] ** 2
            params[key] -= self.lr * m / np.sqrt(v + 1e-8)


class NesterovTwoDefects:
    """nesterov-updated-velocity and not-in-place together."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, {}

    def update(self, params, grads):
        for key in params:
            v = self.momentum * self.v.get(key, 0.0) - self.lr * grads[key]
            self.v[key] = v
            params[key] = params[key] + self.momentum**2 * v - (1 + self.momentum) * self.lr * grads[key]


class BookAdamStepPerKey:
    """The book's Adam (eps-hat: a note) with its counter moved into the loop (step-counted-per-key)."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2, self.iter, self.m, self.v = lr, beta1, beta2, 0, None, None

    def update(self, params, grads):
        if self.m is None:
            self.m = {k: np.zeros_like(p) for k, p in params.items()}
            self.v = {k: np.zeros_like(p) for k, p in params.items()}
        for key in params.keys():
            self.iter += 1
            lr_t = self.lr * np.sqrt(1.0 - self.beta2**self.iter) / (1.0 - self.beta1**self.iter)
            self.m[key] += (1 - self.beta1) * (grads[key] - self.m[key])
            self.v[key] += (1 - self.beta2) * (grads[key] ** 2 - self.v[key])
            params[key] -= lr_t * self.m[key] / (np.sqrt(self.v[key]) + 1e-7)


class AdaGradInsideMutates:
    """eps-inside-root, and the gradient divided in place (mutates-grads)."""

    def __init__(self, lr=0.01):
        self.lr, self.h = lr, {}

    def update(self, params, grads):
        for key in params:
            h = self.h.setdefault(key, np.zeros_like(params[key]))
            h += grads[key] ** 2
            grads[key] /= np.sqrt(h + 1e-7)
            params[key] -= self.lr * grads[key]


class RMSpropSharedInside:
    """eps-inside-root, and one accumulator per shape (state-shared-across-keys)."""

    def __init__(self, lr=0.01, decay_rate=0.99):
        self.lr, self.decay_rate, self.h = lr, decay_rate, {}

    def update(self, params, grads):
        for key in params:
            h = self.h.setdefault(params[key].shape, np.zeros_like(params[key]))
            h *= self.decay_rate
            h += (1 - self.decay_rate) * grads[key] ** 2
            params[key] -= self.lr * grads[key] / np.sqrt(h + 1e-7)


class AdamOffByOne:
    """wrong-update: the step count starts at 2 (t initialised to 1, then incremented before use)."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2, self.t, self.m, self.v = lr, beta1, beta2, 1, {}, {}

    def update(self, params, grads):
        self.t += 1
        for key in params:
            m = self.m.setdefault(key, np.zeros_like(params[key]))
            v = self.v.setdefault(key, np.zeros_like(params[key]))
            m[...] = self.beta1 * m + (1 - self.beta1) * grads[key]
            v[...] = self.beta2 * v + (1 - self.beta2) * grads[key] ** 2
            params[key] -= self.lr * (m / (1 - self.beta1**self.t)) / (np.sqrt(v / (1 - self.beta2**self.t)) + 1e-8)
