"""Conformance checks for `audiocraft.metrics.Metric` implementations, as a pytest mixin.

Part of `audiocraft.metrics` (layer: metrics). A metric's tests subclass `MetricContract`, say how to build
the metric, which batches to feed and how to feed one, and inherit tests of the contract every metric here
keeps: `compute()` does not consume the state, `reset()` starts afresh, and the states are additive, so that
the sum of the states of two metrics fed two halves of the data (what the all-reduce computes) gives the same
result as one metric fed everything. No process group is needed: the reduction is simulated by adding states.
"""

import math
from typing import Any

from ._base import Metric


def assert_results_close(a: Any, b: Any, rel: float = 1e-6, abs_tol: float = 1e-9) -> None:
    """Asserts that two `compute()` results (floats, tensors or dicts of them) are equal to a tolerance."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"result keys differ: {sorted(a)} vs {sorted(b)}"
        for key in a:
            assert_results_close(a[key], b[key], rel, abs_tol)
        return
    x, y = float(a), float(b)
    assert math.isclose(x, y, rel_tol=rel, abs_tol=abs_tol), f"{x} != {y}"


class MetricContract:
    """Mixin for pytest classes; implement `make_metric`, `batches` and (if needed) `feed`."""

    rel_tolerance = 1e-6

    def make_metric(self) -> Metric:
        """Return a fresh metric under test (subclasses implement it)."""
        raise NotImplementedError

    def batches(self) -> list[Any]:
        """At least two batches, in the form `feed` takes."""
        raise NotImplementedError

    def feed(self, metric: Metric, batch: Any) -> None:
        """Adds one batch; by default `metric.update(*batch)`."""
        metric.update(*batch)

    def _fed(self, batches: list[Any]) -> Metric:
        metric = self.make_metric()
        for batch in batches:
            self.feed(metric, batch)
        return metric

    def test_compute_does_not_consume_state(self) -> None:
        """Two successive `compute()` calls give the same result."""
        metric = self._fed(self.batches())
        assert_results_close(metric.compute(), metric.compute(), self.rel_tolerance)

    def test_reset_starts_afresh(self) -> None:
        """After `reset()`, the metric computes what a fresh metric fed the same batches computes."""
        batches = self.batches()
        metric = self._fed(batches[:1])
        metric.reset()
        for batch in batches[1:]:
            self.feed(metric, batch)
        assert_results_close(metric.compute(), self._fed(batches[1:]).compute(), self.rel_tolerance)

    def test_states_add_up_across_workers(self) -> None:
        """The summed states of two metrics fed two halves of the data give the result of one metric fed all."""
        batches = self.batches()
        assert len(batches) >= 2, "MetricContract.batches() must give at least two batches"
        whole = self._fed(batches)
        first, second = self._fed(batches[:1]), self._fed(batches[1:])
        for name in first.state_names:  # what the all-reduce (SUM) of two workers computes
            setattr(first, name, getattr(first, name) + getattr(second, name))
        assert_results_close(first.compute(), whole.compute(), self.rel_tolerance)
