"""Cases from a QA pass (issue 16b): defects the first fixtures did not cover, and correct classes in other styles.

``EXPECTED`` maps each class to its rule and exact codes (a defect code means the verdict is fail);
each class's docstring says which line makes it so.  tests/test_check.py reads the table.
"""
import math

import numpy as np

EXPECTED = {
    "SGDLrTwice": ("sgd", ["wrong-update"]),
    "MomentumLrTwice": ("momentum", ["wrong-update"]),
    "AdamTZeroNumpy": ("adam", ["wrong-update"]),
    "AdamTZeroPython": ("adam", ["wrong-update"]),
    "AdamNormClip": ("adam", ["wrong-update"]),
    "AdamBetasSwapped": ("adam", ["wrong-update"]),
    "MomentumForgets": ("momentum", ["wrong-update"]),
    "MomentumIdGrads": ("momentum", ["wrong-update"]),
    "SGDIgnoresLastKey": ("sgd", ["wrong-update"]),
    "AdamIgnoresBias": ("adam", ["wrong-update"]),
    "AdamEvenSteps": ("adam", ["wrong-update"]),
    "MomentumPrevGrads": ("momentum", ["wrong-update"]),
    "AdamClip": ("adam", ["wrong-update"]),
    "SGDHardcodedInUpdate": ("sgd", ["constructor-error"]),
    "AdamGlobalState": ("adam", ["state-shared-across-keys"]),
    "SGDRebindsGrads": ("sgd", ["mutates-grads"]),
    "AdamRaisesOnCall3": ("adam", ["wrong-update"]),
    "SGDUpdateTakesEpoch": ("sgd", ["wrong-update"]),
    "AdamNumpyInt32T": ("adam", ["eps-hat"]),
    "NesterovCS231n": ("nesterov", []),
    "MomentumKwargs": ("momentum", []),
    "AdaGradFloat32Safe": ("adagrad", []),
    "SGDStoresParams": ("sgd", []),
    "SGDPrints": ("sgd", []),
    "AdamIdParams": ("adam", []),
}


class SGDLrTwice:
    """wrong-update: lr applied twice (step = lr * (lr * g)); the rate is kept, the formula is wrong (not constructor-error)."""

    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for k in params:
            step = self.lr * grads[k]
            params[k] -= self.lr * step


class MomentumLrTwice:
    """wrong-update: w += lr * v with v already scaled by lr (lr twice), not constructor-error."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, {}

    def update(self, params, grads):
        for k in params:
            v = self.v.setdefault(k, np.zeros_like(params[k]))
            v[...] = self.momentum * v - self.lr * grads[k]
            params[k] += self.lr * v


class AdamTZeroNumpy:
    """wrong-update: t incremented after use, so call 1 divides by 1 - beta**0 = 0 (NumPy: nan, no exception); nan on both shared probes is the same path, not shared state."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2, self.t, self.m, self.v = lr, beta1, beta2, 0, {}, {}

    def update(self, params, grads):
        for k in params:
            m = self.m.setdefault(k, np.zeros_like(params[k]))
            v = self.v.setdefault(k, np.zeros_like(params[k]))
            m[...] = self.beta1 * m + (1 - self.beta1) * grads[k]
            v[...] = self.beta2 * v + (1 - self.beta2) * grads[k] ** 2
            params[k] -= self.lr * (m / (1 - self.beta1**self.t)) / (np.sqrt(v / (1 - self.beta2**self.t)) + 1e-8)
        self.t += 1


