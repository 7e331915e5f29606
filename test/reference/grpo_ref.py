#!/usr/bin/python3
"""grpo_ref.py -- the independent numerical reference for motif-native's LoRA training step.

What it is
    A small, readable PyTorch computation of what one LoRA-GRPO training step must produce: the LoRA
    model's per-token log-probs of completion tokens, TRL's GRPO loss (GRPOTrainer semantics, loss types
    grpo | bnpo | dr_grpo; and 'sft', supervised fine-tuning's mean negative log-likelihood of the completion
    tokens) and the gradients of that loss with respect to every LoRA A and B, by autograd,
    in float64 by default. It is written from HF PEFT's and TRL's documented semantics, not from
    motif-native's C++ code; the engine's `lossAndGradients` is tested against it. It is a spec first:
    one function per concept, shapes in comments.
    The base model is the forward pass of qwen2_ref.py (imported from this folder, not copied): its
    loader, its safetensors reader/writer, its layer functions (RMSNorm, RoPE, attention) and, for the
    adapter-disabled reference model and the self-checks, its forward_sequence.

How to run it (Debian's PyTorch 1.13 CPU: apt-get install python3-torch; use /usr/bin/python3)
    /usr/bin/python3 test/reference/grpo_ref.py make-adapter --model DIR --out DIR --rank R --alpha A \\
        [--targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj] [--rslora] [--seed S] [--b-scale F]
    /usr/bin/python3 test/reference/grpo_ref.py loss-grads --model DIR (--adapter DIR | --full) \\
        --batch FILE.json --out FILE.json [--dtype f64|f32]
    /usr/bin/python3 test/reference/grpo_ref.py self-test

make-adapter writes a PEFT LoRA folder: adapter_config.json (as PEFT's save_pretrained writes it: indent 2,
    sorted keys) and adapter_model.safetensors (F32) with tensors
        base_model.model.model.layers.{i}.self_attn.{q,k,v,o}_proj.lora_A.weight   [r, in_features]
        base_model.model.model.layers.{i}.self_attn.{q,k,v,o}_proj.lora_B.weight   [out_features, r]
        base_model.model.model.layers.{i}.mlp.{gate,up,down}_proj.lora_{A,B}.weight
    A is PEFT's default init, kaiming_uniform_(a=sqrt(5)) = uniform(-1/sqrt(in), 1/sqrt(in)); B is zeros
    (PEFT), or normal(0, F^2) with --b-scale F so that the gradients of A are not all zero in tests.

loss-grads reads the batch (JSON, camelCase):
    { promptIds: number[][]        one per group (completion i uses promptIds[i // groupSize]) or one per completion
      completionIds: number[][]    N completions, in groups of groupSize consecutive completions
      rewards: number[]            N (may be left out when advantages is given)
      groupSize, lossType: 'grpo'|'bnpo'|'dr_grpo'|'sft', epsilon, epsilonHigh? (= epsilon), beta, temperature,
                                   (for 'sft' rewards, epsilon and beta may be left out and are ignored)
      maxCompletionLength?         dr_grpo's constant (default: the longest completion)
      scaleRewards?: 'group'|'batch'|'none' (default 'group')
      oldLogps?: number[][]        sampling log-probs per completion token (default: current log-probs, detached)
      refLogps?: number[][]        reference log-probs (default: the model with the adapter disabled, when beta > 0)
      advantages?: number[] }      overrides the computed advantages
  and writes
    { loss, grads: { <PEFT tensor name>: number[] (row-major) }, logps: number[][], advantages: number[],
      clipFraction, kl }

Semantics followed
    LoRA (PEFT, unmerged, dropout 0): every targeted projection is y = x W^T + b + s (x A^T) B^T with
    s = alpha / r (alpha / sqrt(r) with use_rslora); base weights are frozen, only A and B get gradients.
    The adapter disabled is exactly the base model. Merging is W' = W + s B A.
    Each completion is scored as its own sequence prompt + completion starting at position 0 (no padding).
    TRL GRPOTrainer (_get_per_token_logps, _generate_and_score_completions, _compute_loss):
      logp[t]   = log_softmax(logits[P - 1 + t] / temperature)[completion[t]]     (P = prompt length)
      A_i       = r_i - mean(group of i), divided by (std + 1e-4) where std is torch.std (unbiased) of the
                  group ('group') or of the whole batch ('batch'); not divided for 'none'
      ratio     = exp(logp - oldLogp)
      token     = -min(ratio A, clamp(ratio, 1 - eps, 1 + epsHigh) A) + beta (exp(ref - logp) - (ref - logp) - 1)
      grpo      = mean over sequences of (sum of its token losses / max(its length, 1))
      bnpo      = sum of all token losses / max(total tokens, 1)
      dr_grpo   = sum of all token losses / (N * maxCompletionLength)
      clipFraction = fraction of tokens where the clipped term is the strictly smaller one (TRL's
                  "clip_ratio/region_mean": ratio < 1 - eps with A < 0, or ratio > 1 + epsHigh with A > 0)
      kl        = mean over all tokens of the k3 term (0 when beta is 0)
    Supervised fine-tuning ('sft', TRL SFTTrainer with the loss on completion tokens only):
      sft       = -(sum of every completion token's logp) / (total completion tokens), logp as above (the
                  temperature divides the logits as for the other types); rewards, advantages (reported as
                  0), old/ref log-probs, clipping and beta play no part; clipFraction and kl are 0
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qwen2_ref  # noqa: E402  (the verified forward reference in this folder; it checks torch is there)
from qwen2_ref import ModelSpec, torch  # noqa: E402

Tensor = torch.Tensor

# ================================================================================================
# LoRA adapters: which projections, their shapes, PEFT names
# ================================================================================================

# target module -> the sub-layer that holds it, in PEFT's default all-linear order
TARGET_SUBLAYER: "OrderedDict[str, str]" = OrderedDict(
    [("q_proj", "self_attn"), ("k_proj", "self_attn"), ("v_proj", "self_attn"), ("o_proj", "self_attn"),
     ("gate_proj", "mlp"), ("up_proj", "mlp"), ("down_proj", "mlp")]
)
ALL_TARGETS = list(TARGET_SUBLAYER)


def projection_shape(spec: ModelSpec, target: str) -> Tuple[int, int]:
    """(out_features, in_features) of a projection, i.e. the shape of its weight."""
    C, I, qdim, kvdim = spec.hidden, spec.intermediate, spec.heads * spec.head_dim, spec.kv_heads * spec.head_dim
    return {"q_proj": (qdim, C), "k_proj": (kvdim, C), "v_proj": (kvdim, C), "o_proj": (C, qdim),
            "gate_proj": (I, C), "up_proj": (I, C), "down_proj": (C, I)}[target]


def module_path(layer: int, target: str) -> str:
    """The HF module path of a projection, e.g. model.layers.0.self_attn.q_proj."""
    return f"model.layers.{layer}.{TARGET_SUBLAYER[target]}.{target}"


def peft_name(path: str, which: str) -> str:
    """PEFT's saved tensor name: base_model.model.<module path>.lora_{A,B}.weight."""
    return f"base_model.model.{path}.lora_{which}.weight"


def lora_scale(alpha: float, rank: int, use_rslora: bool) -> float:
    """PEFT's scaling: alpha / r, or alpha / sqrt(r) with rsLoRA."""
    return alpha / math.sqrt(rank) if use_rslora else alpha / rank


@dataclass
class Adapter:
    rank: int
    alpha: float
    use_rslora: bool
    targets: List[str]
    A: "OrderedDict[str, Tensor]" = field(default_factory=OrderedDict)  # module path -> [r, in]
    B: "OrderedDict[str, Tensor]" = field(default_factory=OrderedDict)  # module path -> [out, r]

    @property
    def scale(self) -> float:
        return lora_scale(self.alpha, self.rank, self.use_rslora)

    def to(self, dtype: torch.dtype, requires_grad: bool = False) -> "Adapter":
        """A copy with A and B as fresh leaf tensors in `dtype` (trainable when requires_grad)."""
        conv = lambda d: OrderedDict((k, v.detach().to(dtype).clone().requires_grad_(requires_grad)) for k, v in d.items())  # noqa: E731
        return Adapter(self.rank, self.alpha, self.use_rslora, list(self.targets), conv(self.A), conv(self.B))

    def peft_tensors(self) -> "OrderedDict[str, Tensor]":
        """{PEFT name: tensor}, names sorted."""
        named = {peft_name(p, "A"): a for p, a in self.A.items()}
        named.update({peft_name(p, "B"): b for p, b in self.B.items()})
        return OrderedDict((n, named[n]) for n in sorted(named))


