"""Bad input, as a user gives it: refused up front, one line, status 2, nothing written.

The table drives ``python -m velocity`` as a user runs it (flags, experiment files,
inline ``Name:key=value`` parameters). Every case must exit 2 with exactly one
stderr line, ``velocity: error: ...``, that names the field and the value, print
no traceback, and leave its working directory as it found it (no ``--out``
directory, no default ``out/``). The cases run concurrently, once per session.

Below the table: hypothesis-generated specs (``build_sweep`` only ever raises a
one-line ``SpecError``) and arguments to every ``_core`` factory and attack (only
``ValueError``/``TypeError``, never a panic), then ``--version``, a closed stdout
pipe and Ctrl-C during start-up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velocity import _core
from velocity._inline import closest, coerce, parse_int
from velocity.attacks import attack_schemas, parse_attack, valid_attacks
from velocity.errors import SpecError
from velocity.spec import build_sweep
from velocity.strategy import ALL_STRATEGIES, FedMedian, GeometricMedian, parse_strategy
from velocity.sweepdir.names import SWEEP_FILES

LONG = "a" * 300  # longer than NAME_MAX (255)


@dataclass(frozen=True)
class Case:
    """One bad input. ``args`` may hold ``{out}`` (the --out path) and ``{dir}``
    (the case's working directory); ``files`` are created there first."""

    kind: str  # the class of bad input (counted in the report)
    args: tuple[str, ...]
    needles: tuple[str, ...]
    files: dict[str, str | bytes] = field(default_factory=dict)


def sweep(*args: str) -> tuple[str, ...]:
    return ("sweep", *args, "--out", "{out}")


def run(*args: str) -> tuple[str, ...]:
    return ("run", "--strategy", "FedAvg", *args, "--out", "{out}")


def toml(text: str, *extra: str) -> dict[str, Any]:
    return {
        "args": ("sweep", "{dir}/exp.toml", *extra, "--out", "{out}"),
        "files": {"exp.toml": text},
    }


RUNS = '\n[[runs]]\nstrategy = "FedAvg"\n'

CASES: dict[str, Case] = {
    # ---- integers: exact, bounded, never a float round trip or an overflow
    "krum_f_2^53+1": Case(
        "integer", sweep("--strategies", "Krum:f=9007199254740993"), ("Krum.f", "9007199254740993")
    ),
    "bulyan_f_2^62": Case(
        "integer",
        sweep("--strategies", "Bulyan:f=4611686018427387904"),
        ("Bulyan.f", "4611686018427387904"),
    ),
    "krum_f_2^63-1": Case(
        "integer",
        sweep("--strategies", "Krum:f=9223372036854775807"),
        ("Krum.f", "9223372036854775807"),
    ),
    "multikrum_f_2^63-1": Case(
        "integer",
        sweep("--strategies", "MultiKrum:f=9223372036854775807"),
        ("MultiKrum.f", "9223372036854775807"),
    ),
    "krum_f_1e400": Case("integer", sweep("--strategies", "Krum:f=1e400"), ("Krum.f", "1e400")),
    "krum_f_fraction": Case("integer", sweep("--strategies", "Krum:f=1.5"), ("Krum.f", "1.5")),
    "multikrum_m_0": Case("integer", sweep("--strategies", "MultiKrum:m=0"), ("MultiKrum.m", "0")),
    "bulyan_m_below_2f+1": Case(
        "integer", sweep("--strategies", "Bulyan:f=1,m=2"), ("Bulyan.m", "2")
    ),
    "geomed_max_iter_huge": Case(
        "integer",
        sweep("--strategies", "GeometricMedian:max_iter=99999999999999999999"),
        ("GeometricMedian.max_iter", "99999999999999999999"),
    ),
    "krum_f_vs_clients": Case(
        "integer",
        sweep("--strategies", "Krum:f=4", "--clients", "10"),
        ("Krum", "at least 11", "n = 10"),
    ),
    "attack_count_huge": Case(
        "integer",
        sweep("--strategies", "FedAvg", "--attacks", "zero:count=99999999999999999999"),
        ("zero.count", "99999999999999999999"),
    ),
    "seed_1e400": Case(
        "integer", sweep("--strategies", "FedAvg", "--seed", "1e400"), ("--seed", "1e400")
    ),
    "seed_negative": Case(
        "integer", sweep("--strategies", "FedAvg", "--seed", "-1"), ("seed", "-1")
    ),
    "rounds_above_max": Case(
        "integer", sweep("--strategies", "FedAvg", "--rounds", "1000000"), ("rounds", "1000000")
    ),
    "clients_0": Case(
        "integer", sweep("--strategies", "FedAvg", "--clients", "0"), ("clients", "0")
    ),
    "repeats_above_max": Case(
        "integer", sweep("--strategies", "FedAvg", "--repeats", "100000"), ("repeats", "100000")
    ),
    "parallel_2^66": Case(
        "integer",
        sweep("--strategies", "FedAvg", "--parallel", "99999999999999999999"),
        ("--parallel", "99999999999999999999"),
    ),
    "batch_size_huge": Case(
        "integer",
        sweep("--strategies", "FedAvg", "--batch-size", "99999999999"),
        ("batch_size", "99999999999"),
    ),
    "toml_rounds_1e300": Case(
        "integer", **toml("[shared]\nrounds = 1e300" + RUNS), needles=("shared.rounds",)
    ),
    "toml_rounds_2^66": Case(
        "integer",
        **toml("[shared]\nrounds = 99999999999999999999" + RUNS),
        needles=("shared.rounds", "99999999999999999999"),
    ),
    "toml_rounds_5000_digits": Case(
        "integer", **toml("[shared]\nrounds = 1" + "0" * 5000 + RUNS), needles=("exp.toml", "4300")
    ),
    "toml_clients_fraction": Case(
        "integer", **toml("[shared]\nclients = 10.5" + RUNS), needles=("shared.clients", "10.5")
    ),
    # ---- booleans are not numbers
    "krum_f_true": Case("boolean", sweep("--strategies", "Krum:f=true"), ("Krum.f", "true")),
    "sigma_true": Case(
        "boolean",
        sweep("--strategies", "FedAvg", "--attacks", "gaussian_noise:sigma=true"),
        ("gaussian_noise.sigma", "true"),
    ),
    "toml_rounds_true": Case(
        "boolean", **toml("[shared]\nrounds = true" + RUNS), needles=("shared.rounds", "true")
    ),
    "toml_seed_false": Case(
        "boolean", **toml("[shared]\nseed = false" + RUNS), needles=("shared.seed", "false")
    ),
    "toml_repeats_true": Case(
        "boolean", **toml("[shared]\nrepeats = true" + RUNS), needles=("shared.repeats", "true")
    ),
    "toml_checkpoint_every_true": Case(
        "boolean",
        **toml("[shared]\ncheckpoint_every = true" + RUNS),
        needles=("shared.checkpoint_every", "true"),
    ),
    "toml_strategy_param_true": Case(
        "boolean",
        **toml('[[runs]]\nstrategy = "Krum"\nparams = { f = true }\n'),
        needles=("Krum.f", "True"),
    ),
    "toml_attack_count_true": Case(
        "boolean",
        **toml(
            '[[runs]]\nstrategy = "FedAvg"\n[[runs.attacks]]\ntype = "zero"\n'
            "params = { count = true }\n"
        ),
        needles=("zero.count", "True"),
    ),
    "toml_n_samples_true": Case(
        "boolean",
        **toml('[shared]\ndataset = "synthetic"\ndataset_params = { n_samples = true }' + RUNS),
        needles=("n_samples", "True"),
    ),
    # ---- floats: finite and in range
    "lr_inf": Case("float", sweep("--strategies", "FedAvg", "--lr", "inf"), ("lr", "inf")),
    "lr_nan": Case("float", sweep("--strategies", "FedAvg", "--lr", "nan"), ("lr", "nan")),
    "lr_negative": Case("float", sweep("--strategies", "FedAvg", "--lr", "-0.1"), ("lr", "-0.1")),
    "alpha_inf": Case(
        "float",
        sweep("--strategies", "FedAvg", "--partition", "dirichlet", "--alpha", "inf"),
        ("alpha", "inf"),
    ),
    "alpha_above_max": Case(
        "float", sweep("--strategies", "FedAvg", "--alpha", "1e9"), ("alpha", "1000000000.0")
    ),
    "fraction_fit_0": Case(
        "float", sweep("--strategies", "FedAvg", "--fraction-fit", "0"), ("fraction_fit", "0")
    ),
    "fedprox_mu_nan": Case("float", sweep("--strategies", "FedProx:mu=nan"), ("FedProx.mu", "NaN")),
    "fedprox_mu_1e400": Case(
        "float", sweep("--strategies", "FedProx:mu=1e400"), ("FedProx.mu", "inf")
    ),
    "cc_tau_inf": Case(
        "float", sweep("--strategies", "CenteredClipping:tau=inf"), ("CenteredClipping.tau", "inf")
    ),
    "trimmed_beta_0.5": Case(
        "float", sweep("--strategies", "TrimmedMean:beta=0.5"), ("TrimmedMean.beta", "0.5")
    ),
    "sigma_inf": Case(
        "float",
        sweep("--strategies", "FedAvg", "--attacks", "gaussian_noise:sigma=inf"),
        ("gaussian_noise.sigma", "inf"),
    ),
    "toml_lr_nan": Case("float", **toml("[shared]\nlr = nan" + RUNS), needles=("shared.lr", "nan")),
    "toml_alpha_inf": Case(
        "float",
        **toml('[shared]\npartition = "dirichlet"\nalpha = inf' + RUNS),
        needles=("shared.alpha", "inf"),
    ),
    "toml_ray_gpus_inf": Case(
        "float", **toml("[shared]\nray_gpus = inf" + RUNS), needles=("ray_gpus", "inf")
    ),
    "toml_class_sep_inf": Case(
        "float",
        **toml('[shared]\ndataset = "synthetic"\ndataset_params = { class_sep = inf }' + RUNS),
        needles=("class_sep", "inf"),
    ),
    "json_lr_nan": Case(
        "float",
        ("sweep", "{dir}/exp.json", "--out", "{out}"),
        ("shared.lr", "nan"),
        files={"exp.json": '{"shared": {"lr": NaN}, "runs": [{"strategy": "FedAvg"}]}'},
    ),
    # ---- names: suggestions, aliases, case
    "strategy_typo": Case("name", sweep("--strategies", "Krumm"), ("Krumm", "did you mean 'Krum'")),
    "strategy_suggest_only": Case(
        "name", sweep("--strategies", "Average"), ("Average", "'FedAvg'")
    ),
    "attack_signflip": Case(
        "name",
        sweep("--strategies", "FedAvg", "--attacks", "signflip"),
        ("signflip", "'sign_flipping'"),
    ),
    "attack_param_typo": Case(
        "name",
        sweep("--strategies", "FedAvg", "--attacks", "gaussian_noise:sigm=1"),
        ("sigm", "'sigma'"),
    ),
    "attack_param_byzfl": Case(
        "name",
        sweep("--strategies", "FedAvg", "--attacks", "zero:num_byzantine=2"),
        ("num_byzantine", "'count'"),
    ),
    "strategy_param_flower": Case(
        "name", sweep("--strategies", "FedProx:proximal_mu=0.1"), ("proximal_mu", "'mu'")
    ),
    "model_typo": Case("name", sweep("--strategies", "FedAvg", "--model", "mpl"), ("mpl", "'mlp'")),
    "dataset_typo": Case(
        "name", sweep("--strategies", "FedAvg", "--dataset", "digit"), ("digit", "'digits'")
    ),
    "dataset_id_too_long": Case(
        "name", sweep("--strategies", "FedAvg", "--dataset", LONG), ("dataset", "unknown")
    ),
    "partition_typo": Case(
        "name",
        sweep("--strategies", "FedAvg", "--partition", "dirchlet"),
        ("partition", "dirchlet", "'dirichlet'"),
    ),
    "toml_key_round": Case(
        "name", **toml("[shared]\nround = 3" + RUNS), needles=("shared.round", "'rounds'")
    ),
    "toml_key_min_fit_clients": Case(
        "name",
        **toml("[shared]\nmin_fit_clients = 4" + RUNS),
        needles=("shared.min_fit_clients", "'clients'"),
    ),
    "toml_key_learning_rate": Case(
        "name", **toml("[shared]\nlearning_rate = 0.1" + RUNS), needles=("learning_rate", "'lr'")
    ),
    "toml_key_twice": Case(
        "name",
        **toml("[shared]\nrounds = 3\nnum_rounds = 4" + RUNS),
        needles=("num_rounds", "given twice"),
    ),
    "toml_key_top_level": Case(
        "name", **toml("[sharde]\nrounds = 3" + RUNS), needles=("sharde", "'shared'")
    ),
    "toml_key_run_strategies": Case(
        "name",
        **toml('[[runs]]\nstrategies = "FedAvg"\n'),
        needles=("runs[0].strategies", "'strategy'"),
    ),
    "toml_key_setting_in_run": Case(
        "name",
        **toml('[[runs]]\nstrategy = "FedAvg"\nrounds = 3\n'),
        needles=("runs[0].rounds", "[shared]"),
    ),
    "toml_key_run_in_shared": Case(
        "name",
        **toml('[shared]\nstrategy = "FedAvg"' + RUNS),
        needles=("shared.strategy", "[[runs]]"),
    ),
    "toml_dataset_param_typo": Case(
        "name",
        **toml('[shared]\ndataset = "synthetic"\ndataset_params = { n_sample = 100 }' + RUNS),
        needles=("n_sample", "'n_samples'"),
    ),
    # ---- run names
    "run_name_repeat_suffix": Case("run name", run("--name", "x__r0"), ("x__r0", "repeat")),
    "run_name_sweep_file": Case(
        "run name", run("--name", "status.json"), ("status.json", "sweep file")
    ),
    "run_name_lock": Case("run name", run("--name", ".lock"), (".lock",)),
    "run_name_too_long": Case("run name", run("--name", "a" * 200), ("run name", "151")),
    "toml_name_repeat_suffix": Case(
        "run name",
        **toml(
            '[[runs]]\nname = "x"\nstrategy = "FedAvg"\n'
            '[[runs]]\nname = "x__r7"\nstrategy = "Krum"\n'
        ),
        needles=("x__r7", "repeat"),
    ),
    "toml_name_sweep_file_case": Case(
        "run name",
        **toml('[[runs]]\nname = "Comparison.MD"\nstrategy = "FedAvg"\n'),
        needles=("Comparison.MD", "sweep file"),
    ),
    "toml_duplicate_name_case": Case(
        "run name",
        **toml(
            '[[runs]]\nname = "a"\nstrategy = "FedAvg"\n[[runs]]\nname = "A"\nstrategy = "Krum"\n'
        ),
        needles=("duplicate run name", "'A'"),
    ),
    # ---- attacks that could never act as written
    "attack_count_over_clients": Case(
        "attack vs setup",
        sweep("--strategies", "FedAvg", "--attacks", "zero:count=11"),
        ("11 Byzantine clients", "num_clients = 10"),
    ),
    "attacks_sum_over_clients": Case(
        "attack vs setup",
        run("--attack", "zero:count=6", "--attack", "sign_flipping:count=5"),
        ("11 Byzantine clients", "zero = 6", "sign_flipping = 5"),
    ),
    "attack_fraction_rounds_to_0": Case(
        "attack vs setup",
        sweep("--strategies", "FedAvg", "--attacks", "zero:fraction=0.01"),
        ("fraction=0.01", "rounds to none"),
    ),
    "attack_window_never_opens": Case(
        "attack vs setup",
        sweep("--strategies", "FedAvg", "--rounds", "2", "--attacks", "zero:start_round=50"),
        ("start_round=50", "rounds = 2"),
    ),
    "attack_end_before_start": Case(
        "attack vs setup",
        sweep("--strategies", "FedAvg", "--attacks", "zero:start_round=3,end_round=2"),
        ("end_round", "start_round = 3"),
    ),
    "label_source_not_a_class": Case(
        "attack vs setup",
        sweep("--strategies", "FedAvg", "--attacks", "targeted_label_flipping:source=12"),
        ("source=12", "10 classes"),
    ),
    "toml_label_target_synthetic": Case(
        "attack vs setup",
        **toml(
            '[shared]\ndataset = "synthetic"\ndataset_params = { n_classes = 3 }\n'
            '[[runs]]\nstrategy = "FedAvg"\nattacks = ["targeted_label_flipping:target=5"]\n'
        ),
        needles=("target=5", "3 classes"),
    ),
    # ---- memory, estimated before anything is allocated
    "synthetic_too_big": Case(
        "memory",
        **toml(
            '[shared]\ndataset = "synthetic"\n'
            "dataset_params = { n_samples = 1000000000, n_features = 100000 }" + RUNS
        ),
        needles=("needs ~", "available"),
    ),
    "mlp_too_big": Case(
        "memory",
        **toml(
            '[shared]\nclients = 1000\nmodel_id = "mlp"\nmodel_params = { hidden = 1000000 }\n'
            'dataset = "synthetic"\ndataset_params = { n_samples = 20000 }' + RUNS
        ),
        needles=("needs ~", "mlp", "1,000 clients"),
    ),
    "mlp_hidden_above_max": Case(
        "memory",
        **toml('[shared]\nmodel = "mlp"\nmodel_params = { hidden = 10000000 }' + RUNS),
        needles=("hidden", "10000000"),
    ),
    # ---- paths and files
    "out_name_too_long": Case(
        "path",
        ("sweep", "--strategies", "FedAvg", "--out", "{dir}/" + LONG),
        ("--out", "300 bytes"),
    ),
    "resume_name_too_long": Case(
        "path", ("sweep", "--resume", "{dir}/" + LONG), ("--resume", "300 bytes")
    ),
    "run_out_name_too_long": Case(
        "path", ("run", "--strategy", "FedAvg", "--out", LONG), ("--out", "300 bytes")
    ),
    "compare_dir_too_long": Case("path", ("compare", LONG), ("DIR", "300 bytes")),
    "config_name_too_long": Case(
        "path", ("sweep", LONG + ".toml", "--out", "{out}"), ("CONFIG", "305 bytes")
    ),
    "storage_name_too_long": Case(
        "path", run("--storage", "local://" + LONG), ("storage", "300 bytes")
    ),
    "storage_under_a_file": Case(
        "path",
        run("--storage", "local://{dir}/afile/ckpt"),
        ("storage", "afile"),
        files={"afile": "not a directory"},
    ),
    "config_not_utf8": Case(
        "path",
        ("sweep", "{dir}/exp.toml", "--out", "{out}"),
        ("exp.toml", "UTF-8"),
        files={"exp.toml": b"\xff\xfe\x00rounds"},
    ),
    "config_is_a_directory": Case(
        "path", ("sweep", "{dir}", "--out", "{out}"), ("experiment file",)
    ),
    "toml_nested_too_deep": Case(
        "nesting",
        **toml("[shared]\ndataset_params = { a = " + "[" * 100 + "]" * 100 + " }" + RUNS),
        needles=("nests more than",),
    ),
    "toml_nested_past_recursion": Case(
        "nesting",
        **toml("x = " + "[" * 20000 + "]" * 20000 + RUNS),
        needles=("exp.toml", "nests too deeply"),
    ),
    "json_nested_past_recursion": Case(
        "nesting",
        ("sweep", "{dir}/exp.json", "--out", "{out}"),
        ("exp.json", "nests too deeply"),
        files={"exp.json": "[" * 100000 + "]" * 100000},
    ),
    "json_not_a_table": Case(
        "nesting",
        ("sweep", "{dir}/exp.json", "--out", "{out}"),
        ("exp.json", "table"),
        files={"exp.json": "[1, 2]"},
    ),
}


def _listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(scope="session")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every case run once, concurrently: (CompletedProcess, files before, files after)."""
    root = tmp_path_factory.mktemp("inputs")

    def one(name: str) -> tuple[subprocess.CompletedProcess[str], set[str], set[str]]:
        case = CASES[name]
        work = root / name
        work.mkdir()
        for file, content in case.files.items():
            target = work / file
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
        before = _listing(work)
        args = [
            a.replace("{out}", str(work / "out")).replace("{dir}", str(work)) for a in case.args
        ]
        done = subprocess.run(
            [sys.executable, "-m", "velocity", *args],
            capture_output=True,
            text=True,
            timeout=240,
            cwd=work,
            env=dict(os.environ),
        )
        return done, before, _listing(work)

    with ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2))) as pool:
        return dict(zip(CASES, pool.map(one, CASES), strict=True))


def test_the_table_covers_every_class() -> None:
    kinds = Counter(case.kind for case in CASES.values())
    assert len(CASES) >= 60, len(CASES)
    assert set(kinds) >= {
        "integer",
        "boolean",
        "float",
        "name",
        "run name",
        "attack vs setup",
        "memory",
        "path",
        "nesting",
    }, kinds


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_refused_up_front(name: str, outcomes: dict[str, Any]) -> None:
    done, before, after = outcomes[name]
    assert done.returncode == 2, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-3000:]
    line = lines[0]
    assert line.startswith("velocity: error: "), line
    assert len(line) < 1200, line  # one readable line: values are cut short
    for needle in CASES[name].needles:
        assert needle in line, (needle, line)
    assert after == before, f"written: {sorted(after - before)}"
    assert done.stdout == ""


# --------------------------------------------------------------------------- in-process


def test_integers_are_parsed_exactly() -> None:
    assert parse_int("9007199254740993", "x") == 9007199254740993
    assert parse_int("-3", "x") == -3 and parse_int("1_000", "x") == 1000
    assert parse_int("1e3", "x") == 1000 and parse_int("2.0", "x") == 2
    for bad in ("1.5", "1e400", "nan", "inf", "abc", "1" * 31, "0x10", ""):
        with pytest.raises(ValueError):
            parse_int(bad, "x")
    assert coerce("9223372036854775807", "int", nullable=False, where="f") == 2**63 - 1
    with pytest.raises(ValueError, match="f must be a finite number"):
        coerce(10**400, "float", nullable=False, where="f")
    for value in (True, False, "true"):
        with pytest.raises(ValueError):
            coerce(value, "int", nullable=False, where="f")
        with pytest.raises(ValueError):
            coerce(value if value != "true" else True, "float", nullable=False, where="f")


def test_aliases_and_case() -> None:
    assert parse_strategy("Median") == FedMedian()
    assert parse_strategy("GeoMed") == GeometricMedian()
    assert parse_strategy("trmean").name == "TrimmedMean"
    assert parse_strategy("FedTrimmedAvg:beta=0.2").name == "TrimmedMean"
    assert parse_strategy("CC").name == "CenteredClipping"
    assert parse_strategy("multi-krum").name == "MultiKrum"
    for alias, name in [
        ("ALIE", "alie"),
        ("Gaussian-Noise", "gaussian_noise"),
        ("Gaussian", "gaussian_noise"),
        ("GaussianNoise", "gaussian_noise"),
        ("ALittleIsEnough", "alie"),
        ("InnerProductManipulation", "ipm"),
        ("SignFlipping", "sign_flipping"),
        ("LabelFlipping", "label_flipping"),
        ("IPM", "ipm"),
    ]:
        assert parse_attack(alias).type == name, alias
    assert parse_attack("ALIE:z=1.5") == parse_attack("alie:z=1.5")
    spec = build_sweep(
        {
            "shared": {"num_rounds": 3, "num_clients": 4, "model": "mlp"},
            "runs": [{"strategy": "Median", "attacks": ["SignFlipping"]}],
        }
    )
    assert (spec.shared.rounds, spec.shared.clients, spec.shared.model_id) == (3, 4, "mlp")
    assert spec.expand()[0].attacks[0].type == "sign_flipping"


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("signflip", "sign_flipping"),
        ("gausian_noise", "gaussian_noise"),
        ("labelflip", "label_flipping"),
        ("alei", "alie"),
        ("innerproduct", "ipm"),
        ("zer0", "zero"),
        ("xyzzy", None),
        ("Inf", None),
    ],
)
def test_python_and_rust_suggest_the_same_name(name: str, suggestion: str | None) -> None:
    """One "did you mean" per language, the same rule in both."""
    spellings = {a: a for a in valid_attacks()}
    spellings.update(
        {"ALittleIsEnough": "alie", "InnerProductManipulation": "ipm", "Gaussian": "gaussian_noise"}
    )
    assert closest(name, spellings) == suggestion
    with pytest.raises(ValueError) as info:
        _core.attack_name(name)
    rust = str(info.value)
    if suggestion is None:
        assert "did you mean" not in rust, rust
    else:
        assert f"did you mean '{suggestion}'" in rust, rust


def test_sweep_files_are_declared_once_and_refused_as_names(tmp_path: Path) -> None:
    """The sweep directory knows its files (velocity.sweepdir.names): a sweep refuses a run
    named like one (any case) before it writes anything."""
    from velocity.engine.sweep import run_sweep

    assert len(set(SWEEP_FILES)) == len(SWEEP_FILES)
    for reserved in (*SWEEP_FILES, *(f.upper() for f in SWEEP_FILES)):
        out = tmp_path / "out"
        with pytest.raises(SpecError, match=r"sweep file|must be"):
            runs = build_sweep({"runs": [{"name": reserved, "strategy": "FedAvg"}]}).expand()
            run_sweep(runs, out, progress=False)
        assert not out.exists()


# --------------------------------------------------------------------------- hypothesis: spec

INTS = st.one_of(
    st.integers(-3, 12),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**53 + 1, 2**62, 2**63 - 1, 2**63, 2**64, -(2**63)]),
)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
SCALARS = st.one_of(INTS, FLOATS, st.booleans(), st.none(), st.text(max_size=30))
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
SHARED_KEYS = st.sampled_from(
    [
        "rounds",
        "clients",
        "seed",
        "lr",
        "alpha",
        "fraction_fit",
        "test_fraction",
        "local_epochs",
        "batch_size",
        "repeats",
        "parallel",
        "partition",
        "dataset",
        "model_id",
        "dataset_params",
        "model_params",
        "checkpoint_every",
        "storage",
        "ray_gpus",
        "rank_by",
        "num_rounds",
        "round",
        "min_fit_clients",
        "backend",
    ]
) | st.text(max_size=12)
NAMES = st.sampled_from([c.name for c in ALL_STRATEGIES] + valid_attacks()) | st.text(max_size=12)
INLINE = st.builds(
    lambda name, params: (
        name + (":" + ",".join(f"{k}={v}" for k, v in params.items()) if params else "")
    ),
    NAMES,
    st.dictionaries(
        st.sampled_from(
            [
                "f",
                "m",
                "beta",
                "mu",
                "eps",
                "max_iter",
                "tau",
                "iters",
                "sigma",
                "count",
                "fraction",
                "start_round",
                "end_round",
                "source",
                "target",
                "z",
                "scale",
            ]
        ),
        st.one_of(
            INTS.map(str), FLOATS.map(str), st.sampled_from(["true", "none", "", "1e400", "x"])
        ),
        max_size=3,
    ),
)
RUN = st.fixed_dictionaries(
    {"strategy": st.one_of(INLINE, st.dictionaries(st.text(max_size=6), VALUES, max_size=3))},
    optional={
        "name": st.text(max_size=20) | st.sampled_from(["x__r1", "plan.json", ".lock", "ok"]),
        "params": st.dictionaries(st.text(max_size=6), VALUES, max_size=3),
        "attacks": st.lists(
            INLINE | st.dictionaries(st.text(max_size=6), VALUES, max_size=3), max_size=2
        ),
        "rounds": VALUES,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(SHARED_KEYS, VALUES, max_size=5),
    st.lists(RUN, min_size=0, max_size=3),
    st.dictionaries(st.sampled_from(["shared", "runs", "sharde", "extra"]), VALUES, max_size=1),
)
def test_build_sweep_only_refuses_with_one_line(shared: dict, runs: list, extra: dict) -> None:
    data = {**extra, "shared": shared, "runs": runs}
    try:
        spec = build_sweep(data)
    except SpecError as exc:
        message = str(exc)
        assert message and "\n" not in message.strip(), message
        assert len(message) < 5000, message[:300]
    else:
        assert spec.expand()


# --------------------------------------------------------------------------- hypothesis: _core

ARGS = st.one_of(
    INTS,
    FLOATS,
    st.booleans(),
    st.none(),
    st.text(max_size=5),
    st.just(np.int64(3)),
    st.just(np.float32(0.5)),
    st.just(np.bool_(True)),
    st.just([1]),
)
FACTORIES = {
    "fedprox": 1,
    "trimmed_mean": 1,
    "krum": 1,
    "multi_krum": 2,
    "bulyan": 2,
    "geometric_median": 2,
    "centered_clipping": 2,
}


def _only_input_errors(call: Any) -> Any:
    try:
        return call()
    except (ValueError, TypeError) as exc:
        assert "internal error" not in str(exc), exc
        assert "\n" not in str(exc), exc
        return None


@pytest.mark.parametrize("factory", sorted(FACTORIES))
@settings(max_examples=150, deadline=None)
@given(args=st.lists(ARGS, min_size=2, max_size=2), n=st.integers(0, 12) | INTS)
def test_core_factories_never_panic(factory: str, args: list, n: int) -> None:
    strategy = _only_input_errors(
        lambda: getattr(_core.Strategy, factory)(*args[: FACTORIES[factory]])
    )
    if strategy is None:
        return
    _only_input_errors(lambda: strategy.check_clients(n))
    rows = max(1, min(abs(n), 12)) if isinstance(n, int) else 5
    x = np.random.default_rng(0).normal(size=(rows, 7)).astype(np.float32)
    _only_input_errors(lambda: _core.aggregate(strategy, x, np.ones(rows)))


@pytest.mark.parametrize("attack", valid_attacks())
@settings(max_examples=100, deadline=None)
@given(
    params=st.dictionaries(
        st.sampled_from(
            [
                "fraction",
                "count",
                "start_round",
                "end_round",
                "sigma",
                "z",
                "epsilon",
                "intensity",
                "scale",
                "source",
                "target",
                "ratio",
                "bogus",
            ]
        ),
        ARGS,
        max_size=4,
    ),
    clients=INTS,
    seed=INTS,
)
def test_core_attack_params_never_panic(attack: str, params: dict, clients: int, seed: int) -> None:
    valid = _only_input_errors(lambda: _core.validate_attack(attack, params))
    _only_input_errors(lambda: _core.byzantine_counts([(attack, params)], clients))
    orchestrator = _only_input_errors(
        lambda: _core.Orchestrator(_core.Strategy.fedavg(), [(attack, params)], clients, seed)
    )
    if valid is None or orchestrator is None:
        return
    labels = np.arange(10, dtype=np.int64)
    for cid in list(orchestrator.byzantine_clients)[:2]:
        _only_input_errors(lambda cid=cid: orchestrator.poison_labels(1, cid, labels, 10))


def test_attack_schemas_mark_class_ids() -> None:
    schemas = attack_schemas()
    marked = {
        (a, p) for a, s in schemas.items() for p, spec in s["params"].items() if spec["class_id"]
    }
    assert marked == {("targeted_label_flipping", "source"), ("targeted_label_flipping", "target")}
    for schema in schemas.values():
        for spec in schema["params"].values():
            if spec["type"] == "int":
                assert 1 <= spec["max"] <= 1_000_000, spec  # every int parameter is bounded


# --------------------------------------------------------------------------- the command itself


def test_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "velocity", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"velocity {_core.__version__}"


@pytest.mark.parametrize("reader", ["head -1", "true", "head -c 10"])
@pytest.mark.parametrize("command", ["strategies --json", "strategies"])
def test_a_closed_pipe_ends_quietly(reader: str, command: str) -> None:
    status = 'echo "status=${PIPESTATUS[0]}"'
    script = f'"{sys.executable}" -m velocity {command} | {reader} >/dev/null; {status}'
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert "status=0" in done.stdout, (done.stdout, done.stderr)
    assert done.stderr == "", done.stderr


def _seconds(*args: str) -> float:
    """The fastest of three runs of ``python *args`` (start-up included)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, capture_output=True)
        best = min(best, time.perf_counter() - started)
    return best


