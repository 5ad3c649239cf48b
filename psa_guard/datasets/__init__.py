"""The safety-data folder as data: where it is, the evaluation suites, and the training-side sets.

Read only, below every method and the evaluation harness: training code and the harness both
read it, and neither imports the other through it.

* :mod:`~psa_guard.datasets.folder`: locating the data folder and its files.
* :mod:`~psa_guard.datasets.suites`: the evaluation suites (never training data).
* :mod:`~psa_guard.datasets.training`: harmful training-side requests and the overlap key.
* :mod:`~psa_guard.datasets.trainside`: training-side prompt sets for tuning benchmarks.
"""
