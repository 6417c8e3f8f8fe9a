"""What is optimized: :mod:`.functions` (test functions), :mod:`.nn` (the book's MLP), :mod:`.data` (digits, MNIST).

The floor below the engine: it knows neither optimizers nor experiments.
"""
