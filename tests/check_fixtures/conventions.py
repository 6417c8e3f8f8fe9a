"""Correct optimizers written in other correct conventions: each must pass with no defect.

``EXPECTED`` maps each class to its rule and the exact (note) codes; tests/test_check.py reads it.
"""
import math

import numpy as np

EXPECTED = {
    "TorchMomentum": ("momentum", ["torch-momentum-form"]),
    "MomentumPositiveVelocity": ("momentum", []),
    "TorchNesterov": ("nesterov", ["torch-momentum-form"]),
    "KerasNesterov": ("nesterov", []),
    "AdamAlgorithm1": ("adam", []),
    "AdamEpsArgument": ("adam", []),
    "AdaGradTorchEps": ("adagrad", []),
    "RMSpropIncremental": ("rmsprop", []),
    "SGDLearningRateName": ("sgd", []),
    "AdamOwnDefaults": ("adam", ["default-differs", "default-differs"]),
    "AdamFixedBetas": ("adam", ["hyperparameter-not-accepted", "hyperparameter-not-accepted"]),
}


class TorchMomentum:
    """torch.optim.SGD(momentum=mu): b <- mu b + g; w <- w - lr b (equal to v <- mu v - lr g at constant lr)."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.b = lr, momentum, {}

    def update(self, params, grads):
        for key in params:
            b = self.b.setdefault(key, np.zeros_like(params[key]))
            b *= self.momentum
            b += grads[key]
            params[key] -= self.lr * b


class MomentumPositiveVelocity:
    """v <- mu v + lr g; w <- w - v: the book's Momentum with the velocity's sign flipped (v = -v_book)."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, {}

    def update(self, params, grads):
        for key in params:
            v = self.v.setdefault(key, np.zeros_like(params[key]))
            v *= self.momentum
            v += self.lr * grads[key]
            params[key] -= v


class TorchNesterov:
    """torch.optim.SGD(momentum=mu, nesterov=True): b <- mu b + g; w <- w - lr (g + mu b)."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.b = lr, momentum, {}

    def update(self, params, grads):
        for key in params:
            b = self.b.setdefault(key, np.zeros_like(params[key]))
            b[...] = self.momentum * b + grads[key]
            params[key] -= self.lr * (grads[key] + self.momentum * b)


class KerasNesterov:
    """Keras: v' <- mu v - lr g; w <- w + mu v' - lr g (the *updated* velocity, but with mu, not mu squared)."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, {}

    def update(self, params, grads):
        for key in params:
            v = self.v.get(key, np.zeros_like(params[key]))
            v = self.momentum * v - self.lr * grads[key]
            self.v[key] = v
            params[key] += self.momentum * v - self.lr * grads[key]


class AdamAlgorithm1:
    """Kingma & Ba, Algorithm 1, eps = 1e-8 outside the root of the corrected v."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.t, self.m, self.v = 0, None, None

    def update(self, params, grads):
        if self.m is None:
            self.m = {k: np.zeros_like(p) for k, p in params.items()}
            self.v = {k: np.zeros_like(p) for k, p in params.items()}
        self.t += 1
        for key in params:
            self.m[key] = self.beta1 * self.m[key] + (1 - self.beta1) * grads[key]
            self.v[key] = self.beta2 * self.v[key] + (1 - self.beta2) * grads[key] ** 2
            m_hat = self.m[key] / (1 - self.beta1**self.t)
            v_hat = self.v[key] / (1 - self.beta2**self.t)
            params[key] -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)


class AdamEpsArgument(AdamAlgorithm1):
    """Algorithm 1 with eps an argument (default 1e-10) and the corrections as scalars."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-10):
        super().__init__(lr, beta1, beta2)
        self.eps = eps

    def update(self, params, grads):
        if self.m is None:
            self.m = {k: np.zeros_like(p) for k, p in params.items()}
            self.v = {k: np.zeros_like(p) for k, p in params.items()}
        self.t += 1
        c1, c2 = 1 - self.beta1**self.t, math.sqrt(1 - self.beta2**self.t)
        for key in params:
            self.m[key] += (1 - self.beta1) * (grads[key] - self.m[key])
            self.v[key] += (1 - self.beta2) * (grads[key] * grads[key] - self.v[key])
            params[key] -= (self.lr / c1) * self.m[key] / (np.sqrt(self.v[key]) / c2 + self.eps)


class AdaGradTorchEps:
    """AdaGrad with torch's eps = 1e-10 (outside the root)."""

    def __init__(self, lr=0.01):
        self.lr, self.h = lr, {}

    def update(self, params, grads):
        for key in params:
            h = self.h.setdefault(key, np.zeros_like(params[key]))
            h += grads[key] ** 2
            params[key] -= self.lr * grads[key] / (np.sqrt(h) + 1e-10)


class RMSpropIncremental:
    """RMSprop written as h += (1 - rho)(g^2 - h)."""

    def __init__(self, lr=0.01, decay_rate=0.99):
        self.lr, self.decay_rate, self.h = lr, decay_rate, {}

    def update(self, params, grads):
        for key in params:
            h = self.h.setdefault(key, np.zeros_like(params[key]))
            h += (1 - self.decay_rate) * (grads[key] ** 2 - h)
            params[key] -= self.lr * grads[key] / (np.sqrt(h) + 1e-7)


class SGDLearningRateName:
    """Stores the rate under another attribute name: still correct."""

    def __init__(self, lr=0.01):
        self.learning_rate = lr

    def update(self, params, grads):
        for key in params:
            params[key] -= self.learning_rate * grads[key]


class AdamOwnDefaults(AdamAlgorithm1):
    """Algorithm 1 with other defaults (a note: check passes the book's values explicitly)."""

    def __init__(self, lr=0.01, beta1=0.9, beta2=0.99):
        super().__init__(lr, beta1, beta2)


class AdamFixedBetas(AdamAlgorithm1):
    """Takes only lr; the betas are fixed at the book's values (a note for each)."""

    def __init__(self, lr=0.001):
        super().__init__(lr, 0.9, 0.999)