def _package_import_is_light() -> bool:
    probe = "import sys, velocity; print('numpy' in sys.modules or 'pydantic' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    return done.stdout.strip() == "False"


def _interrupt_at(delays: list[float], cwd: Path) -> list[tuple[float, int, str]]:
    """SIGINT ``python -m velocity strategies`` after each delay; the runs that misbehaved."""
    failures = []
    for delay in delays:
        proc = subprocess.Popen(
            [sys.executable, "-m", "velocity", "strategies"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        lines = err.strip().splitlines()
        # 0: it had finished; -SIGINT: it was already finalizing (Python restores the
        # default handler there), which is silent too.
        quiet = proc.returncode in (0, -signal.SIGINT) and not lines
        # 130, or killed by the SIGINT itself (what a shell also reports as 130)
        interrupted = proc.returncode in (130, -signal.SIGINT) and lines == [
            "velocity: error: interrupted"
        ]
        if "Traceback" in err or not (quiet or interrupted):
            failures.append((round(delay, 3), proc.returncode, err))
    return failures


def _in_package_import(err: str) -> bool:
    """The traceback runs through ``velocity/__init__.py``: the package import itself."""
    return f'{os.sep}velocity{os.sep}__init__.py", line' in err


def test_ctrl_c_once_the_package_is_imported_prints_no_traceback(tmp_path: Path) -> None:
    """SIGINT while the command imports its modules and starts: one line, status 130."""
    start = _seconds("-c", "pass")
    package = _seconds("-c", "import velocity")
    command = _seconds("-m", "velocity", "strategies")
    first = max(1.2 * package, 2.5 * start, 0.02)
    delays = [first + max(command - first, 0.05) * k / 6 for k in range(7)]
    # A loaded machine can still be importing the package at ``first``: such a run is
    # the other test's (the package import), not this one's.
    failures = [f for f in _interrupt_at(delays, tmp_path) if not _in_package_import(f[2])]
    assert not failures, [(d, rc, err[-600:]) for d, rc, err in failures]


def test_ctrl_c_from_the_first_moment_prints_no_traceback(tmp_path: Path) -> None:
    """SIGINT from just after Python's own start-up (site, finding the module: not
    velocity's to handle) through the whole of velocity's."""
    if not _package_import_is_light():
        pytest.xfail(
            "velocity/__init__.py imports numpy, pydantic and the Rust core eagerly: a Ctrl-C "
            "during that import comes before any velocity code can handle it"
        )
    start = _seconds("-c", "pass")
    command = _seconds("-m", "velocity", "strategies")
    first = max(0.02, 2.5 * start)
    delays = [first + (command - first) * k / 8 for k in range(9)]
    failures = _interrupt_at(delays, tmp_path)
    assert not failures, [(d, rc, err[-600:]) for d, rc, err in failures]


def test_strategies_json_is_one_document() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "velocity", "strategies", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    info = json.loads(done.stdout)
    assert "class_id" in info["attacks"]["targeted_label_flipping"]["params"]["source"]


def test_ctrl_c_after_start_up_is_the_commands_own(tmp_path: Path) -> None:
    """Once ``main`` runs, the start-up handler is gone: a Ctrl-C mid-run is handled by
    the command (it names the partial files), not cut short by ``os._exit``."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "velocity",
            "run",
            "--strategy",
            "FedAvg",
            "--rounds",
            "100000",
            "--out",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / "FedAvg" / "progress.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "partial files in" in err, err
