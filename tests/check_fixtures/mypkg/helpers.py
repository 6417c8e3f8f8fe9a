import numpy as np


def zeros_like(a):
    return np.zeros_like(a)
