"""LMModel behaviour: generation with the streaming cache equals recomputing the whole prefix, for every pattern,
with and without classifier-free guidance, prompted or not; reproducible sampling; argument checks."""

from __future__ import annotations

import pytest
import torch

from audiocraft.conditioners import (
    ConditionFuser,
    ConditioningProvider,
    LUTConditioner,
    WaveformConditioner,
    nullify_wav,
)
from audiocraft.data.conditions import ConditioningAttributes, WavCondition
from audiocraft.models._sampling import sample_top_k
from audiocraft.models.lm import LMModel
from audiocraft.modules import codebooks_patterns as cp

N_Q, CARD, DIM = 3, 24, 32
PATTERNS = {
    "parallel": lambda: cp.ParallelPatternProvider(N_Q),
    "delay": lambda: cp.DelayedPatternProvider(N_Q),
    "delay-flatten": lambda: cp.DelayedPatternProvider(N_Q, delays=[0, 1, 3], flatten_first=2, empty_initial=1),
    "unroll": lambda: cp.UnrolledPatternProvider(N_Q, flattening=[0, 1, 1], delays=[0, 2, 2]),
    "coarse_first": lambda: cp.CoarseFirstPattern(N_Q, delays=[0, 1]),
    "musiclm": lambda: cp.MusicLMPattern(N_Q, group_by=1),
}


def _lm(
    pattern: str = "delay",
    fuse: str = "cross",
    seed: int = 0,
    conditioners: dict | None = None,
    fuse2cond: dict | None = None,
    **kwargs,
) -> LMModel:
    torch.manual_seed(seed)
    lut = LUTConditioner(n_bins=32, dim=8, output_dim=DIM, tokenizer="noop")
    provider = ConditioningProvider({"description": lut, **(conditioners or {})})
    if fuse2cond is None:
        fuse2cond = {"sum": [], "prepend": [], "input_interpolate": [], "cross": [], fuse: ["description"]}
    fuser = ConditionFuser(fuse2cond)
    lm = LMModel(
        PATTERNS[pattern](),
        provider,
        fuser,
        n_q=N_Q,
        card=CARD,
        dim=DIM,
        num_heads=4,
        num_layers=2,
        hidden_scale=2,
        norm_first=True,
        causal=True,
        cross_attention=bool(fuse2cond["cross"]),
        weight_init="gaussian",
        depthwise_init="current",
        **kwargs,
    )
    return lm.eval()


def _conditions(n: int = 2) -> list[ConditioningAttributes]:
    texts = ["bright synth arpeggio", "slow cello", "drum loop", "noise"]
    return [ConditioningAttributes(text={"description": texts[i % len(texts)]}) for i in range(n)]


