"""A StreamingModule's streaming context reaches a ConditionFuser inside it (the conditioners' streaming protocol)."""

from __future__ import annotations

import torch

from audiocraft.conditioners import ConditionFuser
from audiocraft.modules.streaming import StreamingModule


class TinyLM(StreamingModule):
    def __init__(self) -> None:
        super().__init__()
        self.fuser = ConditionFuser({"prepend": ["melody"], "sum": ["beat"]})

    def forward(self, x: torch.Tensor, conditions: dict) -> torch.Tensor:
        return self.fuser(x, conditions)[0]


def test_lm_streaming_reaches_the_fuser() -> None:
    lm = TinyLM()
    x = torch.randn(2, 5, 3)
    conditions = {"melody": (torch.randn(2, 2, 3), torch.ones(2, 2)), "beat": (torch.randn(2, 5, 3), torch.ones(2, 5))}
    whole = lm(x, conditions)
    with lm.streaming():
        assert lm.fuser.is_streaming
        outs = [lm(x[:, t : t + 1], conditions) for t in range(5)]
        assert lm.get_streaming_state()["fuser.offsets"].tolist() == [5, 5]
    assert not lm.fuser.is_streaming and lm.fuser._streaming_state == {}
    assert outs[0].shape[1] == 3 and all(o.shape[1] == 1 for o in outs[1:])
    torch.testing.assert_close(torch.cat(outs, dim=1), whole, rtol=0, atol=0)
