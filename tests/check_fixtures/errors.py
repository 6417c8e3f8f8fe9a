"""Classes that cannot be graded (tests/test_check.py): each must give a clear error, exit status 2."""
import numpy as np


class NoUpdate:
    def __init__(self, lr=0.01):
        self.lr = lr

    def step(self, params, grads):
        pass


class SGDLoopsForever:
    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        while True:
            pass


class SGDExits:
    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        import os

        os._exit(3)


def sgd(lr=0.01):
    return np.zeros(1)
