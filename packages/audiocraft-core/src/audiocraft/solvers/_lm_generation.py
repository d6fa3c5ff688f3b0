"""Generate and evaluate stages of the language-model solvers.

Sampling from the LM with or without an audio prompt, samples written with their conditions and generation
parameters, and the objective metrics (FAD, KLD, text consistency, chroma cosine) of generated audio against the
evaluate split.

Part of audiocraft-core (task solvers, private); used by `audiocraft.solvers.musicgen.MusicGenSolver`. Where we
differ from upstream: the real-time factor is reported for whichever kind of sample ran (upstream's ``rtf`` is
unbound when ``generate.lm.unprompted_samples=false``); ``generate.lm.remove_prompts`` is read (upstream never
reads it): prompted samples then hold only the continuation; unprompted samples are generated without a prompt
(upstream passes the prompt duration to both kinds).
"""

from __future__ import annotations

import math
import time
import typing as tp
from pathlib import Path

import flashy
import torch

from audiocraft.data.conditions import JointEmbedCondition, WavCondition

from ..utils.utils import get_dataset_from_loader, is_jsonable

if tp.TYPE_CHECKING:
    from .musicgen import MusicGenSolver

__all__ = ["evaluate_audio_generation", "generate_audio", "hydrated_conditions", "run_generate_step"]

_METRIC_BUILDERS = {
    "fad": "get_fad",
    "kld": "get_kldiv",
    "text_consistency": "get_text_consistency",
    "chroma_cosine": "get_chroma_cosine_similarity",
}


@torch.no_grad()
def run_generate_step(
    solver: MusicGenSolver,
    batch: tuple[torch.Tensor, list],
    gen_duration: float,
    prompt_duration: float | None = None,
    remove_prompt: bool = False,
) -> dict[str, tp.Any]:
    """Generate ``gen_duration`` seconds for each item of ``batch``, continuing its first ``prompt_duration`` s.

    Returns:
        ``rtf`` (seconds of compute per second of audio), ``gen_audio`` ``[B, C, T]``, ``gen_tokens``,
        ``prompt_audio`` (or None), ``prompt_tokens`` (or None), ``ref_audio``.

    Raises:
        ValueError: a prompt not shorter than the generation, or a batch whose audio and infos disagree.
    """
    start = time.time()
    audio, meta = batch
    if audio.shape[0] != len(meta):
        raise ValueError(f"the batch holds {audio.shape[0]} audio items but {len(meta)} infos")
    compression_model = solver.compression_model
    attributes = [x.to_condition_attributes() for x in meta]
    prompt_audio = prompt_tokens = None
    num_samples: int | None = len(attributes)
    if prompt_duration is not None:
        if prompt_duration >= gen_duration:
            raise ValueError(f"the prompt ({prompt_duration} s) must be shorter than the generation ({gen_duration} s)")
        prompt_audio = audio[..., : int(prompt_duration * compression_model.sample_rate)]
        if prompt_audio.numel() > 0:
            prompt_tokens, scale = compression_model.encode(prompt_audio.to(solver.device))
            if scale is not None:
                raise RuntimeError("compression models that rescale their input are not supported by the LM")
            num_samples = None
    total_gen_len = math.ceil(gen_duration * compression_model.frame_rate)
    lm: tp.Any = solver.model
    with solver.autocast:
        gen_tokens = lm.generate(
            prompt_tokens,
            attributes,
            max_gen_len=total_gen_len,
            num_samples=num_samples,
            remove_prompts=remove_prompt,
            **solver.generation_params,
        )
    gen_audio = compression_model.decode(gen_tokens, None)
    return {
        "rtf": (time.time() - start) / gen_duration,
        "ref_audio": audio,
        "gen_audio": gen_audio,
        "gen_tokens": gen_tokens,
        "prompt_audio": prompt_audio,
        "prompt_tokens": prompt_tokens,
    }