def parse_targets(text: str) -> List[str]:
    targets = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in targets if t not in TARGET_SUBLAYER]
    if not targets or unknown:
        raise ValueError(f"--targets {text!r}: expected a comma-separated subset of {ALL_TARGETS}")
    if len(set(targets)) != len(targets):
        raise ValueError(f"--targets {text!r}: a target is listed twice")
    return targets


def init_adapter(spec: ModelSpec, rank: int, alpha: float, use_rslora: bool, targets: List[str], seed: int,
                 b_scale: float) -> Adapter:
    """PEFT's LoRA init from `seed`: A ~ kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)) [r, in];
    B = 0 [out, r], or N(0, b_scale^2) when b_scale > 0 (tests only: makes dL/dA non-zero)."""
    if rank <= 0:
        raise ValueError(f"--rank {rank}: must be positive")
    gen = torch.Generator().manual_seed(seed)
    adapter = Adapter(rank, alpha, use_rslora, [t for t in ALL_TARGETS if t in targets])
    for layer in range(spec.layers):
        for target in ALL_TARGETS:  # fixed order, whatever order --targets lists them in
            if target not in targets:
                continue
            out_f, in_f = projection_shape(spec, target)
            bound = 1.0 / math.sqrt(in_f)  # gain sqrt(2 / (1 + 5)) * sqrt(3 / in)
            a = torch.empty(rank, in_f, dtype=torch.float32).uniform_(-bound, bound, generator=gen)
            b = torch.zeros(out_f, rank, dtype=torch.float32)
            if b_scale > 0:
                b = torch.randn(out_f, rank, generator=gen, dtype=torch.float32) * b_scale
            adapter.A[module_path(layer, target)] = a
            adapter.B[module_path(layer, target)] = b
    return adapter


# ================================================================================================
# PEFT folder: adapter_config.json + adapter_model.safetensors
# ================================================================================================


def peft_config(adapter: Adapter, base_model: str) -> dict:
    """adapter_config.json as PEFT's LoraConfig.save_pretrained writes it for a plain LoRA (PEFT 0.1x keys)."""
    return {
        "alpha_pattern": {},
        "auto_mapping": None,
        "base_model_name_or_path": base_model,
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "layer_replication": None,
        "layers_pattern": None,
        "layers_to_transform": None,
        "loftq_config": {},
        "lora_alpha": int(adapter.alpha) if float(adapter.alpha).is_integer() else adapter.alpha,
        "lora_dropout": 0.0,
        "megatron_config": None,
        "megatron_core": "megatron.core",
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": adapter.rank,
        "rank_pattern": {},
        "revision": None,
        "target_modules": list(adapter.targets),
        "task_type": "CAUSAL_LM",
        "use_dora": False,
        "use_rslora": adapter.use_rslora,
    }


def save_adapter(out_dir: str, adapter: Adapter, base_model: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "adapter_config.json"), "w") as f:
        f.write(json.dumps(peft_config(adapter, base_model), indent=2, sort_keys=True))
    tensors = OrderedDict((n, ("F32", t.detach().float())) for n, t in adapter.peft_tensors().items())
    qwen2_ref.write_safetensors(os.path.join(out_dir, "adapter_model.safetensors"), tensors)


def load_adapter(adapter_dir: str, spec: ModelSpec) -> Adapter:
    """A PEFT LoRA folder (ours or HF PEFT's) -> Adapter in float32. Only what this reference implements is
    accepted: LORA, bias none, no DoRA, no per-module rank/alpha patterns, no fan_in_fan_out."""
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        cfg = json.load(f)
    where = os.path.join(adapter_dir, "adapter_config.json")
    if cfg.get("peft_type") != "LORA":
        raise ValueError(f"{where}: peft_type {cfg.get('peft_type')!r}, expected 'LORA'")
    for key, ok in (("bias", "none"), ("use_dora", False), ("fan_in_fan_out", False)):
        if cfg.get(key, ok) != ok:
            raise ValueError(f"{where}: {key} = {cfg[key]!r} is not supported (expected {ok!r})")
    for key in ("rank_pattern", "alpha_pattern"):
        if cfg.get(key):
            raise ValueError(f"{where}: a non-empty {key} is not supported")
    if cfg.get("modules_to_save"):
        raise ValueError(f"{where}: modules_to_save is not supported")
    targets = cfg.get("target_modules")
    if not isinstance(targets, list) or not targets or any(t not in TARGET_SUBLAYER for t in targets):
        raise ValueError(f"{where}: target_modules {targets!r}: expected a list drawn from {ALL_TARGETS}")
    rank, alpha = cfg.get("r"), cfg.get("lora_alpha")
    if not isinstance(rank, int) or rank <= 0 or not isinstance(alpha, (int, float)):
        raise ValueError(f"{where}: bad r {rank!r} or lora_alpha {alpha!r}")
    layers = cfg.get("layers_to_transform")
    layers = list(range(spec.layers)) if layers is None else ([layers] if isinstance(layers, int) else list(layers))
    stored = qwen2_ref.read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    adapter = Adapter(rank, float(alpha), bool(cfg.get("use_rslora", False)), [t for t in ALL_TARGETS if t in targets])
    expected = set()
    for layer in layers:
        for target in adapter.targets:
            path = module_path(layer, target)
            out_f, in_f = projection_shape(spec, target)
            for which, shape, store in (("A", (rank, in_f), adapter.A), ("B", (out_f, rank), adapter.B)):
                name = peft_name(path, which)
                expected.add(name)
                if name not in stored:
                    raise ValueError(f"{adapter_dir}: missing tensor {name}")
                if tuple(stored[name][1].shape) != shape:
                    raise ValueError(f"{adapter_dir}: {name} has shape {list(stored[name][1].shape)}, expected {list(shape)}")
                store[path] = stored[name][1]
    extra = sorted(set(stored) - expected)
    if extra:
        raise ValueError(f"{adapter_dir}: unexpected tensors for this config: {extra[:5]}")
    return adapter


# ================================================================================================
# The LoRA model: qwen2_ref's decoder with a LoRA term on the targeted projections
# ================================================================================================


def lora_linear(x: Tensor, weight: Tensor, bias: Optional[Tensor], lora: Optional[Tuple[Tensor, Tensor]], s: float) -> Tensor:
    """x: [T, in], weight: [out, in], A: [r, in], B: [out, r] -> [T, out] = x W^T + b + s (x A^T) B^T."""
    y = qwen2_ref.linear(x, weight, bias)  # [T, out]
    if lora is None:
        return y
    A, B = lora
    return y + s * ((x @ A.T) @ B.T)  # [T, r] -> [T, out]


Projection = Callable[[str, Tensor], Tensor]  # (e.g. "self_attn.q_proj", x [T, in]) -> [T, out]


def layer_projection(p: Dict[str, Tensor], adapter: Optional[Adapter], layer: int) -> Projection:
    """Layer `layer`'s projections, each with its LoRA term when the adapter targets it."""
    def project(name: str, x: Tensor) -> Tensor:
        path = f"model.layers.{layer}.{name}"
        lora = (adapter.A[path], adapter.B[path]) if adapter is not None and path in adapter.A else None
        return lora_linear(x, p[name + ".weight"], p.get(name + ".bias"), lora, adapter.scale if adapter else 0.0)
    return project


