"""What every notebook of the course shares.

- :mod:`utils.course.setup` – ``setup()``: seeds, determinism, threads, device, plots
- :mod:`utils.course.numerics` – pinned numerics (no torch on import), the course kernel, BLAS threads
- :mod:`utils.course.params` – validation of notebook parameters
- :mod:`utils.course.report` – headline metrics and stated numbers (``record``, ``expect``)
- :mod:`utils.course.grading` – lab checks and results
- :mod:`utils.course.threat_model` – the threat model of 00_orientation_and_threat_model
- :mod:`utils.course.plots` – image grids, confusion matrices, decision boundaries

Importing this package imports nothing else; each module loads what it needs.
"""
