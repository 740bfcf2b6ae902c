"""Course tooling: what builds, runs and checks the course, not what it teaches.

None of these modules imports torch at import time, so cleaning a notebook or
checking the lock file does not load the ML stack.

- :mod:`utils.tooling.notebooks` – the notebook cleaner and the lab generator
- :mod:`utils.tooling.runner` – ``make run`` and ``make seeds``
- :mod:`utils.tooling.benchmarks` – ``make bench``
- :mod:`utils.tooling.lockfile` – ``requirements.lock`` and ``environment.yml``

The pinned numerics and the course kernel are in :mod:`utils.course.numerics`
(the library needs them too; that module imports no torch either).
"""