@torch.no_grad()
def _recompute(
    lm: LMModel,
    prompt: torch.Tensor | None,
    conditions,
    max_gen_len: int,
    cfg_coef: float,
    sampler=None,
    num_samples: int = 2,
) -> torch.Tensor:
    """Reference generation without any cache: each step runs the model on the whole sequence so far."""
    B = num_samples if prompt is None else prompt.shape[0]
    pattern = lm.pattern_provider.get_pattern(max_gen_len)
    codes = torch.full((B, N_Q, max_gen_len), -1, dtype=torch.long)
    T0 = 0 if prompt is None else prompt.shape[-1]
    if prompt is not None:
        codes[..., :T0] = prompt
    seq, _, mask = pattern.build_pattern_sequence(codes, lm.special_token_id)
    tensors = {}
    if conditions:
        null = [ConditioningAttributes(text={"description": None}) for _ in conditions]
        tensors = lm.condition_provider(lm.condition_provider.tokenize(conditions + null))
    for offset in range(pattern.get_first_step_with_timesteps(T0), seq.shape[-1]):
        prefix = seq[..., :offset]
        if conditions:
            both = lm(torch.cat([prefix, prefix]), [], tensors)[:, :, -1]
            cond, uncond = both.split(B)
            logits = uncond + (cond - uncond) * cfg_coef
        else:
            logits = lm(prefix, [], {})[:, :, -1]
        token = logits.argmax(-1, keepdim=True) if sampler is None else sampler(logits)
        token[~mask[:, offset : offset + 1].expand(B, -1, -1)] = lm.special_token_id
        step = seq[..., offset : offset + 1]
        seq[..., offset : offset + 1] = torch.where(step == -1, token, step)
    out, _, _ = pattern.revert_pattern_sequence(seq, special_token=-1)
    return out[..., :max_gen_len]


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
@pytest.mark.parametrize("cfg", [False, True], ids=["nocfg", "cfg"])
@pytest.mark.parametrize("prompted", [False, True], ids=["noprompt", "prompt"])
def test_cached_generation_equals_recomputing_the_prefix(pattern: str, cfg: bool, prompted: bool) -> None:
    # Without conditions there is nothing to cross-attend to (as upstream, a cross-attention LM needs conditions,
    # null ones for unconditional generation): that case uses an LM whose fuser prepends the description.
    lm = _lm(pattern, fuse="cross" if cfg else "prepend")
    prompt = torch.randint(0, CARD, (2, N_Q, 3), generator=torch.Generator().manual_seed(1)) if prompted else None
    conditions = _conditions() if cfg else []
    max_gen_len = 9
    ours = lm.generate(
        prompt,
        conditions,
        num_samples=None if (prompted or cfg) else 2,
        max_gen_len=max_gen_len,
        use_sampling=False,
        cfg_coef=2.5,
        check=True,
    )
    expected = _recompute(lm, prompt, conditions, max_gen_len, cfg_coef=2.5)
    assert ours.shape == (2, N_Q, max_gen_len)
    assert torch.equal(ours, expected)
    if prompted:
        assert torch.equal(ours[..., :3], prompt)
        trimmed = lm.generate(
            prompt, conditions, max_gen_len=max_gen_len, use_sampling=False, cfg_coef=2.5, remove_prompts=True
        )
        assert torch.equal(trimmed, ours[..., 3:])
    assert ((ours >= 0) & (ours < CARD)).all()


@pytest.mark.parametrize(
    "options",
    [
        {"positional_embedding": "rope", "custom": True},
        {"positional_embedding": "sin_rope", "memory_efficient": True},
        {"fuse": "prepend"},
    ],
    ids=["rope", "sin_rope", "prepend"],
)
def test_cached_generation_with_other_positions_and_prepend(options: dict) -> None:
    lm = _lm("delay", **options)
    prompt = torch.randint(0, CARD, (2, N_Q, 2), generator=torch.Generator().manual_seed(2))
    for conditions in ([[]] if "fuse" in options else []) + [_conditions()]:
        ours = lm.generate(prompt, conditions, max_gen_len=8, use_sampling=False, cfg_coef=3.0)
        assert torch.equal(ours, _recompute(lm, prompt, conditions, 8, cfg_coef=3.0))


@pytest.mark.parametrize("fuse", ["cross", "prepend"])
def test_two_step_cfg_equals_recomputing_with_single_token_conditions(fuse: str) -> None:
    """Two-step CFG swaps the streaming states of the transformer and of the fuser (prepend on the first step of
    each pass); with one-token conditions both halves pad alike, so it matches the one-batch reference."""
    lm = _lm("delay", fuse=fuse)
    prompt = torch.randint(0, CARD, (2, N_Q, 2), generator=torch.Generator().manual_seed(3))
    two = lm.generate(prompt, _conditions(), max_gen_len=8, use_sampling=False, cfg_coef=4.0, two_step_cfg=True)
    assert torch.equal(two, _recompute(lm, prompt, _conditions(), 8, cfg_coef=4.0))


def test_sampling_with_the_cache_draws_as_the_reference_does() -> None:
    """Same global seed, same draws: the cached loop consumes the RNG exactly like the recomputing one."""
    lm = _lm("delay")
    torch.manual_seed(7)
    ours = lm.generate(None, _conditions(), max_gen_len=8, use_sampling=True, top_k=5, temp=1.3, cfg_coef=2.0)
    torch.manual_seed(7)
    expected = _recompute(
        lm,
        None,
        _conditions(),
        8,
        cfg_coef=2.0,
        sampler=lambda logits: sample_top_k(torch.softmax(logits / 1.3, -1), 5),
    )
    assert torch.equal(ours, expected)


