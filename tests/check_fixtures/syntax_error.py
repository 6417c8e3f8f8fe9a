import numpy as np

class SGD:
    def __init__(self, lr=0.01)
        self.lr = lr