class AdamTZeroPython:
    """wrong-update: the book's lr_t with t incremented after use: ZeroDivisionError on call 1 is the formula's arithmetic, not state-missing."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2, self.iter, self.m, self.v = lr, beta1, beta2, 0, None, None

    def update(self, params, grads):
        if self.m is None:
            self.m = {k: np.zeros_like(p) for k, p in params.items()}
            self.v = {k: np.zeros_like(p) for k, p in params.items()}
        lr_t = self.lr * math.sqrt(1.0 - self.beta2**self.iter) / (1.0 - self.beta1**self.iter)
        self.iter += 1
        for k in params:
            self.m[k] += (1 - self.beta1) * (grads[k] - self.m[k])
            self.v[k] += (1 - self.beta2) * (grads[k] ** 2 - self.v[k])
            params[k] -= lr_t * self.m[k] / (np.sqrt(self.v[k]) + 1e-7)


class AdamNormClip:
    """wrong-update: clips by the global gradient norm (5), so a's step reads b's gradient within the call: a coupling, not shared state."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2, self.t, self.m, self.v = lr, beta1, beta2, 0, {}, {}

    def update(self, params, grads):
        self.t += 1
        norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
        scale = min(1.0, 5.0 / norm) if norm > 0 else 1.0
        for k in params:
            g = grads[k] * scale
            m = self.m.setdefault(k, np.zeros_like(params[k]))
            v = self.v.setdefault(k, np.zeros_like(params[k]))
            m[...] = self.beta1 * m + (1 - self.beta1) * g
            v[...] = self.beta2 * v + (1 - self.beta2) * g ** 2
            params[k] -= self.lr * (m / (1 - self.beta1**self.t)) / (np.sqrt(v / (1 - self.beta2**self.t)) + 1e-8)


class AdamBetasSwapped:
    """wrong-update: beta1 and beta2 swapped in __init__ (self.beta1 = beta2): invisible on constant gradients, seen on random ones."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2, self.t, self.m, self.v = lr, beta2, beta1, 0, {}, {}

    def update(self, params, grads):
        self.t += 1
        for k in params:
            m = self.m.setdefault(k, np.zeros_like(params[k]))
            v = self.v.setdefault(k, np.zeros_like(params[k]))
            m[...] = self.beta1 * m + (1 - self.beta1) * grads[k]
            v[...] = self.beta2 * v + (1 - self.beta2) * grads[k] ** 2
            params[k] -= self.lr * (m / (1 - self.beta1**self.t)) / (np.sqrt(v / (1 - self.beta2**self.t)) + 1e-8)


class MomentumForgets:
    """wrong-update: the velocity is recreated on every call (forgotten between calls)."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum = lr, momentum

    def update(self, params, grads):
        v = {k: np.zeros_like(p) for k, p in params.items()}
        for k in params:
            v[k] = self.momentum * v[k] - self.lr * grads[k]
            params[k] += v[k]


class MomentumIdGrads:
    """wrong-update: state keyed by id(grads[k]): each call's gradients are new arrays, so the velocity is lost."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, {}

    def update(self, params, grads):
        for k in params:
            v = self.v.setdefault(id(grads[k]), np.zeros_like(params[k]))
            v[...] = self.momentum * v - self.lr * grads[k]
            params[k] += v


class SGDIgnoresLastKey:
    """wrong-update: skips the last key when there are several."""

    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        keys = list(params)
        for k in keys[:-1] if len(keys) > 1 else keys:
            params[k] -= self.lr * grads[k]


class AdamIgnoresBias:
    """wrong-update: skips every key starting with 'b' (meant for batch-norm buffers)."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2, self.t, self.m, self.v = lr, beta1, beta2, 0, {}, {}

    def update(self, params, grads):
        self.t += 1
        for k in params:
            if k.startswith("b"):
                continue
            m = self.m.setdefault(k, np.zeros_like(params[k]))
            v = self.v.setdefault(k, np.zeros_like(params[k]))
            m[...] = self.beta1 * m + (1 - self.beta1) * grads[k]
            v[...] = self.beta2 * v + (1 - self.beta2) * grads[k] ** 2
            params[k] -= self.lr * (m / (1 - self.beta1**self.t)) / (np.sqrt(v / (1 - self.beta2**self.t)) + 1e-8)


