"""A sweep: its plan, the executors (a local process pool, Ray), its status and progress.

:func:`velocity.engine.sweep.run_sweep` validates every run before anything is
written, takes the sweep directory's lock, runs each RunSpec through
``velocity.sim.server.run_one`` in a worker, tracks ``status.json``, survives
failing runs, and ends with the reports. Runs come in batches: the runs an
extension queued (:mod:`velocity.engine.extend`), and the repeats of a sweep run
until decided (:mod:`velocity.engine.until`, the rule in :mod:`velocity.engine.decide`).

May import: the vocabulary, the sweep directory, the simulation, and the reports
(``velocity.report.render`` at the end of a sweep; the verdict and the observations
of ``velocity.report.comparison`` to decide). Never: the CLI or the MCP server.
"""
