"""The robustness literature's qualitative table, reproduced on Fashion-MNIST.

Four claims, each printed as *expected* vs *measured* (final test accuracy, mean ± std
over seeds) with whether it reproduced under a criterion fixed in this file before any
result was seen (:data:`BREAKS_PP`, :data:`HOLDS_PP`, :data:`DEGRADES_PP`,
:data:`HURTS_PP`):

1. One Gaussian client breaks FedAvg; Krum and Median hold.
   Blanchard, El Mhamdi, Guerraoui and Stainer, "Machine Learning with Adversaries:
   Byzantine Tolerant Gradient Descent", NeurIPS 2017 [Blanchard et al., 2017].
   Paper: https://papers.nips.cc/paper/6617 — their Gaussian Byzantine worker sends
   N(0, 200²) per coordinate.
2. Inner product manipulation with a small ε (0.1) breaks Krum; with a large ε (100) it
   breaks the mean.
   Xie, Koyejo and Gupta, "Fall of Empires: Breaking Byzantine-tolerant SGD by Inner
   Product Manipulation", UAI 2019 [Xie et al., 2019].
   Paper: https://arxiv.org/abs/1903.03936
3. ALIE degrades Median and TrimmedMean, most of all non-IID with one local step (the
   distributed-SGD setting).
   Baruch, Baruch and Goldberg, "A Little Is Enough: Circumventing Defenses for
   Distributed Learning", NeurIPS 2019 [Baruch et al., 2019].
   Paper: https://arxiv.org/abs/1902.06156 — n = 50 workers, about 20% Byzantine, z
   from their formula (velocity's ``alie`` derives it from n and f when ``z`` is unset).
4. Strong heterogeneity hurts Krum and Median with no attack at all.
   Karimireddy, He and Jaggi, "Byzantine-Robust Learning on Heterogeneous Datasets via
   Bucketing", ICLR 2022 [Karimireddy et al., 2022].
   Paper: https://arxiv.org/abs/2006.09365

velocity is driven the way a user drives it: one experiment file per setting (written
into the output directory), one ``velocity sweep FILE --out DIR`` subprocess each, and
the table is read back from each sweep's ``results.csv`` (``velocity.load_results``)
and, for Krum, each run's ``summary.json`` (how often a Byzantine update was the one
kept). No training is re-implemented here. A diverged run counts as accuracy 0, as in
the verdict.

The settings (:func:`settings`): 50 clients holding 600 Fashion-MNIST training images
each, all of them in every round (``fraction_fit = 1``: the papers' synchronous
workers, so f Byzantine of n holds every round), minibatch 32, plain SGD, the 10,000
test images. Three data settings: IID with one local step per round (distributed SGD),
McMahan et al.'s label shards (two label-sorted shards per client) with one local step,
and the same shards with one local epoch (19 minibatches). The attack strengths are
the papers' values and are never tuned: Gaussian σ = 200 on one client; IPM ε = 0.1
and ε = 100 on f = 10 of 50; ALIE on f = 10 of 50 with the paper's z. Krum declares
f = 10, TrimmedMean trims β = 0.2 (10 per tail).

Not a test: it prints a table. ``python bench/literature.py`` (3 seeds, about ten
minutes on 2 cores), ``--quick`` (1 seed, fewer rounds: a smoke check), ``--markdown``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: "breaks": the mean attacked accuracy is more than this many points below the same
#: rule's clean accuracy (or the run diverged, counted as 0).
BREAKS_PP = 10.0
#: "holds": the mean attacked accuracy is within this many points of the clean one.
HOLDS_PP = 5.0
#: "degrades": the mean attacked accuracy is at least this many points below clean.
DEGRADES_PP = 5.0
#: "hurts" (no attack): the rule's mean accuracy under label shards is at least this
#: many points below FedAvg's in the same setting.
HURTS_PP = 5.0

CLIENTS = 50
BYZANTINE = 10  # f = n/5: Baruch et al.'s ~20%, within Krum's n > 2f + 2
SAMPLES_PER_CLIENT = 600
BATCH = 32
GAUSSIAN_SIGMA = 200.0  # Blanchard et al. 2017, Sec. 5: N(0, 200^2 I)
IPM_SMALL = 0.1  # Xie et al. 2019: against Krum
IPM_LARGE = 100.0  # Xie et al. 2019: against the mean / median

#: Learning rate and rounds per model for one local step per round (distributed SGD),
#: chosen so that clean FedAvg reaches a reasonable accuracy on IID data (the README
#: says how), before any attack ran. The local-epoch setting uses EPOCH_LR / EPOCH_ROUNDS.
MODEL_SGD: dict[str, tuple[float, int]] = {"mlp": (0.3, 80), "logreg": (0.5, 80), "cnn": (0.1, 80)}
EPOCH_LR: dict[str, float] = {"mlp": 0.05, "logreg": 0.05, "cnn": 0.05}
EPOCH_ROUNDS = 20
QUICK_ROUNDS = (30, 5)  # (one-step rounds, local-epoch rounds) with --quick

FEDAVG = "FedAvg"
KRUM = f"Krum:f={BYZANTINE}"
MEDIAN = "FedMedian"
TRMEAN = f"TrimmedMean:beta={BYZANTINE / CLIENTS}"

GAUSS = {"type": "gaussian_noise", "params": {"sigma": GAUSSIAN_SIGMA, "count": 1}}
IPM_S = {"type": "ipm", "params": {"epsilon": IPM_SMALL, "count": BYZANTINE}}
IPM_L = {"type": "ipm", "params": {"epsilon": IPM_LARGE, "count": BYZANTINE}}
ALIE = {"type": "alie", "params": {"count": BYZANTINE}}


@dataclass(frozen=True)
class Run:
    """One cell of a setting: a run name, a strategy (inline form) and at most one attack."""

    name: str
    strategy: str
    attack: dict[str, Any] | None = None


@dataclass(frozen=True)
class Setting:
    """One sweep: shared run settings and the cells it runs."""

    key: str
    label: str
    shared: dict[str, Any]
    runs: tuple[Run, ...]


@dataclass
class Cell:
    """Final accuracies of one cell over its seeds (diverged runs count 0)."""

    accuracies: list[float] = field(default_factory=list)
    diverged: int = 0
    #: selection strategies under attack: per seed, the rounds a Byzantine update was kept
    kept_byzantine: list[int] = field(default_factory=list)
    rounds: int = 0

    @property
    def mean(self) -> float:
        """Mean final accuracy in percent (nan when no run finished)."""
        return 100 * statistics.fmean(self.accuracies) if self.accuracies else math.nan

    @property
    def std(self) -> float:
        """Sample std in percent; 0 with one seed."""
        n = len(self.accuracies)
        return 100 * statistics.stdev(self.accuracies) if n > 1 else 0.0

    def text(self) -> str:
        """``73.1 ± 0.4``, with the diverged count when any."""
        out = f"{self.mean:.1f} ± {self.std:.1f}"
        return out + (f" ({self.diverged} diverged)" if self.diverged else "")

    def selection(self) -> str:
        """``; Byzantine kept in 3, 0, 5 of 80 rounds`` for selection rules, else empty."""
        if not self.kept_byzantine:
            return ""
        kept = ", ".join(str(k) for k in self.kept_byzantine)
        return f"; Byzantine update kept in {kept} of {self.rounds} rounds"


@dataclass(frozen=True)
class Row:
    """One line of the table: an expectation and what was measured."""

    claim: int
    setting: str
    case: str
    expected: str
    measured: str
    criterion: str
    ok: bool


def available_models() -> list[str]:
    """Model ids ``velocity strategies --json`` lists (its first JSON object on stdout)."""
    out = subprocess.run(
        [sys.executable, "-m", "velocity", "strategies", "--json"],
        check=False,
        capture_output=True,
        text=True,
    )
    try:
        listing, _ = json.JSONDecoder().raw_decode(out.stdout.lstrip())
    except json.JSONDecodeError:
        sys.exit(f"`velocity strategies --json` failed: {out.stderr.strip()[-300:]}")
    return list(listing.get("models", {}))


def settings(model: str, quick: bool) -> list[Setting]:
    """The three sweeps: IID one step, shards one step, shards one local epoch."""
    lr, rounds = MODEL_SGD.get(model, MODEL_SGD["mlp"])
    epoch_lr = EPOCH_LR.get(model, 0.05)
    epoch_rounds = EPOCH_ROUNDS
    if quick:
        rounds, epoch_rounds = QUICK_ROUNDS
    base = {
        "dataset": "fashion_mnist",
        "model_id": model,
        "clients": CLIENTS,
        "fraction_fit": 1.0,
        "samples_per_client": SAMPLES_PER_CLIENT,
        "batch_size": BATCH,
        "momentum": 0.0,
        "seed": 42,
    }
    sgd = {**base, "rounds": rounds, "local_steps": 1, "lr": lr}
    shards = {"partition": "shards", "shards_per_client": 2}
    steps = -(-SAMPLES_PER_CLIENT // BATCH)
    return [
        Setting(
            "iid_sgd",
            f"IID, 1 local step, lr {lr}, {rounds} rounds",
            {**sgd, "partition": "iid"},
            (
                Run("fedavg", FEDAVG),
                Run("fedavg__gauss", FEDAVG, GAUSS),
                Run("fedavg__ipm_large", FEDAVG, IPM_L),
                Run("krum", KRUM),
                Run("krum__gauss", KRUM, GAUSS),
                Run("krum__ipm_small", KRUM, IPM_S),
                Run("median", MEDIAN),
                Run("median__gauss", MEDIAN, GAUSS),
                Run("median__alie", MEDIAN, ALIE),
                Run("trmean", TRMEAN),
                Run("trmean__alie", TRMEAN, ALIE),
            ),
        ),
        Setting(
            "shards_sgd",
            f"label shards (2 per client), 1 local step, lr {lr}, {rounds} rounds",
            {**sgd, **shards},
            (
                Run("fedavg", FEDAVG),
                Run("krum", KRUM),
                Run("median", MEDIAN),
                Run("median__alie", MEDIAN, ALIE),
                Run("trmean", TRMEAN),
                Run("trmean__alie", TRMEAN, ALIE),
            ),
        ),
        Setting(
            "shards_epoch",
            f"label shards (2 per client), 1 local epoch ({steps} minibatches), "
            f"lr {epoch_lr}, {epoch_rounds} rounds",
            {**base, **shards, "rounds": epoch_rounds, "local_epochs": 1, "lr": epoch_lr},
            (
                Run("median", MEDIAN),
                Run("median__alie", MEDIAN, ALIE),
                Run("trmean", TRMEAN),
                Run("trmean__alie", TRMEAN, ALIE),
            ),
        ),
    ]


def experiment(setting: Setting, seeds: int, parallel: int) -> dict[str, Any]:
    """The experiment file (JSON form of ``[shared]`` + ``[[runs]]``) for one setting."""
    runs = []
    for run in setting.runs:
        entry: dict[str, Any] = {"name": run.name, "strategy": run.strategy}
        if run.attack is not None:
            entry["attacks"] = [run.attack]
        runs.append(entry)
    shared = {**setting.shared, "repeats": seeds, "parallel": parallel}
    return {"shared": shared, "runs": runs}


def run_sweep(setting: Setting, spec: dict[str, Any], out: Path) -> float:
    """Write the experiment file and run ``velocity sweep`` on it; the wall seconds.

    A directory already holding this exact experiment is resumed (finished runs are
    kept), so a second call only prints the table again. Another experiment there is
    refused: pick another ``--out``.
    """
    config = out / f"{setting.key}.json"
    sweep_dir = out / setting.key
    text = json.dumps(spec, indent=2) + "\n"
    if sweep_dir.exists():
        if not config.is_file() or config.read_text() != text:
            sys.exit(f"{sweep_dir} holds another experiment: pass a new --out")
        args = ["--resume", str(sweep_dir)]
    else:
        config.write_text(text)
        args = [str(config), "--out", str(sweep_dir)]
    log = out / f"{setting.key}.log"
    runs = len(setting.runs) * spec["shared"]["repeats"]
    print(f"velocity sweep {setting.key}: {runs} runs ({setting.label}) ...", file=sys.stderr)
    start = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(
            [sys.executable, "-m", "velocity", "sweep", *args],
            stdout=fh,
            stderr=subprocess.STDOUT,
            check=False,
        )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"velocity sweep {setting.key} failed (exit {proc.returncode}); see {log}")
    print(f"  done in {wall:.0f} s", file=sys.stderr)
    return wall


def read_cells(sweep_dir: Path) -> dict[str, Cell]:
    """Cells of a finished sweep from its ``results.csv``; a diverged run counts 0.

    For selection strategies (Krum) under attack, each run's ``summary.json`` also
    gives how often a Byzantine update was the one kept (its ``detection``).
    """
    from velocity import load_results

    cells: dict[str, Cell] = {}
    for row in load_results(sweep_dir, frame=False):
        cell = cells.setdefault(row["cell"], Cell())
        summary = sweep_dir / row["run"] / "summary.json"
        if summary.is_file() and row["attack"] != "none":
            detection = json.loads(summary.read_text()).get("detection")
            if detection:
                cell.kept_byzantine.append(int(detection["kept_byzantine"]))
                cell.rounds = int(row["rounds"] or 0)
        if row["status"] == "diverged":
            cell.accuracies.append(0.0)
            cell.diverged += 1
        elif row["status"] == "done" and row["final_accuracy"] is not None:
            cell.accuracies.append(float(row["final_accuracy"]))
    return cells


def vs_clean(attacked: Cell, clean: Cell) -> str:
    """``41.0 ± 3.0 vs clean 75.2 ± 0.4 (−34.2 pp)``."""
    return f"{attacked.text()} vs clean {clean.text()} ({attacked.mean - clean.mean:+.1f} pp)"


def judge(results: dict[str, dict[str, Cell]]) -> list[Row]:
    """Every row of the table, each with its criterion applied."""
    a, b, c = results["iid_sgd"], results["shards_sgd"], results["shards_epoch"]
    rows: list[Row] = []
    breaks = f"< clean − {BREAKS_PP:g} pp"
    holds = f"≥ clean − {HOLDS_PP:g} pp"

    def add(
        claim: int, setting: str, case: str, expected: str, criterion: str, ok: bool, m: str
    ) -> None:
        rows.append(Row(claim, setting, case, expected, m, criterion, ok))

    def drop(cells: dict[str, Cell], attacked: str, clean: str) -> float:
        return cells[clean].mean - cells[attacked].mean

    for rule, name, expected in (
        ("fedavg", FEDAVG, "breaks"),
        ("krum", KRUM, "holds"),
        ("median", MEDIAN, "holds"),
    ):
        d = drop(a, f"{rule}__gauss", rule)
        ok = d > BREAKS_PP if expected == "breaks" else d <= HOLDS_PP
        case = f"{name}, 1 Gaussian client (σ = {GAUSSIAN_SIGMA:g}) of {CLIENTS}"
        crit = breaks if expected == "breaks" else holds
        gauss = a[f"{rule}__gauss"]
        add(1, "iid_sgd", case, expected, crit, ok, vs_clean(gauss, a[rule]) + gauss.selection())

    for rule, name, eps, cell in (
        ("krum", KRUM, IPM_SMALL, "krum__ipm_small"),
        ("fedavg", FEDAVG, IPM_LARGE, "fedavg__ipm_large"),
    ):
        case = f"{name}, IPM ε = {eps:g}, {BYZANTINE} of {CLIENTS}"
        ok = drop(a, cell, rule) > BREAKS_PP
        m = vs_clean(a[cell], a[rule]) + a[cell].selection()
        add(2, "iid_sgd", case, "breaks", breaks, ok, m)

    degrades = f"≤ clean − {DEGRADES_PP:g} pp"
    for rule, name in (("median", MEDIAN), ("trmean", TRMEAN)):
        att = f"{rule}__alie"
        drops = {k: drop(cells, att, rule) for k, cells in (("iid", a), ("sgd", b), ("ep", c))}
        case = f"{name}, ALIE (z from n, f), {BYZANTINE} of {CLIENTS}"
        for key, cells, label in (("iid", a, "iid_sgd"), ("sgd", b, "shards_sgd")):
            ok = drops[key] >= DEGRADES_PP
            add(3, label, case, "degrades", degrades, ok, vs_clean(cells[att], cells[rule]))
        ok = drops["ep"] < drops["sgd"]
        add(
            3,
            "shards_epoch",
            case,
            "degrades less than with 1 step",
            "drop < shards 1-step drop",
            ok,
            vs_clean(c[att], c[rule]) + f"; 1-step drop {drops['sgd']:.1f} pp",
        )
        ok = drops["sgd"] > max(drops["iid"], drops["ep"])
        add(
            3,
            "all",
            f"{name}, ALIE: where it bites most",
            "shards + 1 local step",
            "largest drop of the 3 settings",
            ok,
            f"drops: IID 1 step {drops['iid']:.1f}, shards 1 step {drops['sgd']:.1f}, "
            f"shards 1 epoch {drops['ep']:.1f} pp",
        )

    for rule, name in (("krum", KRUM), ("median", MEDIAN)):
        gap = b["fedavg"].mean - b[rule].mean
        gap_iid = a["fedavg"].mean - a[rule].mean
        add(
            4,
            "shards_sgd",
            f"{name}, no attack, label shards",
            "hurts",
            f"≤ FedAvg − {HURTS_PP:g} pp (same setting)",
            gap >= HURTS_PP,
            f"{b[rule].text()} vs FedAvg {b['fedavg'].text()} ({-gap:+.1f} pp; "
            f"IID: {-gap_iid:+.1f} pp)",
        )
    return rows


CLAIMS = {
    1: "One Gaussian client breaks FedAvg; Krum and Median hold (Blanchard et al. 2017)",
    2: "IPM: small ε breaks Krum, large ε breaks the mean (Xie et al. 2019)",
    3: "ALIE degrades Median/TrimmedMean, strongest non-IID with 1 local step (Baruch et al. 2019)",
    4: "Strong heterogeneity hurts Krum and Median with no attack (Karimireddy et al. 2022)",
}

#: Which rows decide each claim (the others are reported as context): for claim 3 the
#: shards one-step rows and "where it bites most"; the IID and local-epoch rows are context.
DECIDING: dict[int, Callable[[Row], bool]] = {
    1: lambda r: True,
    2: lambda r: True,
    3: lambda r: r.setting in ("shards_sgd", "all"),
    4: lambda r: True,
}


def verdicts(rows: Sequence[Row]) -> dict[int, str]:
    """Per claim: reproduced, partly, or not reproduced (from its deciding rows)."""
    out = {}
    for claim, pick in DECIDING.items():
        oks = [r.ok for r in rows if r.claim == claim and pick(r)]
        out[claim] = "reproduced" if all(oks) else ("partly" if any(oks) else "NOT reproduced")
    return out


def _alie_z() -> float:
    """The z velocity's ``alie`` derives for n = CLIENTS, f = BYZANTINE."""
    s = max(1, CLIENTS // 2 + 1 - BYZANTINE)
    return statistics.NormalDist().inv_cdf((CLIENTS - s) / CLIENTS)


def header_lines(model: str, seeds: int, sets: Sequence[Setting], wall: float) -> list[str]:
    """What ran, where and how long."""
    return [
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}",
        f"Fashion-MNIST, model {model}, {CLIENTS} clients × {SAMPLES_PER_CLIENT} training "
        f"images, all sampled every round, batch {BATCH}, plain SGD; 10,000 test images; "
        f"{seeds} seed(s); final test accuracy in %, mean ± std over seeds",
        *(f"setting {s.key}: {s.label}" for s in sets),
        f"attacks (papers' values, never tuned): Gaussian σ = {GAUSSIAN_SIGMA:g} on 1 client; "
        f"IPM ε = {IPM_SMALL:g} / {IPM_LARGE:g} on {BYZANTINE}; ALIE on {BYZANTINE} with "
        f"z = Φ⁻¹((n − s)/n), s = ⌊n/2 + 1⌋ − f = {CLIENTS // 2 + 1 - BYZANTINE} "
        f"(z ≈ {_alie_z():.2f}); {KRUM}, {TRMEAN}",
        f"criteria (fixed before the runs): breaks = more than {BREAKS_PP:g} pp below the "
        f"rule's clean run (diverged = 0); holds = within {HOLDS_PP:g} pp; degrades = "
        f"{DEGRADES_PP:g}+ pp below clean; hurts = {HURTS_PP:g}+ pp below FedAvg in the "
        f"same setting",
        f"total wall {wall:.0f} s",
    ]