class AdamEvenSteps:
    """wrong-update: updates only on even calls."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2, self.t, self.m, self.v, self.n = lr, beta1, beta2, 0, {}, {}, 0

    def update(self, params, grads):
        self.n += 1
        if self.n % 2:
            return
        self.t += 1
        for k in params:
            m = self.m.setdefault(k, np.zeros_like(params[k]))
            v = self.v.setdefault(k, np.zeros_like(params[k]))
            m[...] = self.beta1 * m + (1 - self.beta1) * grads[k]
            v[...] = self.beta2 * v + (1 - self.beta2) * grads[k] ** 2
            params[k] -= self.lr * (m / (1 - self.beta1**self.t)) / (np.sqrt(v / (1 - self.beta2**self.t)) + 1e-8)


class MomentumPrevGrads:
    """wrong-update: uses the gradients of the previous call (invisible on constant gradients)."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.v, self.prev = lr, momentum, {}, None

    def update(self, params, grads):
        use = self.prev if self.prev is not None else grads
        for k in params:
            v = self.v.setdefault(k, np.zeros_like(params[k]))
            v[...] = self.momentum * v - self.lr * use[k]
            params[k] += v
        self.prev = {k: g.copy() for k, g in grads.items()}


class AdamClip:
    """wrong-update: silently clips each gradient element to [-1, 1]."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2, self.t, self.m, self.v = lr, beta1, beta2, 0, {}, {}

    def update(self, params, grads):
        self.t += 1
        for k in params:
            g = np.clip(grads[k], -1.0, 1.0)
            m = self.m.setdefault(k, np.zeros_like(params[k]))
            v = self.v.setdefault(k, np.zeros_like(params[k]))
            m[...] = self.beta1 * m + (1 - self.beta1) * g
            v[...] = self.beta2 * v + (1 - self.beta2) * g ** 2
            params[k] -= self.lr * (m / (1 - self.beta1**self.t)) / (np.sqrt(v / (1 - self.beta2**self.t)) + 1e-8)


class SGDHardcodedInUpdate:
    """constructor-error: self.lr is kept, but update uses the literal 0.01 (the step does not depend on lr)."""

    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for k in params:
            params[k] -= 0.01 * grads[k]


class AdamGlobalState:
    """state-shared-across-keys: one m and v (scalars that broadcast) for every key."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2, self.t, self.m, self.v = lr, beta1, beta2, 0, 0.0, 0.0

    def update(self, params, grads):
        self.t += 1
        for k in params:
            self.m = self.beta1 * self.m + (1 - self.beta1) * grads[k]
            self.v = self.beta2 * self.v + (1 - self.beta2) * grads[k] ** 2
            mh = self.m / (1 - self.beta1 ** self.t)
            vh = self.v / (1 - self.beta2 ** self.t)
            params[k] -= self.lr * mh / (np.sqrt(vh) + 1e-8)


class AdamNumpyInt32T:
    """correct (the book's form): t kept as numpy.int32, m += (1-b1)(g-m), np.power, sorted keys."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.t = np.int32(0)
        self.state = {}

    def update(self, params, grads):
        self.t = self.t + np.int32(1)
        lr_t = self.lr * np.sqrt(1 - np.power(self.beta2, self.t)) / (1 - np.power(self.beta1, self.t))
        for k in sorted(params):
            st = self.state.setdefault(k, {"m": np.zeros_like(params[k]), "v": np.zeros_like(params[k])})
            st["m"] += (1 - self.beta1) * (grads[k] - st["m"])
            st["v"] += (1 - self.beta2) * (grads[k] ** 2 - st["v"])
            params[k] -= lr_t * st["m"] / (np.sqrt(st["v"]) + 1e-7)


class NesterovCS231n:
    """correct: cs231n's w += -mu v_prev + (1+mu) v, state via dict.get."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.mu, self.v = lr, momentum, {}

    def update(self, params, grads):
        for k in params:
            v_prev = self.v.get(k, np.zeros_like(params[k]))
            v = self.mu * v_prev - self.lr * grads[k]
            self.v[k] = v
            params[k] += -self.mu * v_prev + (1 + self.mu) * v