def test_sampling_with_a_generator_is_reproducible_and_leaves_the_global_rng_alone() -> None:
    lm = _lm("delay")
    kwargs = dict(max_gen_len=10, use_sampling=True, top_k=10, cfg_coef=3.0)
    torch.manual_seed(0)
    first = lm.generate(None, _conditions(), generator=torch.Generator().manual_seed(42), **kwargs)
    after = torch.rand(3)
    torch.manual_seed(123)
    again = lm.generate(None, _conditions(), generator=torch.Generator().manual_seed(42), **kwargs)
    assert torch.equal(first, again)
    torch.manual_seed(0)
    assert torch.equal(torch.rand(3), after)  # generation drew nothing from the global RNG
    assert torch.equal(lm.generate(None, _conditions(), seed=42, **kwargs), first)
    others = [lm.generate(None, _conditions(), seed=s, **kwargs) for s in (1, 2)]
    assert not all(torch.equal(first, o) for o in others)
    top_p = [lm.generate(None, _conditions(), seed=5, max_gen_len=10, top_p=0.9) for _ in range(2)]
    assert torch.equal(*top_p)


def test_compute_predictions_matches_the_forward_on_the_pattern_sequence() -> None:
    lm = _lm("delay")
    codes = torch.randint(0, CARD, (2, N_Q, 6), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        out = lm.compute_predictions(codes, _conditions())
        pattern = lm.pattern_provider.get_pattern(6)
        seq, _, _ = pattern.build_pattern_sequence(codes, lm.special_token_id, keep_only_valid_steps=True)
        logits = lm(seq, _conditions())  # [B, K, S, card]
    # delay [0, 1, 2]: code (k, t) sits at step t + k + 1 and is predicted by the logits of step t + k
    for k in range(N_Q):
        for t in range(6):
            if t + k + 1 < seq.shape[-1]:
                assert out.mask[0, k, t]
                assert torch.equal(out.logits[:, k, t], logits[:, k, t + k])
            else:
                assert not out.mask[:, k, t].any() and torch.isnan(out.logits[:, k, t]).all()


def test_callback_reports_every_step() -> None:
    lm = _lm("delay", fuse="prepend")
    calls: list[tuple[int, int]] = []
    lm.generate(None, [], num_samples=1, max_gen_len=5, callback=lambda i, n: calls.append((i, n)))
    total = len(lm.pattern_provider.get_pattern(5).layout) - 1
    assert calls == [(i, total) for i in range(1, total + 1)]


def test_on_step_sees_the_sequence_filled_up_to_each_step() -> None:
    lm = _lm("delay", fuse="prepend")
    seen: list[int] = []

    def on_step(sequence: torch.Tensor, offset: int) -> None:
        seen.append(offset)
        assert not (sequence[..., : offset + 1] == -1).any()  # generated (or special) up to this step
        if offset < sequence.shape[-1] - 1:
            assert (sequence[..., offset + 1 :] == -1).any()  # later steps not generated yet

    out = lm.generate(None, [], num_samples=2, max_gen_len=5, use_sampling=False, on_step=on_step)
    assert seen == list(range(1, len(lm.pattern_provider.get_pattern(5).layout)))
    assert torch.equal(out, lm.generate(None, [], num_samples=2, max_gen_len=5, use_sampling=False))


def test_bad_generate_arguments_are_refused() -> None:
    lm = _lm("delay", fuse="prepend")
    with pytest.raises(ValueError, match="inconsistent number of samples"):
        lm.generate(torch.zeros(3, N_Q, 1, dtype=torch.long), _conditions(2), max_gen_len=4)
    with pytest.raises(ValueError, match="shorter than max_gen_len"):
        lm.generate(torch.zeros(1, N_Q, 4, dtype=torch.long), max_gen_len=4)
    with pytest.raises(ValueError, match="either generator or seed"):
        lm.generate(None, max_gen_len=4, seed=1, generator=torch.Generator())
    with pytest.raises(ValueError, match="eval mode"):
        lm.train().generate(None, max_gen_len=4)


def test_init_options_are_checked() -> None:
    def build(**kwargs) -> LMModel:
        return LMModel(
            cp.DelayedPatternProvider(2),
            ConditioningProvider({}),
            ConditionFuser({}),
            n_q=2,
            card=4,
            dim=8,
            num_heads=2,
            num_layers=1,
            **kwargs,
        )

    with pytest.raises(ValueError, match="need a weight_init"):
        build(zero_bias_init=True)
    with pytest.raises(ValueError, match="need a weight_init"):
        build(depthwise_init="global")
    with pytest.raises(ValueError, match="unknown depthwise_init"):
        build(weight_init="gaussian", depthwise_init="local")
    with pytest.raises(ValueError, match="unknown weight_init method"):
        build(weight_init="xavier")
    assert build(weight_init="uniform", depthwise_init="global").linears[0].weight.abs().max() <= 3**0.5 / 8**0.5


# --- double classifier-free guidance (cfg_coef_beta, upstream 1.4's MusicGen-Style)


class _FrameEnergy(WaveformConditioner):
    """A tiny waveform conditioner for the tests: mean absolute value of frames of 8 samples."""

    def __init__(self, output_dim: int) -> None:
        super().__init__(dim=1, output_dim=output_dim, device="cpu")

    def _get_wav_embedding(self, x: WavCondition) -> torch.Tensor:
        wav = x.wav[:, 0]
        frames = wav[:, : wav.shape[-1] // 8 * 8].unflatten(-1, (-1, 8)) if wav.shape[-1] >= 8 else wav[:, None]
        return frames.abs().mean(-1, keepdim=True)

    def _downsampling_factor(self) -> float:
        return 8


def _style_lm(fuse_wav: str = "prepend") -> LMModel:
    """The test LM with a ``self_wav`` waveform conditioner (prepended or cross-attended) besides the text."""
    fuse2cond: dict[str, list[str]] = {"sum": [], "prepend": [], "input_interpolate": [], "cross": ["description"]}
    fuse2cond[fuse_wav].append("self_wav")
    return _lm("delay", seed=5, conditioners={"self_wav": _FrameEnergy(DIM)}, fuse2cond=fuse2cond)


def _style_conditions(n: int = 2) -> list[ConditioningAttributes]:
    out = []
    for i, text in enumerate(["bright synth arpeggio", "slow cello", "drum loop"][:n]):
        wav = torch.sin(torch.arange(64.0) * (i + 1) / 5)[None, None] * (i + 1)
        condition = WavCondition(wav, torch.tensor([64]), sample_rate=[16000], path=[None], seek_time=[None])
        out.append(ConditioningAttributes(text={"description": text}, wav={"self_wav": condition}))
    return out


def test_fuser_and_conditions_of_the_style_lm_are_as_expected() -> None:
    lm = _style_lm()
    assert lm.fuser.cond2fuse == {"description": "cross", "self_wav": "prepend"}
    tensors = lm.condition_provider(lm.condition_provider.tokenize(_style_conditions()))
    assert tensors["self_wav"][0].shape == (2, 8, DIM) and tensors["self_wav"][1].all()


@pytest.mark.parametrize("fuse_wav", ["prepend", "cross"])
def test_double_cfg_logits_are_upstreams_formula_on_the_three_condition_sets(
    fuse_wav: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every step's guided logits equal ``uncond + cfg * (wav + beta * (cond - wav) - uncond)`` computed here
    without the cache, each third of the batch alone: conditioned, text dropped (style kept), fully null."""
    lm = _style_lm(fuse_wav)
    conditions = _style_conditions()
    seen: list[torch.Tensor] = []
    sample = LMModel._sample

    def recording(logits, *args):  # noqa: ANN001, ANN202
        seen.append(logits.clone())
        return sample(logits, *args)

    monkeypatch.setattr(LMModel, "_sample", staticmethod(recording))
    final: list[torch.Tensor] = []
    max_gen_len, cfg, beta = 7, 3.0, 2.5
    out = lm.generate(
        None,
        conditions,
        max_gen_len=max_gen_len,
        use_sampling=False,
        cfg_coef=cfg,
        cfg_coef_beta=beta,
        two_step_cfg=True,  # ignored with cfg_coef_beta, as upstream
        on_step=lambda seq, offset: final.append(seq.clone()),
    )
    assert out.shape == (2, N_Q, max_gen_len)
    sequence = final[-1]
    # The three condition sets built by hand: text dropped but the waveform kept, then both dropped.
    no_text = [
        ConditioningAttributes(text={"description": None}, wav={"self_wav": c.wav["self_wav"]}) for c in conditions
    ]
    null = [
        ConditioningAttributes(text={"description": None}, wav={"self_wav": nullify_wav(c.wav["self_wav"])})
        for c in conditions
    ]
    provider = lm.condition_provider
    tensors = provider(provider.tokenize(conditions + no_text + null))
    assert tensors["self_wav"][1][2:4].all() and not tensors["self_wav"][1][4:].any()  # style kept in the middle

    def third(i: int) -> dict:
        return {k: (t[2 * i : 2 * i + 2], m[2 * i : 2 * i + 2]) for k, (t, m) in tensors.items()}

    assert len(seen) == sequence.shape[-1] - 1
    with torch.no_grad():
        for step, logits in enumerate(seen, start=1):
            cond, wav, uncond = (lm(sequence[..., :step], [], third(i))[:, :, -1] for i in range(3))
            expected = uncond + cfg * (wav + beta * (cond - wav) - uncond)
            torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
            plain = uncond + (cond - uncond) * cfg
            assert (logits - plain).abs().max() > 1e-3  # the middle term matters
    # the tokens are the argmax of those logits (greedy), codebook by codebook as the delay pattern places them
    greedy = torch.stack([lg[:, 0].argmax(-1) for lg in seen[:max_gen_len]], dim=-1)
    assert torch.equal(sequence[:, 0, 1 : 1 + max_gen_len], greedy) and torch.equal(out[:, 0], greedy)


def test_cfg_coef_beta_none_is_plain_guidance_and_sampling_draws_alike() -> None:
    lm = _style_lm()
    kwargs = dict(max_gen_len=8, use_sampling=False, cfg_coef=3.0)
    plain = lm.generate(None, _style_conditions(), **kwargs)
    assert torch.equal(lm.generate(None, _style_conditions(), cfg_coef_beta=None, **kwargs), plain)
    assert not torch.equal(lm.generate(None, _style_conditions(), cfg_coef_beta=4.0, **kwargs), plain)
    # Same generator consumption as plain guidance: one draw per step, nothing for the condition sets.
    gen = torch.Generator().manual_seed(3)
    lm.generate(None, _style_conditions(), max_gen_len=8, top_k=5, cfg_coef_beta=1.0, generator=gen)
    gen_plain = torch.Generator().manual_seed(3)
    lm.generate(None, _style_conditions(), max_gen_len=8, top_k=5, generator=gen_plain)
    assert torch.equal(gen.get_state(), gen_plain.get_state())
    again = lm.generate(None, _style_conditions(), max_gen_len=8, top_k=5, cfg_coef_beta=1.0, seed=3)
    assert torch.equal(again, lm.generate(None, _style_conditions(), max_gen_len=8, top_k=5, cfg_coef_beta=1.0, seed=3))


def test_cfg_coef_beta_needs_description_and_self_wav() -> None:
    lm = _style_lm()
    text_only = [ConditioningAttributes(text={"description": "x"})]
    with pytest.raises(ValueError, match=r"condition 0 has no wav attribute 'self_wav'"):
        lm.generate(None, text_only, max_gen_len=4, cfg_coef_beta=2.0)
    wav_only = [ConditioningAttributes(wav=dict(_style_conditions(1)[0].wav))]
    with pytest.raises(ValueError, match=r"condition 0 has no text attribute 'description'"):
        lm.generate(None, wav_only, max_gen_len=4, cfg_coef_beta=2.0)
    # No conditions, no guidance (upstream fails there): the same tokens as without cfg_coef_beta.
    prepend = _lm("delay", fuse="prepend")
    assert torch.equal(
        prepend.generate(None, [], num_samples=2, max_gen_len=5, use_sampling=False, cfg_coef_beta=2.0),
        prepend.generate(None, [], num_samples=2, max_gen_len=5, use_sampling=False),
    )


def test_packed_weights_give_the_plain_linears_tokens_and_are_freed() -> None:
    lm = _style_lm()
    kwargs = dict(max_gen_len=8, use_sampling=False, cfg_coef=3.0)
    packed = lm.generate(None, _style_conditions(), **kwargs)
    layer = lm.transformer.layers[0]
    assert layer.self_attn._packed_in is None and layer._packed_ff == (None, None)  # freed after generate
    lm.pack_weights_max_bytes = 0
    try:
        assert torch.equal(lm.generate(None, _style_conditions(), **kwargs), packed)
    finally:
        del lm.pack_weights_max_bytes
    with lm.transformer.packed_weights(2):
        if torch.backends.mkldnn.is_available():
            assert layer.self_attn._packed_in is not None and layer.cross_attention._packed_in.shape == (DIM, DIM)
    assert layer.cross_attention._packed_in is None