def lora_self_attention(x: Tensor, project: Projection, spec: ModelSpec, cos: Tensor, sin: Tensor) -> Tensor:
    """x: [T, C] (already normed) -> [T, C]; qwen2_ref.self_attention with LoRA projections."""
    T, H, Hkv, D = x.shape[0], spec.heads, spec.kv_heads, spec.head_dim
    q = project("self_attn.q_proj", x).view(T, H, D).transpose(0, 1)  # [H, T, D]
    k = project("self_attn.k_proj", x).view(T, Hkv, D).transpose(0, 1)  # [Hkv, T, D]
    v = project("self_attn.v_proj", x).view(T, Hkv, D).transpose(0, 1)  # [Hkv, T, D]
    q, k = qwen2_ref.apply_rope(q, cos, sin), qwen2_ref.apply_rope(k, cos, sin)
    out = qwen2_ref.causal_attention(q, k, v).transpose(0, 1).reshape(T, H * D)  # [T, H*D]
    return project("self_attn.o_proj", out)  # [T, C]


def lora_mlp(x: Tensor, project: Projection) -> Tensor:
    """x: [T, C] (already normed) -> [T, C]: down(silu(gate(x)) * up(x)) with LoRA projections."""
    act = torch.nn.functional.silu(project("mlp.gate_proj", x)) * project("mlp.up_proj", x)  # [T, I]
    return project("mlp.down_proj", act)


def lora_decoder_layer(h: Tensor, p: Dict[str, Tensor], project: Projection, spec: ModelSpec, cos: Tensor, sin: Tensor) -> Tensor:
    """h: [T, C] residual stream -> [T, C]."""
    h = h + lora_self_attention(qwen2_ref.rms_norm(h, p["input_layernorm.weight"], spec.rms_eps), project, spec, cos, sin)
    h = h + lora_mlp(qwen2_ref.rms_norm(h, p["post_attention_layernorm.weight"], spec.rms_eps), project)
    return h


def lora_forward_sequence(spec: ModelSpec, weights: Dict[str, Tensor], adapter: Optional[Adapter], tokens: Tensor,
                          dtype: torch.dtype = torch.float64) -> Tensor:
    """tokens: [T] int64, one sequence from position 0 -> logits [T, V] of the LoRA model (the adapter's
    tensors must already be in `dtype`). Without an adapter this is the base model."""
    T = tokens.shape[0]
    cos, sin = qwen2_ref.rope_cos_sin(qwen2_ref.rope_inv_freq(spec), T, dtype)  # [T, D] each
    h = weights["model.embed_tokens.weight"][tokens].to(dtype)  # [T, C]
    for i in range(spec.layers):
        p = qwen2_ref.layer_params(weights, i, dtype)
        h = lora_decoder_layer(h, p, layer_projection(p, adapter, i), spec, cos, sin)
    h = qwen2_ref.rms_norm(h, weights["model.norm.weight"].to(dtype), spec.rms_eps)  # [T, C]
    lm_head = weights["model.embed_tokens.weight" if spec.tie else "lm_head.weight"].to(dtype)  # [V, C]
    return h @ lm_head.T  # [T, V]


def merged_weights(weights: Dict[str, Tensor], adapter: Adapter, dtype: torch.dtype) -> Dict[str, Tensor]:
    """The base weights in `dtype` with every targeted W replaced by W + s B A (PEFT's merge)."""
    out = {n: w.to(dtype) for n, w in weights.items()}
    for path in adapter.A:
        out[path + ".weight"] = out[path + ".weight"] + adapter.scale * (adapter.B[path] @ adapter.A[path])  # [out, in]
    return out


def weights_in(weights: Dict[str, Tensor], dtype: torch.dtype) -> Dict[str, Tensor]:
    """The frozen base weights converted once (so the per-sequence .to(dtype) calls are no-ops)."""
    return {n: w.to(dtype) for n, w in weights.items()}


# ================================================================================================
# GRPO: batch, per-token log-probs, advantages, loss
# ================================================================================================

LOSS_TYPES = ("grpo", "bnpo", "dr_grpo")  # the GRPO aggregations
SFT = "sft"  # supervised fine-tuning: mean NLL of the completion tokens
SCALE_REWARDS = ("group", "batch", "none")


@dataclass
class GrpoBatch:
    prompts: List[List[int]]  # N, one per completion (per-group prompts expanded)
    completions: List[List[int]]  # N
    rewards: Optional[List[float]]  # N
    group_size: int
    loss_type: str
    epsilon: float
    epsilon_high: float
    beta: float
    temperature: float
    max_completion_length: int
    scale_rewards: str
    old_logps: Optional[List[List[float]]]
    ref_logps: Optional[List[List[float]]]
    advantages: Optional[List[float]]


def _int_lists(obj: object, what: str, vocab: int) -> List[List[int]]:
    if not isinstance(obj, list) or not all(isinstance(s, list) for s in obj):
        raise ValueError(f"batch.{what}: expected number[][]")
    for s in obj:
        for t in s:
            if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t < vocab:
                raise ValueError(f"batch.{what}: token {t!r} is not an integer id in [0, {vocab})")
    return obj


def _number(obj: dict, key: str, default: Optional[float] = None) -> float:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"batch.{key}: expected a finite number, got {value!r}")
    return float(value)


def _per_token(obj: object, what: str, completions: List[List[int]]) -> Optional[List[List[float]]]:
    if obj is None:
        return None
    if not isinstance(obj, list) or len(obj) != len(completions):
        raise ValueError(f"batch.{what}: expected one list per completion ({len(completions)})")
    for i, (row, comp) in enumerate(zip(obj, completions)):
        if not isinstance(row, list) or len(row) != len(comp):
            raise ValueError(f"batch.{what}[{i}]: expected {len(comp)} numbers (one per completion token)")
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in row):
            raise ValueError(f"batch.{what}[{i}]: expected finite numbers")
    return [[float(x) for x in row] for row in obj]