class MomentumKwargs:
    """correct: momentum taken from **kwargs, which refuses unknown names."""

    def __init__(self, lr=0.01, **kwargs):
        self.lr = lr
        self.momentum = kwargs.pop("momentum", 0.9)
        if kwargs:
            raise TypeError(f"unexpected arguments {sorted(kwargs)}")
        self.v = None

    def update(self, params, grads):
        if self.v is None:
            self.v = {k: np.zeros_like(val) for k, val in params.items()}
        for k in params.keys():
            self.v[k] = self.momentum * self.v[k] - self.lr * grads[k]
            params[k] += self.v[k]


class AdaGradFloat32Safe:
    """correct: state in the parameter's own dtype, constants cast with p.dtype.type."""

    def __init__(self, lr=0.01):
        self.lr, self.h = lr, {}

    def update(self, params, grads):
        for k, p in params.items():
            h = self.h.setdefault(k, np.zeros(p.shape, dtype=p.dtype))
            g = grads[k].astype(p.dtype, copy=False)
            h += g * g
            p -= p.dtype.type(self.lr) * g / (np.sqrt(h) + p.dtype.type(1e-7))


class SGDStoresParams:
    """correct: stores params and grads as attributes, updates with np.subtract(out=), returns params."""

    def __init__(self, lr=0.01):
        self.lr = lr
        self.params = None

    def update(self, params, grads):
        self.params, self.grads = params, grads
        self._step()
        return self.params

    def _step(self):
        for k in self.params:
            np.subtract(self.params[k], self.lr * self.grads[k], out=self.params[k])


class SGDPrints:
    """correct: prints in __init__ and update (the prints go to stderr, not into the protocol)."""

    def __init__(self, lr=0.01):
        self.lr = lr
        print("built SGD with", lr)

    def update(self, params, grads):
        for k in params:
            print("updating", k, params[k].shape)
            params[k] -= self.lr * grads[k]


class AdamIdParams:
    """correct: state keyed by id(params[k]); the arrays are the same objects every call."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2, self.t, self.s = lr, beta1, beta2, 0, {}

    def update(self, params, grads):
        self.t += 1
        for k, p in params.items():
            m, v = self.s.setdefault(id(p), (np.zeros_like(p), np.zeros_like(p)))
            m += (1 - self.beta1) * (grads[k] - m)
            v += (1 - self.beta2) * (grads[k] ** 2 - v)
            p -= self.lr * (m / (1 - self.beta1 ** self.t)) / (np.sqrt(v / (1 - self.beta2 ** self.t)) + 1e-8)


class SGDRebindsGrads:
    """mutates-grads: ``grads[key] = grads[key] * self.lr`` replaces the caller's dict entry (the array itself
    is untouched), so a caller logging the gradients after the update sees lr * g."""

    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for key in params:
            grads[key] = grads[key] * self.lr
            params[key] -= grads[key]


class AdamRaisesOnCall3:
    """wrong-update: the bias corrections come from a table precomputed for two steps; call 3 raises
    IndexError (a later call: not state-missing, which is about calls 1 and 2)."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2, self.t, self.m, self.v = lr, beta1, beta2, 0, {}, {}
        self.c1 = [1 - beta1**t for t in (1, 2)]
        self.c2 = [1 - beta2**t for t in (1, 2)]

    def update(self, params, grads):
        self.t += 1
        c1, c2 = self.c1[self.t - 1], self.c2[self.t - 1]
        for k in params:
            m = self.m.setdefault(k, np.zeros_like(params[k]))
            v = self.v.setdefault(k, np.zeros_like(params[k]))
            m[...] = self.beta1 * m + (1 - self.beta1) * grads[k]
            v[...] = self.beta2 * v + (1 - self.beta2) * grads[k] ** 2
            params[k] -= self.lr * (m / c1) / (np.sqrt(v / c2) + 1e-8)


class SGDUpdateTakesEpoch:
    """wrong-update: ``update(self, params, grads, epoch)`` cannot be called as the book's networks call it
    (a TypeError at the call, before any line runs: not state-missing)."""

    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads, epoch):
        for key in params:
            params[key] -= self.lr * grads[key]
