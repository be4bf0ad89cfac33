"""The verdict and the reports: pure functions of a sweep directory's files.

:mod:`.verdict` computes the recommendation; :mod:`.comparison` builds
``comparison.json``; :mod:`.markdown` renders ``comparison.md`` and the console
summary; :mod:`.plots` and :mod:`.html` the pictures and ``report.html``;
:mod:`.render` writes all of them (``velocity report DIR``).

May import: the vocabulary and the sweep directory. Never: the simulation, the
engine, the CLI — so any sweep, from any velocity version, can be re-rendered.
"""
