"""numpy on the host: the default backend."""

from __future__ import annotations

import numpy as np

from convbench.backends.base import Backend

NUMPY = Backend(name="numpy", library="numpy", device="cpu", from_numpy=lambda a: a,
                owns=lambda a: isinstance(a, np.ndarray))
