"""The sweep directory: velocity's interface, and the one owner of its files.

A sweep directory is self-describing (``docs/files.md``): ``plan.json``,
``status.json``, ``manifest.json``, one directory per run (``config.json``,
``rounds.csv``, ``timings.csv``, ``progress.json``, ``summary.json``, checkpoints),
and the reports. This package alone knows their names and shapes:

* :mod:`.names`: every file name (no other module spells one), and the check that a
  run is not named like a sweep file;
* :mod:`.models`: the files' shapes as pydantic models (plan, status, progress,
  summary, the rows of rounds.csv and timings.csv; config.json is
  ``velocity.spec.RunSpec``), written as declared and read leniently;
* :mod:`.comparison`: ``comparison.json``'s models (the recommendation, header,
  ranking, most robust per attack), which the MCP server's verdict reuses;
* :mod:`.files`: every read and write of a sweep directory, one function each;
* :mod:`.io`: atomic writes, JSON and CSV reads that name a damaged file;
* :mod:`.runs`: a directory's runs as the reports see them; :mod:`.results`:
  ``results.csv``; :mod:`.verify`: what ``--resume`` trusts; :mod:`.checkpoints`: the
  saved models; :mod:`.lock`: one driver per directory; :mod:`.queue`: runs that an
  extension queued into a running sweep;
* :mod:`.docs`: ``docs/files.md``'s field tables, generated from the models.

May import: the vocabulary (``velocity.spec``, ``velocity.strategy``,
``velocity.attacks``, ``velocity.errors``) and the standard library, numpy and
pydantic. Never: the simulation, the engine, the reports, the CLI. Importing this
package imports nothing (its modules are imported as needed).
"""