def hydrated_conditions(solver: MusicGenSolver, meta: list) -> list[dict[str, tp.Any]]:
    """The conditions the LM reads, per item, as JSON-able values (texts; paths of waveform conditions)."""
    lm: tp.Any = solver.model
    used = set(lm.condition_provider.conditioners)
    out = []
    for attributes in (x.to_condition_attributes() for x in meta):
        conditions: dict[str, tp.Any] = {}
        for kind in ("text", "wav", "joint_embed"):
            for key, value in getattr(attributes, kind).items():
                if key not in used:
                    continue
                if isinstance(value, WavCondition):
                    conditions[key] = value.path
                elif isinstance(value, JointEmbedCondition):
                    conditions[key] = value.text
                elif is_jsonable(value):
                    conditions[key] = value
                else:
                    conditions[key] = str(type(value))
        out.append(conditions)
    return out


def _durations(solver: MusicGenSolver, loader: tp.Any) -> tuple[float, float]:
    dataset_duration = tp.cast(tp.Any, get_dataset_from_loader(loader)).segment_duration
    lm_cfg = solver.cfg.generate.lm
    target = lm_cfg.gen_duration if lm_cfg.gen_duration is not None else dataset_duration
    if target is None:
        raise ValueError("set generate.lm.gen_duration or dataset.generate.segment_duration")
    prompt = lm_cfg.prompt_duration if lm_cfg.prompt_duration is not None else target / 4
    if prompt >= target:
        raise ValueError(
            f"generate.lm.prompt_duration={prompt} s is not shorter than the generated duration ({target} s)"
        )
    return float(target), float(prompt)


def generate_audio(solver: MusicGenSolver) -> dict[str, float]:
    """The generate stage: unprompted and prompted samples of the generate split through the samples manager."""
    from ..utils.samples.manager import SampleManager

    stage = str(solver.current_stage)
    sample_manager = SampleManager(solver.xp)
    solver.logger.info("Generating samples in %s", sample_manager.base_folder)
    loader = solver.dataloaders["generate"]
    target_duration, prompt_duration = _durations(solver, loader)
    lm_cfg = solver.cfg.generate.lm
    generation_args = {
        **{f"classifier_free_guidance_{k}": v for k, v in solver.cfg.classifier_free_guidance.items()},
        **solver.generation_params,
        "gen_duration": target_duration,
    }
    average = flashy.averager()
    metrics: dict[str, float] = {}
    media = 0
    lp = solver.log_progress(stage, loader, total=len(loader), updates=solver.log_updates)
    for batch in lp:
        audio, meta = batch
        conditions = hydrated_conditions(solver, meta)
        step: dict[str, float] = {}
        written: list[tuple[str, torch.Tensor]] = []
        if lm_cfg.unprompted_samples:
            if lm_cfg.gen_gt_samples:
                solver.logger.warning("generate.lm.gen_gt_samples=true: writing the references instead of samples")
                unprompted = audio
            else:
                outputs = run_generate_step(solver, batch, gen_duration=target_duration)
                unprompted = outputs["gen_audio"].cpu()
                step["rtf_unprompted"] = outputs["rtf"]
            sample_manager.add_samples(  # sources: ids after the clips, the clip in the JSON (upstream: hash alone)
                unprompted,
                solver.epoch,
                conditions,
                ground_truth_wavs=audio,
                generation_args=generation_args,
                sources=meta,
            )
            written.append(("unprompted", unprompted))
        if lm_cfg.prompted_samples:
            outputs = run_generate_step(
                solver,
                batch,
                gen_duration=target_duration,
                prompt_duration=prompt_duration,
                remove_prompt=bool(lm_cfg.get("remove_prompts", False)),
            )
            prompted = outputs["gen_audio"].cpu()
            prompt_audio = outputs["prompt_audio"].cpu()
            sample_manager.add_samples(
                prompted,
                solver.epoch,
                conditions,
                prompt_wavs=prompt_audio,
                ground_truth_wavs=audio,
                generation_args={
                    **generation_args,
                    "prompt_duration": prompt_duration,
                    "remove_prompts": bool(lm_cfg.get("remove_prompts", False)),
                },
                sources=meta,
            )
            step["rtf_prompted"] = outputs["rtf"]
            written.append(("prompted", prompted))
        rtfs = [v for k, v in step.items() if k.startswith("rtf_")]
        if rtfs:
            step["rtf"] = sum(rtfs) / len(rtfs)
        if solver.media_logging_enabled:
            for kind, wavs in written:
                for wav in wavs:
                    solver.log_audio(stage, f"sample_{media}/{kind}", wav, solver.cfg.sample_rate)
                    media += 1
        metrics = average(step)
    flashy.distrib.barrier()
    return metrics