def parse_batch(obj: dict, vocab: int) -> GrpoBatch:
    """The camelCase batch JSON -> GrpoBatch, every field checked."""
    if not isinstance(obj, dict):
        raise ValueError("batch: expected a JSON object")
    completions = _int_lists(obj.get("completionIds"), "completionIds", vocab)
    prompts = _int_lists(obj.get("promptIds"), "promptIds", vocab)
    n = len(completions)
    group = obj.get("groupSize")
    if not isinstance(group, int) or isinstance(group, bool) or group <= 0 or n == 0 or n % group:
        raise ValueError(f"batch.groupSize {group!r}: must be a positive integer dividing the {n} completions")
    if len(prompts) == n:
        pass  # one prompt per completion
    elif len(prompts) * group == n:
        prompts = [prompts[i // group] for i in range(n)]  # one prompt per group
    else:
        raise ValueError(f"batch.promptIds: {len(prompts)} prompts for {n} completions in groups of {group}")
    if any(len(p) == 0 for p in prompts):
        raise ValueError("batch.promptIds: every prompt needs at least one token")
    loss_type = obj.get("lossType")
    if loss_type not in LOSS_TYPES + (SFT,):
        raise ValueError(f"batch.lossType {loss_type!r}: expected one of {LOSS_TYPES + (SFT,)}")
    if loss_type == SFT:  # nothing of the policy-gradient terms is read; neutral values keep the checks below simple
        obj = {"epsilon": 0.0, "beta": 0.0, **obj}
        if obj.get("rewards") is None and obj.get("advantages") is None:
            obj["advantages"] = [0.0] * n
    scale_rewards = obj.get("scaleRewards", "group")
    if scale_rewards not in SCALE_REWARDS:
        raise ValueError(f"batch.scaleRewards {scale_rewards!r}: expected one of {SCALE_REWARDS}")
    epsilon = _number(obj, "epsilon")
    epsilon_high = _number(obj, "epsilonHigh", epsilon) if obj.get("epsilonHigh") is not None else epsilon
    beta, temperature = _number(obj, "beta"), _number(obj, "temperature")
    if epsilon < 0 or epsilon_high < 0 or beta < 0 or temperature <= 0:
        raise ValueError("batch: epsilon, epsilonHigh and beta must be >= 0 and temperature > 0")
    longest = max(len(c) for c in completions)
    mcl = obj.get("maxCompletionLength")
    if mcl is None:
        mcl = longest
    if not isinstance(mcl, int) or isinstance(mcl, bool) or mcl <= 0:
        raise ValueError(f"batch.maxCompletionLength {mcl!r}: expected a positive integer")
    advantages = obj.get("advantages")
    if advantages is not None:
        if not isinstance(advantages, list) or len(advantages) != n or not all(
                isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a) for a in advantages):
            raise ValueError(f"batch.advantages: expected {n} finite numbers")
        advantages = [float(a) for a in advantages]
    rewards = obj.get("rewards")
    if rewards is None and advantages is None:
        raise ValueError("batch.rewards: required (unless advantages is given)")
    if rewards is not None:
        if not isinstance(rewards, list) or len(rewards) != n or not all(
                isinstance(r, (int, float)) and not isinstance(r, bool) and math.isfinite(r) for r in rewards):
            raise ValueError(f"batch.rewards: expected {n} finite numbers")
        rewards = [float(r) for r in rewards]
        if advantages is None and scale_rewards == "group" and group < 2:
            raise ValueError("batch: scaleRewards 'group' needs groupSize >= 2 (torch.std of one value is NaN)")
        if advantages is None and scale_rewards == "batch" and n < 2:
            raise ValueError("batch: scaleRewards 'batch' needs at least 2 completions")
    return GrpoBatch(prompts, completions, rewards, group, loss_type, epsilon, epsilon_high, beta, temperature, mcl,
                     scale_rewards, _per_token(obj.get("oldLogps"), "oldLogps", completions),
                     _per_token(obj.get("refLogps"), "refLogps", completions), advantages)


LogitsFn = Callable[[Tensor], Tensor]  # tokens [T] -> logits [T, V]


def completion_logps(logits: Tensor, prompt_len: int, completion: Tensor, temperature: float) -> Tensor:
    """logits: [P + L, V] of prompt + completion, completion: [L] -> [L] log-probs. Row P - 1 + t predicts
    completion token t; logits are divided by the sampling temperature first (TRL)."""
    L = completion.shape[0]
    rows = logits[prompt_len - 1 : prompt_len - 1 + L] / temperature  # [L, V]
    return torch.log_softmax(rows, dim=-1).gather(1, completion[:, None]).squeeze(1)  # [L]


def sequence_logps(logits_fn: LogitsFn, batch: GrpoBatch) -> List[Tensor]:
    """Per completion, the log-probs of its tokens given the prompt and its earlier tokens: N x [L_i]."""
    out = []
    for prompt, completion in zip(batch.prompts, batch.completions):
        tokens = torch.tensor(prompt + completion, dtype=torch.int64)  # [P + L]
        logits = logits_fn(tokens)  # [P + L, V]
        out.append(completion_logps(logits, len(prompt), torch.tensor(completion, dtype=torch.int64), batch.temperature))
    return out


def group_advantages(rewards: Tensor, group_size: int, scale_rewards: str) -> Tensor:
    """rewards: [N] -> advantages [N]: r - mean(group), over (std + 1e-4) with the group's ('group') or the
    batch's ('batch') unbiased std; 'none' leaves r - mean."""
    grouped = rewards.view(-1, group_size)  # [N / G, G]
    mean = grouped.mean(dim=1).repeat_interleave(group_size)  # [N]
    advantages = rewards - mean
    if scale_rewards == "group":
        advantages = advantages / (grouped.std(dim=1).repeat_interleave(group_size) + 1e-4)
    elif scale_rewards == "batch":
        advantages = advantages / (rewards.std() + 1e-4)
    return advantages


def k3_kl(ref: Tensor, logp: Tensor) -> Tensor:
    """The k3 estimator of KL(policy || ref) per token: exp(ref - logp) - (ref - logp) - 1 >= 0."""
    d = ref - logp
    return torch.exp(d) - d - 1


@dataclass
class TokenTerms:
    loss: Tensor  # [L] per-token loss
    clipped: Tensor  # [L] bool: the clipped term was the (strictly) smaller one
    kl: Optional[Tensor]  # [L] or None when beta is 0


def grpo_token_terms(logp: Tensor, old: Tensor, ref: Optional[Tensor], advantage: Tensor, batch: GrpoBatch) -> TokenTerms:
    """One completion's per-token loss: -min(ratio A, clamp(ratio, 1 - eps, 1 + epsHigh) A) + beta k3."""
    ratio = torch.exp(logp - old)  # [L]
    unclipped = ratio * advantage
    clipped = torch.clamp(ratio, 1 - batch.epsilon, 1 + batch.epsilon_high) * advantage
    loss = -torch.min(unclipped, clipped)
    kl = None
    if batch.beta != 0.0:
        kl = k3_kl(ref, logp)
        loss = loss + batch.beta * kl
    return TokenTerms(loss, (clipped < unclipped).detach(), kl)


def reduce_loss(token_losses: List[Tensor], batch: GrpoBatch) -> Tensor:
    """N x [L_i] per-token losses -> the scalar loss of `batch.loss_type`."""
    n = len(token_losses)
    if batch.loss_type == "grpo":  # each sequence's token mean, then the mean over sequences
        return sum(t.sum() / max(t.shape[0], 1) for t in token_losses) / n
    total = sum(t.sum() for t in token_losses)
    if batch.loss_type == "bnpo":  # one mean over every token of the batch
        return total / max(sum(t.shape[0] for t in token_losses), 1)
    return total / (n * batch.max_completion_length)  # dr_grpo: a constant denominator


@dataclass
class LossResult:
    loss: Tensor  # scalar, differentiable w.r.t. the adapter
    logps: List[Tensor]  # N x [L_i], detached
    advantages: Tensor  # [N]
    clip_fraction: float
    kl: float


def grpo_loss(logps: List[Tensor], batch: GrpoBatch, ref_logps: Optional[List[Tensor]], dtype: torch.dtype) -> LossResult:
    """TRL's GRPO loss from the current log-probs (differentiable), the batch and the reference log-probs."""
    as_tensor = lambda row: torch.tensor(row, dtype=dtype)  # noqa: E731
    if batch.advantages is not None:
        advantages = as_tensor(batch.advantages)
    else:
        advantages = group_advantages(as_tensor(batch.rewards), batch.group_size, batch.scale_rewards)
    olds = [as_tensor(r) for r in batch.old_logps] if batch.old_logps is not None else [lp.detach() for lp in logps]
    terms = [grpo_token_terms(lp, old, ref_logps[i] if ref_logps else None, advantages[i], batch)
             for i, (lp, old) in enumerate(zip(logps, olds))]
    tokens = sum(lp.shape[0] for lp in logps)
    clip_fraction = sum(int(t.clipped.sum()) for t in terms) / tokens if tokens else 0.0
    kl = float(sum(t.kl.detach().sum() for t in terms)) / tokens if batch.beta != 0.0 and tokens else 0.0
    return LossResult(reduce_loss([t.loss for t in terms], batch), [lp.detach() for lp in logps], advantages,
                      clip_fraction, kl)


def sft_loss(logps: List[Tensor], dtype: torch.dtype) -> LossResult:
    """Supervised fine-tuning: the mean negative log-likelihood over every completion token of the batch."""
    tokens = sum(lp.shape[0] for lp in logps)
    loss = -sum(lp.sum() for lp in logps) / tokens
    return LossResult(loss, [lp.detach() for lp in logps], torch.zeros(len(logps), dtype=dtype), 0.0, 0.0)


def reference_logps(spec: ModelSpec, weights: Dict[str, Tensor], batch: GrpoBatch, dtype: torch.dtype) -> Optional[List[Tensor]]:
    """The reference model's log-probs: given in the batch, or the base model (adapter disabled) when
    beta > 0, or None when beta is 0 or the loss is 'sft' (the reference pass is skipped)."""
    if batch.loss_type == SFT:
        return None
    if batch.ref_logps is not None:
        return [torch.tensor(r, dtype=dtype) for r in batch.ref_logps]
    if batch.beta == 0.0:
        return None
    with torch.no_grad():
        return sequence_logps(lambda t: qwen2_ref.forward_sequence(spec, weights, t, dtype), batch)


def loss_and_grads(spec: ModelSpec, weights: Dict[str, Tensor], adapter: Adapter, batch: GrpoBatch,
                   dtype: torch.dtype = torch.float64) -> Tuple[LossResult, "OrderedDict[str, Tensor]"]:
    """The whole step: (loss result, {PEFT name: gradient}) for the LoRA model, base weights frozen."""
    w = weights_in(weights, dtype)
    trainable = adapter.to(dtype, requires_grad=True)
    ref = reference_logps(spec, w, batch, dtype)
    logps = sequence_logps(lambda t: lora_forward_sequence(spec, w, trainable, t, dtype), batch)
    result = sft_loss(logps, dtype) if batch.loss_type == SFT else grpo_loss(logps, batch, ref, dtype)
    params = trainable.peft_tensors()
    grads = torch.autograd.grad(result.loss, list(params.values()), allow_unused=True)
    return result, OrderedDict((n, g if g is not None else torch.zeros_like(p)) for (n, p), g in zip(params.items(), grads))


def full_loss_and_grads(spec: ModelSpec, weights: Dict[str, Tensor], batch: GrpoBatch,
                        dtype: torch.dtype = torch.float64) -> Tuple[LossResult, "OrderedDict[str, Tensor]"]:
    """Full-parameter training: every base weight is trainable (no adapter); (loss result, {HF name:
    gradient}). A tied LM head is the embedding, so its gradient lands on model.embed_tokens.weight;
    a tensor the forward never reads (an lm_head copy in a tied checkpoint) gets zeros. The KL
    reference, when beta > 0 and no refLogps are given, is the weights as loaded."""
    w = OrderedDict((n, t.to(dtype).detach().requires_grad_(True)) for n, t in weights.items())
    ref = reference_logps(spec, {n: t.detach() for n, t in w.items()}, batch, dtype)
    logps = sequence_logps(lambda t: lora_forward_sequence(spec, w, None, t, dtype), batch)
    result = sft_loss(logps, dtype) if batch.loss_type == SFT else grpo_loss(logps, batch, ref, dtype)
    grads = torch.autograd.grad(result.loss, list(w.values()), allow_unused=True)
    return result, OrderedDict((n, g if g is not None else torch.zeros_like(p)) for (n, p), g in zip(w.items(), grads))


def result_json(result: LossResult, grads: "OrderedDict[str, Tensor]") -> dict:
    return {
        "loss": float(result.loss),
        "grads": {n: g.detach().double().flatten().tolist() for n, g in grads.items()},
        "logps": [lp.double().tolist() for lp in result.logps],
        "advantages": result.advantages.detach().double().tolist(),
        "clipFraction": result.clip_fraction,
        "kl": result.kl,
    }


# ================================================================================================
# CLI commands
# ================================================================================================

DTYPES = {"f64": torch.float64, "f32": torch.float32}


def cmd_make_adapter(args: argparse.Namespace) -> None:
    spec, _ = qwen2_ref.load_model(args.model)
    adapter = init_adapter(spec, args.rank, args.alpha, args.rslora, parse_targets(args.targets), args.seed, args.b_scale)
    save_adapter(args.out, adapter, args.model)


def cmd_loss_grads(args: argparse.Namespace) -> None:
    if (args.adapter is None) == (not args.full):
        raise ValueError("loss-grads needs exactly one of --adapter DIR (LoRA) and --full (every weight)")
    spec, weights = qwen2_ref.load_model(args.model)
    with open(args.batch) as f:
        batch = parse_batch(json.load(f), spec.vocab)
    if args.full:
        result, grads = full_loss_and_grads(spec, weights, batch, DTYPES[args.dtype])
    else:
        result, grads = loss_and_grads(spec, weights, load_adapter(args.adapter, spec), batch, DTYPES[args.dtype])
    out = result_json(result, grads)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, allow_nan=False)  # a NaN/Inf is an error, never a silently invalid JSON file
    os.replace(tmp, args.out)


