"""The sweep directory: velocity's interface, and the one owner of its files.

A sweep directory is self-describing (``docs/files.md``): ``plan.json``,
``status.json``, ``manifest.json``, one directory per run (``config.json``,
``rounds.csv``, ``timings.csv``, ``progress.json``, ``summary.json``, checkpoints),
and the reports. This package knows their names and shapes, reads them
(tolerating files from older versions and damaged ones, naming the file) and
writes them atomically (:mod:`.io`); :mod:`.lock` holds one driver per directory;
:mod:`.runs` reads a directory's runs; :mod:`.results` is ``results.csv``;
:mod:`.checkpoints` the saved models.

May import: the vocabulary (``velocity.spec``, ``velocity.strategy``,
``velocity.attacks``, ``velocity.errors``) and the standard library, numpy and
pydantic. Never: the simulation, the engine, the reports, the CLI.
"""
