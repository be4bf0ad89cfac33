"""One FL run: data (datasets, partitions), models, client training, the server loop.

:func:`velocity.sim.server.run_one` turns one :class:`~velocity.spec.RunSpec`
into a run directory's files; :mod:`.data` loads and partitions datasets;
:mod:`.models` holds the models and their (batched) local training.

May import: the vocabulary, the Rust core (``velocity._core``) and the sweep
directory (``velocity.sweepdir``, to write its files). Never: the engine, the
reports, the CLI.
"""