# ================================================================================================
# self-test: checks that do not rest on this file agreeing with itself
# ================================================================================================

relative_l2 = qwen2_ref.relative_l2


def tiny_setup(arch: str = "qwen2", seed: int = 1, **spec_overrides) -> Tuple[ModelSpec, Dict[str, Tensor]]:
    if arch == "llama":
        spec_overrides = {"arch": "llama", "o_bias": True, "mlp_bias": True, "tie": True, **spec_overrides}
    spec = qwen2_ref.tiny_spec(**spec_overrides)
    return spec, dict(qwen2_ref.random_weights(spec, seed=seed, scale=1.0))


def tiny_batch(loss_type: str = "grpo", **overrides) -> GrpoBatch:
    """Two groups of three completions (vocab 23), one prompt per group, lengths 2..5."""
    obj = {
        "promptIds": [[1, 7, 3], [22, 5]],
        "completionIds": [[4, 9, 11, 2], [8, 8], [0, 15, 6, 21, 3], [13, 2, 2], [19, 1, 5, 7], [10, 12]],
        "rewards": [1.0, 0.0, 2.5, 0.5, 0.5, 3.0],
        "groupSize": 3, "lossType": loss_type, "epsilon": 0.2, "epsilonHigh": 0.28, "beta": 0.04, "temperature": 0.7,
    }
    obj.update(overrides)
    return parse_batch(obj, 23)


def perturbed_old_logps(spec: ModelSpec, weights: Dict[str, Tensor], adapter: Adapter, batch: GrpoBatch, seed: int) -> List[List[float]]:
    """Current log-probs + N(0, 0.3^2) noise: ratios e^(+-0.3..) so that some tokens clip."""
    gen = torch.Generator().manual_seed(seed)
    w = weights_in(weights, torch.float64)
    ad = adapter.to(torch.float64)
    with torch.no_grad():
        cur = sequence_logps(lambda t: lora_forward_sequence(spec, w, ad, t), batch)
    return [(lp + 0.3 * torch.randn(lp.shape, generator=gen, dtype=torch.float64)).tolist() for lp in cur]


def check_zero_b_is_base() -> str:
    worst = []
    for arch in ("qwen2", "llama"):
        spec, weights = tiny_setup(arch)
        adapter = init_adapter(spec, 4, 8.0, False, ALL_TARGETS, seed=3, b_scale=0.0).to(torch.float64)
        tokens = torch.tensor([3, 17, 0, 22, 9, 9, 4])
        ours = lora_forward_sequence(spec, weights_in(weights, torch.float64), adapter, tokens)
        base = qwen2_ref.forward_sequence(spec, weights, tokens)
        err = (ours - base).abs().max().item()
        assert err == 0.0, f"{arch}: LoRA with B = 0 differs from the base model by {err}"
        worst.append(f"{arch} {err:.0e}")
    return "B = 0 logits == qwen2_ref.forward_sequence exactly (" + ", ".join(worst) + ")"


def check_merged_equals_unmerged() -> str:
    cases = [("qwen2 all 7, r4 a8", "qwen2", ALL_TARGETS, 4, 8.0, False),
             ("llama biases q,v,down rsLoRA r3 a5", "llama", ["q_proj", "v_proj", "down_proj"], 3, 5.0, True)]
    out = []
    for name, arch, targets, rank, alpha, rs in cases:
        spec, weights = tiny_setup(arch)
        adapter = init_adapter(spec, rank, alpha, rs, targets, seed=5, b_scale=0.3).to(torch.float64)
        tokens = torch.tensor([5, 1, 14, 2, 20, 8])
        unmerged = lora_forward_sequence(spec, weights_in(weights, torch.float64), adapter, tokens)
        merged = qwen2_ref.forward_sequence(spec, merged_weights(weights, adapter, torch.float64), tokens)
        base = qwen2_ref.forward_sequence(spec, weights, tokens)
        err, moved = relative_l2(unmerged, merged), relative_l2(unmerged, base)
        assert err < 1e-12, f"{name}: unmerged LoRA vs qwen2_ref on W + sBA: rel {err}"
        assert moved > 1e-3, f"{name}: the adapter barely changes the logits ({moved}); the check is vacuous"
        out.append(f"{name} rel {err:.1e} (adapter moves logits {moved:.2f})")
    return "unmerged == qwen2_ref.forward_sequence(W + s B A): " + "; ".join(out)


