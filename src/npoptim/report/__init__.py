"""From results to files: figures (:mod:`.plotting`), markdown reports (:mod:`.markdown`), the trajectories'
figures, GIF and text (:mod:`.trajectories`), the training outputs (:mod:`.training`), JSON (:mod:`.files`).

It reads the plain records of the engine and the result dicts of the experiments; it runs no optimizer.
"""
