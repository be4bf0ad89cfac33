"""Rust boundary: bad input raises a named error, never a panic; threads never change results."""

import numpy as np
import pytest

import velocity
from velocity import _core
from velocity.strategy import ALL_STRATEGIES

STRATEGIES = [cls() for cls in ALL_STRATEGIES]
X = np.random.default_rng(7).normal(size=(11, 257)).astype(np.float32)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.name)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_updates_are_refused_with_their_position(strategy, bad) -> None:
    x = X.copy()
    x[3, 17] = bad
    with pytest.raises(ValueError, match=r"row 3.*coordinate 17"):
        velocity.aggregate(strategy, x)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.name)
def test_empty_input_is_refused(strategy) -> None:
    with pytest.raises(ValueError):
        velocity.aggregate(strategy, np.zeros((0, 4), np.float32))
    with pytest.raises(ValueError):
        velocity.aggregate(strategy, np.zeros((3, 0), np.float32))


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.name)
def test_bit_identical_for_any_thread_count(strategy) -> None:
    core = strategy.to_core()
    w = np.arange(1, 12, dtype=np.float64)
    one, kept_one = _core.aggregate(core, X, w, 1)
    for threads in (2, 3, 8):
        many, kept_many = _core.aggregate(core, X, w, threads)
        assert one.tobytes() == many.tobytes()
        assert kept_one == kept_many


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.name)
def test_non_contiguous_input_gives_the_contiguous_result(strategy) -> None:
    wide = np.random.default_rng(8).normal(size=(11, 514)).astype(np.float32)
    view = wide[:, ::2]
    assert not view.flags.c_contiguous
    core = strategy.to_core()
    w = np.ones(11)
    strided, _ = _core.aggregate(core, view, w)
    dense, _ = _core.aggregate(core, np.ascontiguousarray(view), w)
    np.testing.assert_array_equal(strided, dense)


def test_wrong_dtype_is_a_type_error_not_a_panic() -> None:
    with pytest.raises(TypeError):
        _core.aggregate(_core.Strategy.fedavg(), X.astype(np.float64), np.ones(11))


def test_weight_length_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="weights"):
        _core.aggregate(_core.Strategy.fedavg(), X, np.ones(5))


def test_aggregate_coerces_lists_and_float64() -> None:
    got = velocity.aggregate("FedAvg", [[1, 2], [3, 4]])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [2, 3])


def test_one_dimensional_updates_are_refused() -> None:
    with pytest.raises(ValueError, match="2-D"):
        velocity.aggregate("FedAvg", np.ones(4, np.float32))


def test_gil_is_released_during_aggregation() -> None:
    """A Python thread keeps counting while Rust aggregates: the GIL is released."""
    import threading

    big = np.random.default_rng(9).normal(size=(30, 400_000)).astype(np.float32)
    core = _core.Strategy.fedmedian()
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    counter = threading.Thread(target=count)
    counter.start()
    try:
        while ticks == 0:
            pass
        before = ticks
        _core.aggregate(core, big, np.ones(30), 1)
        during = ticks - before
    finally:
        stop.set()
        counter.join()
    # Holding the GIL, Rust would block the counter for the whole call (during ~ 0).
    assert during > 1000, during


def _aggregate_in_child(queue) -> None:  # type: ignore[no-untyped-def]
    x = np.ones((5, 100), np.float32)
    queue.put(
        float(
            velocity.aggregate("FedMedian", x)[0] + velocity.aggregate("Krum", x, num_threads=1)[0]
        )
    )


def test_kernels_work_in_a_child_forked_after_they_ran() -> None:
    """Thread pools are per process: a forked child must not wait on its parent's threads."""
    import multiprocessing

    velocity.aggregate("FedMedian", X)
    velocity.aggregate("FedMedian", X, num_threads=1)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_aggregate_in_child, args=(queue,))
    child.start()
    child.join(30)
    hung = child.is_alive()
    child.kill()
    assert not hung, "the forked child hung in the Rust thread pool"
    assert queue.get(timeout=5) == 2.0


# --- integer arguments: named errors, never OverflowError or a wrapped precondition


HUGE = [2**53 + 1, 2**62, 2**63 - 1, 2**63, 2**64, 10**30, -1, -(2**63)]


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize(
    "factory",
    [
        lambda v: _core.Strategy.krum(v),
        lambda v: _core.Strategy.multi_krum(v, None),
        lambda v: _core.Strategy.multi_krum(1, v),
        lambda v: _core.Strategy.bulyan(v, None),
        lambda v: _core.Strategy.bulyan(1, v),
        lambda v: _core.Strategy.geometric_median(1e-6, v),
        lambda v: _core.Strategy.centered_clipping(1.0, v),
    ],
)
def test_out_of_range_ints_are_value_errors(factory, value) -> None:
    with pytest.raises(ValueError, match=r"invalid \w+\.\w+: got"):
        factory(value)


@pytest.mark.parametrize("value", [True, False, 1.0, "1", None])
def test_non_integers_are_type_errors(value) -> None:
    with pytest.raises(TypeError, match=r"Krum\.f"):
        _core.Strategy.krum(value)


@pytest.mark.parametrize("value", [True, "0.1", None, 10**400])
def test_float_arguments_refuse_bools_and_huge_ints(value) -> None:
    with pytest.raises((TypeError, ValueError), match=r"FedProx\.mu"):
        _core.Strategy.fedprox(value)


def test_preconditions_at_the_bound_never_wrap() -> None:
    """f at its largest: 2f + 3 and 4f + 3 stay exact, so n = 10 is refused, not run."""
    x = np.ones((10, 3), np.float32)
    for strategy in (
        _core.Strategy.krum(10**6),
        _core.Strategy.multi_krum(10**6, None),
        _core.Strategy.bulyan(10**6, None),
    ):
        with pytest.raises(ValueError, match="needs at least"):
            strategy.check_clients(10)
        with pytest.raises(ValueError, match="needs at least"):
            _core.aggregate(strategy, x, np.ones(10))
    with pytest.raises(ValueError, match=r"2f\+1 = 2000001"):
        _core.Strategy.bulyan(10**6, 5)
    with pytest.raises(
        ValueError, match=r"invalid n: got \d+; allowed: an integer in \[0, 2\*\*63\)"
    ):
        _core.Strategy.fedavg().check_clients(2**80)


def test_thread_counts_are_bounded() -> None:
    for threads in (0, -1, 2**70, 1025):
        with pytest.raises(ValueError, match="num_threads"):
            _core.aggregate(_core.Strategy.fedavg(), X, np.ones(11), threads)
    with pytest.raises(TypeError, match="num_threads"):
        _core.aggregate(_core.Strategy.fedavg(), X, np.ones(11), True)