def check_logps_by_hand() -> str:
    spec, weights = tiny_setup()
    adapter = init_adapter(spec, 4, 8.0, False, ALL_TARGETS, seed=5, b_scale=0.3).to(torch.float64)
    batch = tiny_batch()
    merged = merged_weights(weights, adapter, torch.float64)
    ours = sequence_logps(lambda t: lora_forward_sequence(spec, weights_in(weights, torch.float64), adapter, t), batch)
    worst = 0.0
    for prompt, completion, lp in zip(batch.prompts, batch.completions, ours):
        seq = prompt + completion
        logits = qwen2_ref.forward_sequence(spec, merged, torch.tensor(seq)).tolist()  # [T][V]
        for t, tok in enumerate(completion):
            row = [x / batch.temperature for x in logits[len(prompt) + t - 1]]  # the position before the token
            m = max(row)
            expected = row[tok] - (m + math.log(sum(math.exp(x - m) for x in row)))
            worst = max(worst, abs(expected - float(lp[t])))
    assert worst < 1e-12, f"per-token log-probs differ from a by-hand log-softmax of the merged logits: {worst}"
    return f"log-probs == by-hand log_softmax(logits[P-1+t] / T)[tok] on merged weights (max err {worst:.1e})"


def check_advantages_by_hand() -> str:
    rewards = [1.0, 0.0, 2.5, 0.5, 0.5, 3.0]
    groups = [rewards[:3], rewards[3:]]
    everything = statistics.stdev(rewards)
    expect = {
        "group": [(r - statistics.mean(g)) / (statistics.stdev(g) + 1e-4) for g in groups for r in g],
        "batch": [(r - statistics.mean(g)) / (everything + 1e-4) for g in groups for r in g],
        "none": [r - statistics.mean(g) for g in groups for r in g],
    }
    for mode, want in expect.items():
        got = group_advantages(torch.tensor(rewards, dtype=torch.float64), 3, mode).tolist()
        err = max(abs(a - b) for a, b in zip(got, want))
        assert err < 1e-12, f"scaleRewards {mode}: advantages differ from statistics.stdev by {err}"
    flat = group_advantages(torch.tensor([2.0, 2.0, 2.0, 2.0], dtype=torch.float64), 2, "group")
    assert flat.abs().max().item() == 0.0, "equal rewards must give zero advantages"
    return "group / batch / none == statistics.mean/stdev (Bessel) by hand; equal rewards -> 0"


def check_loss_by_hand() -> str:
    """The reduction formulas once more in plain Python floats, from given log-probs."""
    spec, weights = tiny_setup()
    adapter = init_adapter(spec, 4, 8.0, False, ALL_TARGETS, seed=5, b_scale=0.3)
    out = []
    for loss_type in LOSS_TYPES:
        batch = tiny_batch(loss_type, maxCompletionLength=7)
        batch.old_logps = perturbed_old_logps(spec, weights, adapter, batch, seed=9)
        result, _ = loss_and_grads(spec, weights, adapter, batch)
        ref = reference_logps(spec, weights_in(weights, torch.float64), batch, torch.float64)
        adv = result.advantages.tolist()
        per_seq, clipped, kls = [], 0, []
        for i, lp in enumerate(result.logps):
            tokens = []
            for t, logp in enumerate(lp.tolist()):
                ratio = math.exp(logp - batch.old_logps[i][t])
                clip = min(max(ratio, 1 - batch.epsilon), 1 + batch.epsilon_high)
                a, b = ratio * adv[i], clip * adv[i]
                clipped += b < a
                d = float(ref[i][t]) - logp
                kls.append(math.exp(d) - d - 1)
                tokens.append(-min(a, b) + batch.beta * kls[-1])
            per_seq.append(tokens)
        n, total = len(per_seq), sum(len(s) for s in per_seq)
        want = {"grpo": sum(sum(s) / len(s) for s in per_seq) / n,
                "bnpo": sum(map(sum, per_seq)) / total,
                "dr_grpo": sum(map(sum, per_seq)) / (n * 7)}[loss_type]
        err = abs(float(result.loss) - want) / abs(want)
        assert err < 1e-12, f"{loss_type}: loss {float(result.loss)} vs by hand {want}"
        assert result.clip_fraction == clipped / total and 0 < clipped < total, f"{loss_type}: clip fraction"
        assert abs(result.kl - sum(kls) / total) < 1e-14, f"{loss_type}: kl {result.kl} vs {sum(kls) / total}"
        out.append(f"{loss_type} rel {err:.0e}")
    return f"loss, clipFraction ({clipped}/{total}), kl == plain-Python formulas: " + ", ".join(out)


def check_grads_through_merged() -> str:
    """dL/dA, dL/dB by autograd through qwen2_ref.forward_sequence on W + s B A (a different code path)."""
    spec, weights = tiny_setup("llama")
    adapter = init_adapter(spec, 3, 6.0, True, ALL_TARGETS, seed=5, b_scale=0.3)
    batch = tiny_batch("bnpo")
    batch.old_logps = perturbed_old_logps(spec, weights, adapter, batch, seed=2)
    result, grads = loss_and_grads(spec, weights, adapter, batch)
    trainable = adapter.to(torch.float64, requires_grad=True)
    ref = reference_logps(spec, weights_in(weights, torch.float64), batch, torch.float64)
    logps = sequence_logps(lambda t: qwen2_ref.forward_sequence(spec, merged_weights(weights, trainable, torch.float64), t), batch)
    other = grpo_loss(logps, batch, ref, torch.float64)
    params = trainable.peft_tensors()
    theirs = torch.autograd.grad(other.loss, list(params.values()))
    ours = torch.cat([g.flatten() for g in grads.values()])
    theirs = torch.cat([g.flatten() for g in theirs])
    err = relative_l2(ours, theirs)
    assert err < 1e-10 and abs(float(other.loss - result.loss)) < 1e-13, f"grads via merged weights differ: rel {err}"
    assert (ours != 0).float().mean().item() > 0.99, "some gradients are exactly zero"
    return f"grads == autograd through qwen2_ref on merged weights (rel {err:.1e}, {ours.numel()} entries)"


def finite_difference(loss_of: Callable[[], float], tensor: Tensor, index: Tuple[int, int], h: float) -> float:
    """Central difference of loss_of() in tensor[index] (modified in place, then restored)."""
    with torch.no_grad():
        x0 = tensor[index].item()
        tensor[index] = x0 + h
        up = loss_of()
        tensor[index] = x0 - h
        down = loss_of()
        tensor[index] = x0
    return (up - down) / (2 * h)


def check_finite_differences() -> str:
    spec, weights = tiny_setup()
    adapter = init_adapter(spec, 4, 8.0, False, ALL_TARGETS, seed=5, b_scale=0.3)
    w = weights_in(weights, torch.float64)
    out = []
    for loss_type in LOSS_TYPES:
        batch = tiny_batch(loss_type, maxCompletionLength=9, scaleRewards="batch" if loss_type == "bnpo" else "group")
        batch.old_logps = perturbed_old_logps(spec, weights, adapter, batch, seed=11)
        result, grads = loss_and_grads(spec, weights, adapter, batch)
        assert 0 < result.clip_fraction < 1 and result.kl > 0, f"{loss_type}: nothing clipped, or no KL"
        probe = adapter.to(torch.float64)
        ref = reference_logps(spec, w, batch, torch.float64)

        def loss_of() -> float:
            lps = sequence_logps(lambda t: lora_forward_sequence(spec, w, probe, t), batch)
            return float(grpo_loss(lps, batch, ref, torch.float64).loss)

        worst = 0.0
        for path in ("model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj", "model.layers.0.self_attn.v_proj"):
            for which, tensor in (("A", probe.A[path]), ("B", probe.B[path])):
                g = grads[peft_name(path, which)]
                index = tuple(int(i) for i in divmod(int(g.abs().argmax()), g.shape[1]))  # the largest entry
                fd = finite_difference(loss_of, tensor, index, 1e-6)
                err = abs(fd - g[index].item()) / max(abs(g[index].item()), 1e-8)
                assert err < 1e-5, f"{loss_type} {path} lora_{which}{list(index)}: autograd {g[index].item()} vs FD {fd}"
                worst = max(worst, err)
        out.append(f"{loss_type} {worst:.1e}")
    return "central differences (h 1e-6, f64, clipped tokens, beta 0.04, T 0.7) match autograd, worst rel: " + ", ".join(out)


