"""Course tooling: what builds, runs and checks the course, not what it teaches.

None of these modules imports torch at import time, so cleaning a notebook or
checking the lock file does not load the ML stack.

- :mod:`utils.tooling.notebooks` – the notebook cleaner and the lab generator
- :mod:`utils.tooling.runner` – ``make run`` and ``make seeds``
- :mod:`utils.tooling.benchmarks` – ``make bench``
- :mod:`utils.tooling.lockfile` – ``requirements.lock`` and ``environment.yml``
- :mod:`utils.tooling.numerics` – the pinned numerics and the course kernel
"""
