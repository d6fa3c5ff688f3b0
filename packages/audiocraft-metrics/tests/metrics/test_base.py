"""The Metric base class: additive states, reset, reduction without a process group."""

import pytest
import torch

from audiocraft.metrics import Metric


class Mean(Metric):
    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64))
        self.add_state("count", torch.tensor(0))

    def update(self, x: torch.Tensor) -> None:
        self.total += x.sum()
        self.count += x.numel()

    def compute(self) -> float:
        states = self.reduced_states()
        return float(states["total"] / states["count"])


def test_states_accumulate_reset_and_stay_out_of_state_dict() -> None:
    m = Mean()
    m(torch.tensor([1.0, 2.0]))  # calling a metric updates it
    m.update(torch.tensor([6.0]))
    assert m.compute() == 3.0
    assert m.compute() == 3.0  # compute does not consume the state
    assert m.state_names == ["total", "count"]
    assert m.state_dict() == {}
    m.reset()
    assert float(m.total) == 0.0 and int(m.count) == 0
    with pytest.raises(ValueError, match="already registered"):
        m.add_state("total", torch.tensor(0.0))


def test_unimplemented_methods_say_so() -> None:
    class Empty(Metric):
        pass

    with pytest.raises(NotImplementedError, match="Empty must implement update"):
        Empty().update()
    with pytest.raises(NotImplementedError, match="compute"):
        Empty().compute()


class RunningMean(Metric):
    """A wrong metric: it stores an average, which does not add up across workers."""

    def __init__(self) -> None:
        super().__init__()
        self.add_state("mean", torch.tensor(0.0, dtype=torch.float64))
        self.add_state("batches", torch.tensor(0))

    def update(self, x: torch.Tensor) -> None:
        self.batches += 1
        self.mean += (x.mean() - self.mean) / self.batches

    def compute(self) -> float:
        return float(self.reduced_states()["mean"])


def test_contract_catches_states_that_do_not_add_up() -> None:
    from audiocraft.metrics.testing import MetricContract

    class Good(MetricContract):
        def make_metric(self) -> Metric:
            return Mean()

        def batches(self) -> list:
            return [(torch.tensor([1.0, 2.0]),), (torch.tensor([6.0]),)]

    class Bad(Good):
        def make_metric(self) -> Metric:
            return RunningMean()

    Good().test_states_add_up_across_workers()
    with pytest.raises(AssertionError):
        Bad().test_states_add_up_across_workers()