def check_sft() -> str:
    """'sft': the loss by hand (plain-Python log-softmax of merged-weight logits), finite differences, and the
    policy-gradient fields (rewards, beta, oldLogps, epsilon) change nothing."""
    spec, weights = tiny_setup("llama")
    adapter = init_adapter(spec, 3, 6.0, False, ALL_TARGETS, seed=5, b_scale=0.3)
    batch = tiny_batch(SFT, rewards=None, beta=0.0)
    result, grads = loss_and_grads(spec, weights, adapter, batch)
    merged = merged_weights(weights, adapter.to(torch.float64), torch.float64)
    nll = []
    for prompt, completion in zip(batch.prompts, batch.completions):
        logits = qwen2_ref.forward_sequence(spec, merged, torch.tensor(prompt + completion)).tolist()
        for t, tok in enumerate(completion):
            row = [x / batch.temperature for x in logits[len(prompt) + t - 1]]
            m = max(row)
            nll.append(m + math.log(sum(math.exp(x - m) for x in row)) - row[tok])
    want = sum(nll) / len(nll)
    err = abs(float(result.loss) - want) / want
    assert err < 1e-12, f"sft loss {float(result.loss)} vs by hand {want}"
    assert result.kl == 0.0 and result.clip_fraction == 0.0 and result.advantages.abs().max().item() == 0.0
    other = tiny_batch(SFT, beta=0.5, epsilon=0.01, oldLogps=[[0.0] * len(c) for c in batch.completions])
    r2, g2 = loss_and_grads(spec, weights, adapter, other)
    same = float(r2.loss) == float(result.loss) and all(torch.equal(grads[n], g2[n]) for n in grads)
    assert same, "sft depends on rewards / beta / epsilon / oldLogps"
    probe = adapter.to(torch.float64)
    w = weights_in(weights, torch.float64)

    def loss_of() -> float:
        return float(sft_loss(sequence_logps(lambda t: lora_forward_sequence(spec, w, probe, t), batch), torch.float64).loss)

    worst = 0.0
    for path in ("model.layers.0.self_attn.k_proj", "model.layers.1.mlp.gate_proj"):
        for which, tensor in (("A", probe.A[path]), ("B", probe.B[path])):
            g = grads[peft_name(path, which)]
            index = tuple(int(i) for i in divmod(int(g.abs().argmax()), g.shape[1]))
            fd = finite_difference(loss_of, tensor, index, 1e-6)
            rel = abs(fd - g[index].item()) / max(abs(g[index].item()), 1e-8)
            assert rel < 1e-5, f"sft {path} lora_{which}{list(index)}: autograd {g[index].item()} vs FD {fd}"
            worst = max(worst, rel)
    return (f"sft loss == by-hand mean NLL at T 0.7 (rel {err:.0e}); ignores rewards/beta/eps/oldLogps; "
            f"central differences worst rel {worst:.1e}")


def check_full_finite_differences() -> str:
    """Full-parameter gradients: central differences in the largest-gradient entry of one tensor of each
    kind (embedding shared with a tied LM head, norm scale, bias, projection, final norm), for sft and grpo."""
    out = []
    for arch, loss_type in (("llama", SFT), ("qwen2", "grpo")):
        spec, weights = tiny_setup(arch)
        batch = tiny_batch(loss_type, beta=0.0)
        result, grads = full_loss_and_grads(spec, weights, batch)
        batch.old_logps = [lp.tolist() for lp in result.logps]  # held fixed while the weights move
        w = weights_in(weights, torch.float64)

        def loss_of() -> float:
            lps = sequence_logps(lambda t: lora_forward_sequence(spec, w, None, t), batch)
            return float((sft_loss(lps, torch.float64) if loss_type == SFT else grpo_loss(lps, batch, None, torch.float64)).loss)

        names = ["model.embed_tokens.weight", "model.layers.0.input_layernorm.weight", "model.layers.1.mlp.up_proj.weight",
                 "model.layers.0.self_attn.k_proj.bias", "model.norm.weight"]
        if not spec.tie:
            names.append("lm_head.weight")
        worst = 0.0
        for name in names:
            g = grads[name]
            flat = int(g.abs().argmax())
            index = tuple(int(i) for i in divmod(flat, g.shape[1])) if g.dim() == 2 else (flat,)
            fd = finite_difference(loss_of, w[name], index, 1e-6)
            err = abs(fd - g[index].item()) / max(abs(g[index].item()), 1e-8)
            assert err < 1e-5, f"{arch} {loss_type} {name}{list(index)}: autograd {g[index].item()} vs FD {fd}"
            worst = max(worst, err)
        out.append(f"{arch} {loss_type} {worst:.1e}")
    return "full-parameter grads == central differences (h 1e-6, f64), worst rel: " + ", ".join(out)


def check_equal_rewards_zero_grad() -> str:
    spec, weights = tiny_setup()
    adapter = init_adapter(spec, 4, 8.0, False, ALL_TARGETS, seed=5, b_scale=0.3)
    for loss_type in LOSS_TYPES:
        batch = tiny_batch(loss_type, rewards=[0.5] * 6, beta=0.0)
        result, grads = loss_and_grads(spec, weights, adapter, batch)
        biggest = max(g.abs().max().item() for g in grads.values())
        assert biggest == 0.0 and result.advantages.abs().max().item() == 0.0, f"{loss_type}: gradient {biggest}"
        assert float(result.loss) == 0.0 and result.clip_fraction == 0.0 and result.kl == 0.0
    # and the default oldLogps is the current log-probs, detached: giving them explicitly changes nothing
    batch = tiny_batch("grpo")
    result, grads = loss_and_grads(spec, weights, adapter, batch)
    explicit = tiny_batch("grpo", oldLogps=[lp.tolist() for lp in result.logps])
    result2, grads2 = loss_and_grads(spec, weights, adapter, explicit)
    err = max((grads[n] - grads2[n]).abs().max().item() for n in grads)
    assert abs(float(result.loss - result2.loss)) < 1e-15 and err < 1e-15, f"explicit oldLogps = logps differs ({err})"
    return "all-equal rewards, beta 0: loss 0 and every gradient exactly 0 (all loss types); oldLogps default == logps"


def check_kl_vanishes_at_base() -> str:
    """With B = 0 the policy is the reference: KL 0, and with A = 0 (equal rewards) the loss gradient is 0."""
    spec, weights = tiny_setup()
    adapter = init_adapter(spec, 4, 8.0, False, ALL_TARGETS, seed=5, b_scale=0.0)
    batch = tiny_batch("grpo", rewards=[1.0] * 6, beta=0.5)
    result, grads = loss_and_grads(spec, weights, adapter, batch)
    biggest = max(g.abs().max().item() for g in grads.values())
    assert result.kl == 0.0 and biggest == 0.0, f"kl {result.kl}, gradient {biggest}"
    return "B = 0: ref == policy, kl exactly 0 and zero gradient with equal rewards (beta 0.5)"


