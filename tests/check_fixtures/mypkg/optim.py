from mypkg.helpers import zeros_like


class SGD:
    def __init__(self, lr=0.01):
        self.lr = lr
        print("SGD built")  # a print in the class must not disturb the protocol

    def update(self, params, grads):
        for key in params:
            params[key] -= self.lr * grads[key] + zeros_like(params[key])