def _build_metrics(solver: MusicGenSolver) -> dict[str, tp.Any]:
    from audiocraft.metrics import builders as metric_builders

    wanted = solver.cfg.evaluate.metrics
    resolve = solver.environment.resolve_reference_path
    metrics = {}
    for name, builder in _METRIC_BUILDERS.items():
        if not wanted.get(name):
            continue
        try:
            metrics[name] = getattr(metric_builders, builder)(solver.cfg.metrics[name], resolve).to(solver.device)
        except (ValueError, TypeError, FileNotFoundError) as exc:
            raise ValueError(
                f"evaluate.metrics.{name}=true but its metric cannot be built from the config "
                f"section metrics.{name}: {exc}"
            ) from exc
    return metrics


def evaluate_audio_generation(solver: MusicGenSolver) -> dict[str, float]:
    """Generate for every item of the evaluate split and score the audio with the metrics turned on.

    The metrics are the ones ``evaluate.metrics`` turns on (none by default); ``metrics.<name>.use_gt`` scores the
    references, through the codec, instead of the generated audio.

    Args:
        solver: the running LM solver (its model, dataloaders and config).

    Returns:
        The metric values by name (empty when no metric is turned on).
    """
    from audiocraft.data.audio_utils import normalize_audio

    metrics_objects = _build_metrics(solver)
    if not metrics_objects:
        return {}
    lm: tp.Any = solver.model
    conditioners: tp.Any = lm.condition_provider.conditioners
    eval_wavs = None
    if "chroma_cosine" in metrics_objects and "self_wav" in conditioners and conditioners["self_wav"].has_eval_wavs():
        solver.logger.warning("chroma cosine evaluation with pre-defined eval chromas: not using them meanwhile")
        eval_wavs = conditioners["self_wav"].eval_wavs
        conditioners["self_wav"].reset_eval_wavs(None)

    def through_codec(audio: torch.Tensor) -> torch.Tensor:
        tokens, scale = solver.compression_model.encode(audio.to(solver.device))
        return solver.compression_model.decode(tokens, scale)[..., : audio.shape[-1]].cpu()

    loader = solver.dataloaders["evaluate"]
    normalize_kwargs = {k: v for k, v in dict(solver.cfg.generate.audio).items() if k != "format"}
    lp = solver.log_progress(
        f"{solver.current_stage}_generation inference", loader, total=len(loader), updates=solver.log_updates
    )
    try:
        for batch in lp:
            audio, meta = batch
            duration = solver.cfg.evaluate.fixed_generation_duration or audio.shape[-1] / solver.cfg.sample_rate
            generated = run_generate_step(solver, batch, gen_duration=duration)["gen_audio"][..., : audio.shape[-1]]
            generated = torch.stack([normalize_audio(w, **normalize_kwargs) for w in generated.detach()]).cpu()
            sizes = torch.tensor([m.n_frames for m in meta])
            rates = torch.tensor([m.sample_rate for m in meta])
            for name, metric in metrics_objects.items():
                use_gt = solver.cfg.metrics[name].get("use_gt", False)
                if name == "text_consistency":
                    metric.update(audio if use_gt else generated, [m.description for m in meta], sizes, rates)
                    continue
                preds = through_codec(audio) if use_gt else generated
                if name == "fad":
                    stems = [Path(m.meta.path).stem + f"_{m.seek_time}" for m in meta]
                    metric.update(preds, audio, sizes, rates, stems)
                else:
                    metric.update(preds, audio, sizes, rates)
    finally:
        if eval_wavs is not None:
            conditioners["self_wav"].reset_eval_wavs(eval_wavs)
    out: dict[str, float] = {}
    for name, metric in metrics_objects.items():
        value = metric.compute()  # reduced over the workers by the metric itself
        if isinstance(value, dict):
            out.update({k: float(v) for k, v in value.items()})
        else:
            out[name] = float(value)
    return out