def check_batch_forms() -> str:
    spec, weights = tiny_setup()
    adapter = init_adapter(spec, 4, 8.0, False, ALL_TARGETS, seed=5, b_scale=0.3)
    per_group = tiny_batch("dr_grpo")
    per_completion = tiny_batch("dr_grpo", promptIds=per_group.prompts)
    r1, g1 = loss_and_grads(spec, weights, adapter, per_group)
    r2, g2 = loss_and_grads(spec, weights, adapter, per_completion)
    assert float(r1.loss) == float(r2.loss) and all(torch.equal(g1[n], g2[n]) for n in g1), "prompt forms differ"
    forced = tiny_batch("dr_grpo", advantages=r1.advantages.tolist(), rewards=None)
    r3, g3 = loss_and_grads(spec, weights, adapter, forced)
    assert abs(float(r3.loss - r1.loss)) < 1e-15, "advantages override"
    f32, g32 = loss_and_grads(spec, weights, adapter, per_group, torch.float32)
    err = relative_l2(torch.cat([g.flatten() for g in g32.values()]), torch.cat([g.flatten() for g in g1.values()]))
    assert err < 1e-4 and abs(float(f32.loss) - float(r1.loss)) < 1e-5, f"f32 vs f64 grads rel {err}"
    bad = [dict(groupSize=4), dict(lossType="dapo"), dict(completionIds=[[99]] * 6), dict(promptIds=[[1]] * 4),
           dict(oldLogps=[[0.0]] * 6), dict(temperature=0)]
    for overrides in bad:
        try:
            tiny_batch(**overrides)
        except ValueError:
            continue
        raise AssertionError(f"a bad batch was accepted: {overrides}")
    return f"per-group == per-completion prompts; advantages override; f32 vs f64 grads rel {err:.1e}; {len(bad)} bad batches rejected"


def run_cli(script: str, *argv: str) -> None:
    proc = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"{os.path.basename(script)} {' '.join(argv)} failed:\n{proc.stderr}")


def check_cli_round_trip() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    me, qwen = os.path.join(here, "grpo_ref.py"), os.path.join(here, "qwen2_ref.py")
    with tempfile.TemporaryDirectory() as d:
        model, ad = os.path.join(d, "model"), os.path.join(d, "adapter")
        run_cli(qwen, "make-model", "--out", model, "--arch", "qwen2", "--hidden", "16", "--intermediate", "24",
                "--layers", "2", "--heads", "4", "--kv-heads", "2", "--vocab", "23", "--seed", "4", "--dtype", "bf16")
        run_cli(me, "make-adapter", "--model", model, "--out", ad, "--rank", "4", "--alpha", "8", "--seed", "7",
                "--targets", "v_proj,q_proj,up_proj", "--b-scale", "0.2")
        with open(os.path.join(ad, "adapter_config.json")) as f:
            cfg = json.load(f)
        want = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 4, "lora_alpha": 8.0, "lora_dropout": 0.0,
                "bias": "none", "use_rslora": False, "fan_in_fan_out": False, "init_lora_weights": True,
                "modules_to_save": None, "layers_to_transform": None, "use_dora": False, "base_model_name_or_path": model}
        assert all(cfg[k] == v for k, v in want.items()), f"adapter_config.json: {cfg}"
        assert cfg["target_modules"] == ["q_proj", "v_proj", "up_proj"], cfg["target_modules"]
        spec, weights = qwen2_ref.load_model(model)
        stored = qwen2_ref.read_safetensors(os.path.join(ad, "adapter_model.safetensors"))
        assert len(stored) == 2 * 3 * spec.layers and all(dt == "F32" for dt, _ in stored.values())
        a = stored["base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight"][1]  # [4, 16]
        assert a.shape == (4, 16) and 0 < a.abs().max().item() <= 1 / 4, "A outside U(-1/sqrt(in), 1/sqrt(in))"
        assert stored["base_model.model.model.layers.0.mlp.up_proj.lora_B.weight"][1].shape == (24, 4)
        adapter = load_adapter(ad, spec)
        batch_obj = {"promptIds": [[1, 2], [3]], "completionIds": [[4, 5, 6], [7], [8, 9], [10, 11, 12]],
                     "rewards": [1, 0, 0.25, 1], "groupSize": 2, "lossType": "grpo", "epsilon": 0.2, "beta": 0.1,
                     "temperature": 0.9}
        with open(os.path.join(d, "batch.json"), "w") as f:
            json.dump(batch_obj, f)
        run_cli(me, "loss-grads", "--model", model, "--adapter", ad, "--batch", os.path.join(d, "batch.json"),
                "--out", os.path.join(d, "out.json"))
        with open(os.path.join(d, "out.json")) as f:
            got = json.load(f)
        result, grads = loss_and_grads(spec, weights, adapter, parse_batch(batch_obj, spec.vocab))
        assert got["loss"] == float(result.loss) and list(got["grads"]) == list(grads), "CLI output differs"
        assert all(got["grads"][n] == g.flatten().tolist() for n, g in grads.items()), "CLI grads differ"
        assert [len(r) for r in got["logps"]] == [3, 1, 2, 3] and len(got["advantages"]) == 4
        assert set(got) == {"loss", "grads", "logps", "advantages", "clipFraction", "kl"}
    return "make-model (bf16) -> make-adapter (PEFT config, F32 names, A bound) -> loss-grads CLI == in-process"


def cmd_self_test(_: argparse.Namespace) -> None:
    torch.manual_seed(0)
    checks: List[Tuple[str, Callable[[], str]]] = [
        ("B = 0 is the base model", check_zero_b_is_base),
        ("merged == unmerged", check_merged_equals_unmerged),
        ("log-probs by hand", check_logps_by_hand),
        ("advantages by hand", check_advantages_by_hand),
        ("loss by hand", check_loss_by_hand),
        ("grads through merged weights", check_grads_through_merged),
        ("finite differences", check_finite_differences),
        ("equal rewards: zero gradient", check_equal_rewards_zero_grad),
        ("kl at the base model", check_kl_vanishes_at_base),
        ("batch forms and dtypes", check_batch_forms),
        ("sft: mean NLL", check_sft),
        ("full-parameter finite differences", check_full_finite_differences),
        ("cli round trip", check_cli_round_trip),
    ]
    failed = 0
    for name, fn in checks:
        try:
            print(f"ok    {name}: {fn()}", flush=True)
        except Exception:  # report every check, then fail
            failed += 1
            print(f"FAIL  {name}:\n{traceback.format_exc()}", flush=True)
    print(f"{len(checks) - failed}/{len(checks)} self-checks passed (torch {torch.__version__})")
    if failed:
        raise SystemExit(1)


# ================================================================================================
# CLI
# ================================================================================================


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="grpo_ref.py", description="Independent PyTorch reference for LoRA-GRPO loss and gradients.")
    sub = parser.add_subparsers(dest="command", required=True)

    mk = sub.add_parser("make-adapter", help="write a PEFT LoRA adapter folder for a model")
    mk.add_argument("--model", required=True)
    mk.add_argument("--out", required=True)
    mk.add_argument("--rank", type=int, required=True)
    mk.add_argument("--alpha", type=float, required=True)
    mk.add_argument("--targets", default=",".join(ALL_TARGETS))
    mk.add_argument("--rslora", action="store_true", help="scale alpha / sqrt(r) instead of alpha / r")
    mk.add_argument("--seed", type=int, default=0)
    mk.add_argument("--b-scale", type=float, default=0.0, help="B ~ N(0, F^2) instead of PEFT's zeros (tests)")
    mk.set_defaults(fn=cmd_make_adapter)

    lg = sub.add_parser("loss-grads", help="TRL GRPO loss and LoRA (or, with --full, every weight's) gradients for a batch")
    lg.add_argument("--model", required=True)
    lg.add_argument("--adapter", help="PEFT adapter folder: gradients of its lora_A / lora_B")
    lg.add_argument("--full", action="store_true", help="full-parameter: gradients of every base weight (HF names)")
    lg.add_argument("--batch", required=True, help="batch JSON (camelCase, see the header)")
    lg.add_argument("--out", required=True, help="result JSON")
    lg.add_argument("--dtype", choices=sorted(DTYPES), default="f64")
    lg.set_defaults(fn=cmd_loss_grads)

    st = sub.add_parser("self-test", help="check this reference against independent formulations")
    st.set_defaults(fn=cmd_self_test)

    args = parser.parse_args(argv)
    if "OMP_NUM_THREADS" not in os.environ:  # tiny models: more threads only add overhead
        torch.set_num_threads(min(4, max(1, len(os.sched_getaffinity(0)))))
    try:
        args.fn(args)
    except (ValueError, FileNotFoundError, KeyError, json.JSONDecodeError) as e:
        print(f"grpo_ref.py {args.command}: error: {e}", file=sys.stderr)
        raise SystemExit(2)


if __name__ == "__main__":
    main()