def render_text(rows: Sequence[Row], head: Sequence[str]) -> str:
    """A plain table per claim, the verdict on the claim's first line."""
    lines = [*head, ""]
    results = verdicts(rows)
    for claim, title in CLAIMS.items():
        lines.append(f"[{claim}] {title}: {results[claim]}")
        for r in (r for r in rows if r.claim == claim):
            mark = "yes" if r.ok else "NO"
            lines.append(f"    {mark:<3} {r.setting:<12} {r.case}")
            lines.append(f"        expected {r.expected} ({r.criterion}); measured {r.measured}")
        lines.append("")
    return "\n".join(lines)


def render_markdown(rows: Sequence[Row], head: Sequence[str]) -> str:
    """The same table in markdown, for bench/README.md."""
    results = verdicts(rows)
    lines = [*(f"- {h}" for h in head), ""]
    lines.append("| claim | setting | case | expected (criterion) | measured | as expected |")
    lines.append("|---|---|---|---|---|---|")
    for r in rows:
        lines.append(
            f"| {r.claim} | {r.setting} | {r.case} | {r.expected} ({r.criterion}) "
            f"| {r.measured} | {'yes' if r.ok else '**no**'} |"
        )
    lines.append("")
    lines.append("| claim | verdict |")
    lines.append("|---|---|")
    lines.extend(f"| {k}. {CLAIMS[k]} | **{results[k]}** |" for k in CLAIMS)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the three sweeps (or resume them) and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, fewer rounds")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per cell (default 3)")
    parser.add_argument("--model", default="mlp", help="mlp (default), logreg, or cnn if listed")
    parser.add_argument("--parallel", type=int, default=2, help="runs at once (default 2)")
    parser.add_argument("--out", type=Path, help="directory (default out/literature-<time>)")
    parser.add_argument("--markdown", action="store_true", help="a markdown table")
    args = parser.parse_args(argv)

    models = available_models()
    if args.model not in models:
        sys.exit(
            f"--model {args.model} is unavailable: `velocity strategies --json` lists "
            f"{', '.join(models)}"
        )
    seeds = 1 if args.quick else args.seeds
    out = args.out or Path("out") / f"literature-{datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    sets = settings(args.model, args.quick)
    start = time.perf_counter()
    for s in sets:
        run_sweep(s, experiment(s, seeds, args.parallel), out)
    wall = time.perf_counter() - start
    results = {s.key: read_cells(out / s.key) for s in sets}
    rows = judge(results)
    head = header_lines(args.model, seeds, sets, wall)
    head.append(f"sweeps: {out}/<setting>/ (experiment files {out}/<setting>.json)")
    print(render_markdown(rows, head) if args.markdown else render_text(rows, head))
    return 0


if __name__ == "__main__":
    sys.exit(main())
