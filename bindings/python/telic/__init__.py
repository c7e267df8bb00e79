"""Telic: objective-driven planning for robots, from Python.

This package imports without any compiled extension and without optional
dependencies. Subpackages:

- ``telic.train``: the JEPA world-model trainer (``python -m telic.train``),
  which needs the packages of ``bindings/requirements-train.txt`` (PyTorch,
  onnx, onnxruntime).
"""

__version__ = "0.1.0"
