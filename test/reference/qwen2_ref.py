#!/usr/bin/python3
"""qwen2_ref.py -- the independent numerical reference for motif-native's forward pass.

What it is
    A small, readable PyTorch implementation of HuggingFace transformers' Qwen2ForCausalLM and
    LlamaForCausalLM forward pass (inference, no KV cache), written from the transformers semantics and
    not from motif-native's C++ code. The engine's logits are tested against the logits this script
    computes. It is a spec first: one function per layer, shapes in comments, no cleverness.
    It also writes random HuggingFace model folders (config.json + safetensors, single or sharded) for
    the tests, and carries its own safetensors reader/writer (no `transformers`, no `safetensors`).

How to run it (Debian's PyTorch 1.13 CPU: apt-get install python3-torch; use /usr/bin/python3)
    /usr/bin/python3 test/reference/qwen2_ref.py make-model --out DIR --arch qwen2|llama \\
        --hidden C --intermediate I --layers L --heads H --kv-heads Hkv [--head-dim D] --vocab V \\
        [--tie] [--dtype f32|bf16|f16] [--shards N] [--seed S] [--rope-theta F] [--rope-scaling JSON] \\
        [--attention-bias] [--mlp-bias] [--rms-eps F] [--max-pos N] [--scale F]
    /usr/bin/python3 test/reference/qwen2_ref.py forward --model DIR --tokens FILE --seq-lens a,b,c \\
        --out FILE [--dtype-compute f64|f32]
    /usr/bin/python3 test/reference/qwen2_ref.py self-test

    forward: FILE holds raw little-endian int32 token ids, the sequences concatenated; --seq-lens gives
    their lengths. Every sequence is independent: it starts at position 0 and attends causally only to
    itself. The output is raw little-endian float32 logits, [sum(seq-lens) x vocab], row-major.

Semantics followed (transformers' modeling_qwen2.py / modeling_llama.py / modeling_rope_utils.py)
    h = embed_tokens[ids]
    per layer:  h = h + o_proj(attn(rope(q_proj(n)), rope(k_proj(n)), v_proj(n)))   n = input_layernorm(h)
                h = h + down_proj(silu(gate_proj(n)) * up_proj(n))                    n = post_attention_layernorm(h)
    logits = lm_head(norm(h))          (lm_head = embed_tokens when tie_word_embeddings)
    RMSNorm(x) = w * (x * rsqrt(mean(x^2) + eps)), computed in the compute dtype (f64 by default; f32 with
    --dtype-compute f32, which is what HF does for 16-bit models).
    RoPE: HF "rotate half" layout (dimension i pairs with i + D/2); inv_freq[i] = 1 / theta^(2i/D) built in
    float32 exactly as HF builds its buffer, then "linear" (inv_freq / factor) or "llama3" rope_scaling;
    angles position * inv_freq and their cos/sin are then taken in the compute dtype (HF: float32).
    Attention: scores = q k^T * D^-0.5, causal mask, softmax, GQA: query head j reads kv head
    j // (H / Hkv). Qwen2: q/k/v have a bias, o_proj has none, the MLP has none. Llama: attention_bias
    puts a bias on q, k, v and o; mlp_bias on gate, up and down.
    Weights are read from bf16 / f16 / f32 and widened (exactly) to the compute dtype.
"""

from __future__ import annotations

import argparse
import cmath
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

try:
    import numpy as np
    import torch
except ImportError as e:  # e.g. a pyenv/venv python3 without Debian's python3-torch
    raise SystemExit(f"qwen2_ref.py: {e}; run it with /usr/bin/python3 after `apt-get install -y python3-torch`")

if sys.byteorder != "little":  # the raw files are little-endian; numpy views below assume a little host
    raise SystemExit("qwen2_ref.py: a little-endian host is required")

# ================================================================================================
# safetensors: an 8-byte little-endian header length N, N bytes of JSON header, then the raw data.
# header: {"__metadata__": {...}, name: {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}}
# with offsets relative to the first byte after the header.
# ================================================================================================

# safetensors dtype -> (numpy little-endian storage type, bytes per element)
ST_DTYPES: Dict[str, Tuple[str, int]] = {"F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<u2", 2)}
CLI_DTYPE_TO_ST = {"f32": "F32", "bf16": "BF16", "f16": "F16"}
ST_TO_TORCH_DTYPE_NAME = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}


def bf16_bits_from_f32(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (uint16), rounding to nearest, ties to even (finite inputs)."""
    bits = np.ascontiguousarray(x, dtype="<f4").view("<u4").astype(np.uint64)
    round_bias = 0x7FFF + ((bits >> 16) & 1)
    return ((bits + round_bias) >> 16).astype("<u2")


def f32_from_bf16_bits(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) -> float32: the bf16 bits are the top half of the f32 bits."""
    return (bits.astype("<u4") << 16).view("<f4")


def encode_tensor(t: torch.Tensor, st_dtype: str) -> bytes:
    """A float tensor -> the raw little-endian bytes of `st_dtype` (rounding to nearest even)."""
    a = t.detach().to(torch.float32).contiguous().numpy()
    if st_dtype == "F32":
        return a.astype("<f4").tobytes()
    if st_dtype == "F16":
        return a.astype("<f2").tobytes()
    if st_dtype == "BF16":
        return bf16_bits_from_f32(a).tobytes()
    raise ValueError(f"unsupported dtype {st_dtype}")


def decode_tensor(raw: bytes, st_dtype: str, shape: List[int]) -> torch.Tensor:
    """Raw little-endian bytes -> a float32 torch tensor of `shape` (exact for all three dtypes)."""
    np_type, _ = ST_DTYPES[st_dtype]
    a = np.frombuffer(raw, dtype=np_type)
    if st_dtype == "BF16":
        a = f32_from_bf16_bits(a)
    return torch.from_numpy(a.astype(np.float32)).reshape(shape)


def write_safetensors(path: str, tensors: "OrderedDict[str, Tuple[str, torch.Tensor]]") -> int:
    """Write {name: (st_dtype, tensor)} to `path`, tensors sorted by name (as the safetensors library
    does for a single dtype). Returns the number of data bytes (the index.json "total_size" share)."""
    header: Dict[str, object] = {"__metadata__": {"format": "pt"}}
    blobs: List[bytes] = []
    offset = 0
    for name in sorted(tensors):
        st_dtype, t = tensors[name]
        blob = encode_tensor(t, st_dtype)
        header[name] = {"dtype": st_dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * ((8 - len(header_bytes) % 8) % 8)  # pad so the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for blob in blobs:
            f.write(blob)
    return offset


def read_safetensors(path: str) -> "OrderedDict[str, Tuple[str, torch.Tensor]]":
    """Read a safetensors file -> {name: (st_dtype, float32 tensor)}. Rejects anything malformed."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: file is {len(data)} bytes, shorter than the 8-byte header length")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > len(data) - 8:
        raise ValueError(f"{path}: header length {header_len} runs past the end of the file ({len(data)} bytes)")
    try:
        header = json.loads(data[8 : 8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: header is not valid JSON ({e})") from e
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header is not a JSON object")
    data_start = 8 + header_len
    data_len = len(data) - data_start
    out: "OrderedDict[str, Tuple[str, torch.Tensor]]" = OrderedDict()
    spans: List[Tuple[int, int, str]] = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        st_dtype = info.get("dtype")
        if st_dtype not in ST_DTYPES:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {st_dtype!r} (expected F32, F16 or BF16)")
        shape = info.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ValueError(f"{path}: tensor {name}: bad shape {shape!r}")
        begin, end = info.get("data_offsets", [None, None])
        numel = math.prod(shape)
        nbytes = numel * ST_DTYPES[st_dtype][1]
        if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end <= data_len):
            raise ValueError(f"{path}: tensor {name}: data_offsets {[begin, end]} outside the data ({data_len} bytes)")
        if end - begin != nbytes:
            raise ValueError(f"{path}: tensor {name}: {end - begin} bytes for shape {shape} {st_dtype} ({nbytes} expected)")
        spans.append((begin, end, name))
        out[name] = (st_dtype, decode_tensor(data[data_start + begin : data_start + end], st_dtype, shape))
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise ValueError(f"{path}: tensors {n0} and {n1} overlap")
    return out


def read_model_weights(model_dir: str) -> "OrderedDict[str, Tuple[str, torch.Tensor]]":
    """All tensors of a HF folder: model.safetensors, or the shards named by model.safetensors.index.json."""
    index_path = os.path.join(model_dir, "model.safetensors.index.json")
    single_path = os.path.join(model_dir, "model.safetensors")
    if os.path.exists(index_path):
        with open(index_path) as f:
            weight_map: Dict[str, str] = json.load(f)["weight_map"]
        out: "OrderedDict[str, Tuple[str, torch.Tensor]]" = OrderedDict()
        for shard in sorted(set(weight_map.values())):
            for name, value in read_safetensors(os.path.join(model_dir, shard)).items():
                if weight_map.get(name) != shard:
                    raise ValueError(f"{shard}: tensor {name} is not mapped to this shard by the index")
                out[name] = value
        missing = sorted(set(weight_map) - set(out))
        if missing:
            raise ValueError(f"{index_path}: tensors listed but not found in their shard: {missing}")
        return out
    if os.path.exists(single_path):
        return read_safetensors(single_path)
    raise FileNotFoundError(f"{model_dir}: neither model.safetensors nor model.safetensors.index.json")


# ================================================================================================
# config.json -> ModelSpec, and the tensor names/shapes HF expects for it.
# ================================================================================================

ARCHITECTURES = {"qwen2": "Qwen2ForCausalLM", "llama": "LlamaForCausalLM"}


@dataclass
class ModelSpec:
    arch: str  # "qwen2" | "llama"
    hidden: int  # C
    intermediate: int  # I
    layers: int  # L
    heads: int  # H
    kv_heads: int  # Hkv
    head_dim: int  # D
    vocab: int  # V
    rms_eps: float
    rope_theta: float
    rope_scaling: Optional[dict]
    tie: bool
    qkv_bias: bool
    o_bias: bool
    mlp_bias: bool


def spec_from_config(cfg: dict) -> ModelSpec:
    archs = cfg.get("architectures") or []
    arch = {"Qwen2ForCausalLM": "qwen2", "LlamaForCausalLM": "llama"}.get(archs[0] if archs else "")
    if arch is None:
        raise ValueError(f"config.json: unsupported architectures {archs!r}")
    for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size"):
        if not isinstance(cfg.get(key), int):
            raise ValueError(f"config.json: missing or non-integer {key}")
    if cfg.get("hidden_act", "silu") != "silu":
        raise ValueError(f"config.json: hidden_act {cfg['hidden_act']!r} (only silu is supported)")
    if cfg.get("use_sliding_window", False):
        raise ValueError("config.json: use_sliding_window=true is not supported by this reference")
    heads = cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads") or heads  # HF: None means multi-head attention
    if heads % kv_heads != 0:
        raise ValueError(f"config.json: num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}")
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // heads  # HF: head_dim when given
    attention_bias = bool(cfg.get("attention_bias", False))
    return ModelSpec(
        arch=arch,
        hidden=cfg["hidden_size"],
        intermediate=cfg["intermediate_size"],
        layers=cfg["num_hidden_layers"],
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab=cfg["vocab_size"],
        rms_eps=float(cfg.get("rms_norm_eps", 1e-6)),
        rope_theta=float(cfg.get("rope_theta", 10000.0)),
        rope_scaling=normalize_rope_scaling(cfg.get("rope_scaling")),
        tie=bool(cfg.get("tie_word_embeddings", False)),
        qkv_bias=True if arch == "qwen2" else attention_bias,
        o_bias=False if arch == "qwen2" else attention_bias,
        mlp_bias=False if arch == "qwen2" else bool(cfg.get("mlp_bias", False)),
    )


def normalize_rope_scaling(rs: Optional[dict]) -> Optional[dict]:
    """None | {"rope_type"/"type": "default"|"linear"|"llama3", ...} -> None or a dict with "rope_type"."""
    if rs is None:
        return None
    if not isinstance(rs, dict):
        raise ValueError(f"config.json: rope_scaling must be an object or null, got {rs!r}")
    rope_type = rs.get("rope_type", rs.get("type"))  # HF accepts the legacy "type" key
    if rope_type == "default":
        return None
    if rope_type == "linear":
        return {"rope_type": "linear", "factor": float(rs["factor"])}
    if rope_type == "llama3":
        keys = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
        missing = [k for k in keys if k not in rs]
        if missing:
            raise ValueError(f"config.json: llama3 rope_scaling lacks {missing}")
        return {"rope_type": "llama3", **{k: rs[k] for k in keys}}
    raise ValueError(f"config.json: rope_scaling type {rope_type!r} is not supported (default, linear, llama3)")


def expected_shapes(spec: ModelSpec) -> "OrderedDict[str, Tuple[int, ...]]":
    """HF tensor name -> shape, in the module order of HF's state_dict."""
    C, I, V = spec.hidden, spec.intermediate, spec.vocab
    qdim, kvdim = spec.heads * spec.head_dim, spec.kv_heads * spec.head_dim
    shapes: "OrderedDict[str, Tuple[int, ...]]" = OrderedDict()
    shapes["model.embed_tokens.weight"] = (V, C)
    for i in range(spec.layers):
        p = f"model.layers.{i}."
        for proj, out_dim in (("q_proj", qdim), ("k_proj", kvdim), ("v_proj", kvdim)):
            shapes[p + f"self_attn.{proj}.weight"] = (out_dim, C)
            if spec.qkv_bias:
                shapes[p + f"self_attn.{proj}.bias"] = (out_dim,)
        shapes[p + "self_attn.o_proj.weight"] = (C, qdim)
        if spec.o_bias:
            shapes[p + "self_attn.o_proj.bias"] = (C,)
        for proj, shape in (("gate_proj", (I, C)), ("up_proj", (I, C)), ("down_proj", (C, I))):
            shapes[p + f"mlp.{proj}.weight"] = shape
            if spec.mlp_bias:
                shapes[p + f"mlp.{proj}.bias"] = (shape[0],)
        shapes[p + "input_layernorm.weight"] = (C,)
        shapes[p + "post_attention_layernorm.weight"] = (C,)
    shapes["model.norm.weight"] = (C,)
    if not spec.tie:
        shapes["lm_head.weight"] = (V, C)
    return shapes


def load_model(model_dir: str) -> Tuple[ModelSpec, Dict[str, torch.Tensor]]:
    """A HF folder -> (spec, {name: float32 tensor}); every expected tensor present with its shape, and
    nothing else (a tied model must not also carry lm_head.weight)."""
    with open(os.path.join(model_dir, "config.json")) as f:
        spec = spec_from_config(json.load(f))
    stored = read_model_weights(model_dir)
    want = expected_shapes(spec)
    for name, shape in want.items():
        if name not in stored:
            raise ValueError(f"{model_dir}: missing tensor {name}")
        if tuple(stored[name][1].shape) != shape:
            raise ValueError(f"{model_dir}: tensor {name} has shape {list(stored[name][1].shape)}, expected {list(shape)}")
    extra = sorted(set(stored) - set(want))
    if extra:
        raise ValueError(f"{model_dir}: unexpected tensors for this config: {extra}")
    return spec, {name: stored[name][1] for name in want}


# ================================================================================================
# RoPE
# ================================================================================================


def rope_inv_freq(spec: ModelSpec) -> torch.Tensor:
    """[D/2] float32 inverse frequencies, built as HF builds its `inv_freq` buffer (in float32)."""
    D = spec.head_dim
    inv_freq = 1.0 / (spec.rope_theta ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))  # [D/2] f32
    rs = spec.rope_scaling
    if rs is None:
        return inv_freq
    if rs["rope_type"] == "linear":  # HF _compute_linear_scaling_rope_parameters
        return inv_freq / rs["factor"]
    return llama3_inv_freq(inv_freq, rs)


def llama3_inv_freq(inv_freq: torch.Tensor, rs: dict) -> torch.Tensor:
    """HF _compute_llama3_parameters: keep high frequencies, divide low ones by `factor`, blend between."""
    factor = rs["factor"]
    low_freq_factor = rs["low_freq_factor"]
    high_freq_factor = rs["high_freq_factor"]
    old_context_len = rs["original_max_position_embeddings"]
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = 2 * math.pi / inv_freq  # [D/2]
    scaled = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium, smoothed, scaled)


def rope_cos_sin(inv_freq: torch.Tensor, T: int, dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
    """cos, sin: [T, D] for positions 0..T-1; the D/2 angles are repeated twice (rotate-half layout)."""
    positions = torch.arange(T, dtype=dtype)  # [T]
    angles = positions[:, None] * inv_freq.to(dtype)[None, :]  # [T, D/2]
    emb = torch.cat((angles, angles), dim=-1)  # [T, D]
    return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """[..., D] -> [..., D]: (x1, x2) -> (-x2, x1) with x1 = x[..., :D/2], x2 = x[..., D/2:]."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: [heads, T, D]; cos, sin: [T, D] -> [heads, T, D]."""
    return x * cos + rotate_half(x) * sin


# ================================================================================================
# Layers (x is one sequence: [T, C])
# ================================================================================================


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x: [T, C], weight: [C] -> [T, C]."""
    variance = x.pow(2).mean(-1, keepdim=True)  # [T, 1]
    return weight * (x * torch.rsqrt(variance + eps))


def linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """x: [T, in], weight: [out, in], bias: [out] or None -> [T, out]."""
    y = x @ weight.T
    return y if bias is None else y + bias


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """q: [H, T, D], k, v: [Hkv, T, D] -> [H, T, D]. Query head j reads kv head j // (H / Hkv)."""
    H, T, D = q.shape
    group = H // k.shape[0]
    kv_head = torch.arange(H) // group  # [H]
    k, v = k[kv_head], v[kv_head]  # [H, T, D]
    scores = (q @ k.transpose(1, 2)) * D**-0.5  # [H, T, T]
    future = torch.ones(T, T, dtype=torch.bool).triu(diagonal=1)  # key position > query position
    scores = scores.masked_fill(future, float("-inf"))
    probs = torch.softmax(scores, dim=-1)  # [H, T, T]
    return probs @ v  # [H, T, D]


def self_attention(x: torch.Tensor, p: Dict[str, torch.Tensor], spec: ModelSpec, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: [T, C] (already normed) -> [T, C]."""
    T = x.shape[0]
    H, Hkv, D = spec.heads, spec.kv_heads, spec.head_dim
    q = linear(x, p["self_attn.q_proj.weight"], p.get("self_attn.q_proj.bias"))  # [T, H*D]
    k = linear(x, p["self_attn.k_proj.weight"], p.get("self_attn.k_proj.bias"))  # [T, Hkv*D]
    v = linear(x, p["self_attn.v_proj.weight"], p.get("self_attn.v_proj.bias"))  # [T, Hkv*D]
    q = q.view(T, H, D).transpose(0, 1)  # [H, T, D]
    k = k.view(T, Hkv, D).transpose(0, 1)  # [Hkv, T, D]
    v = v.view(T, Hkv, D).transpose(0, 1)  # [Hkv, T, D]
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    out = causal_attention(q, k, v)  # [H, T, D]
    out = out.transpose(0, 1).reshape(T, H * D)  # [T, H*D]
    return linear(out, p["self_attn.o_proj.weight"], p.get("self_attn.o_proj.bias"))  # [T, C]


def swiglu_mlp(x: torch.Tensor, p: Dict[str, torch.Tensor]) -> torch.Tensor:
    """x: [T, C] (already normed) -> [T, C]: down(silu(gate(x)) * up(x))."""
    gate = linear(x, p["mlp.gate_proj.weight"], p.get("mlp.gate_proj.bias"))  # [T, I]
    up = linear(x, p["mlp.up_proj.weight"], p.get("mlp.up_proj.bias"))  # [T, I]
    return linear(torch.nn.functional.silu(gate) * up, p["mlp.down_proj.weight"], p.get("mlp.down_proj.bias"))


def decoder_layer(h: torch.Tensor, p: Dict[str, torch.Tensor], spec: ModelSpec, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """h: [T, C] residual stream -> [T, C]."""
    h = h + self_attention(rms_norm(h, p["input_layernorm.weight"], spec.rms_eps), p, spec, cos, sin)
    h = h + swiglu_mlp(rms_norm(h, p["post_attention_layernorm.weight"], spec.rms_eps), p)
    return h


def layer_params(weights: Dict[str, torch.Tensor], i: int, dtype: torch.dtype) -> Dict[str, torch.Tensor]:
    """Layer i's tensors, keyed without the "model.layers.{i}." prefix, widened to `dtype`."""
    prefix = f"model.layers.{i}."
    return {n[len(prefix) :]: w.to(dtype) for n, w in weights.items() if n.startswith(prefix)}


def forward_sequence(spec: ModelSpec, weights: Dict[str, torch.Tensor], tokens: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """tokens: [T] int64, one sequence starting at position 0 -> logits [T, V] in `dtype`."""
    T = tokens.shape[0]
    cos, sin = rope_cos_sin(rope_inv_freq(spec), T, dtype)  # [T, D] each
    h = weights["model.embed_tokens.weight"][tokens].to(dtype)  # [T, C]
    for i in range(spec.layers):
        h = decoder_layer(h, layer_params(weights, i, dtype), spec, cos, sin)
    h = rms_norm(h, weights["model.norm.weight"].to(dtype), spec.rms_eps)  # [T, C]
    lm_head = weights["model.embed_tokens.weight" if spec.tie else "lm_head.weight"].to(dtype)  # [V, C]
    return h @ lm_head.T  # [T, V]


def forward_batch(spec: ModelSpec, weights: Dict[str, torch.Tensor], seqs: List[torch.Tensor], dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Independent sequences -> their logits concatenated: [sum T, V]."""
    with torch.no_grad():
        return torch.cat([forward_sequence(spec, weights, s, dtype) for s in seqs], dim=0)


# ================================================================================================
# make-model: a random HF folder
# ================================================================================================


def make_config(spec: ModelSpec, args_head_dim: Optional[int], st_dtype: str, max_pos: int, raw_rope_scaling: Optional[dict]) -> dict:
    """config.json as transformers' save_pretrained writes it for this architecture (sort_keys, indent 2)."""
    cfg = {
        "architectures": [ARCHITECTURES[spec.arch]],
        "attention_dropout": 0.0,
        "hidden_act": "silu",
        "hidden_size": spec.hidden,
        "initializer_range": 0.02,
        "intermediate_size": spec.intermediate,
        "max_position_embeddings": max_pos,
        "model_type": spec.arch,
        "num_attention_heads": spec.heads,
        "num_hidden_layers": spec.layers,
        "num_key_value_heads": spec.kv_heads,
        "rms_norm_eps": spec.rms_eps,
        "rope_scaling": raw_rope_scaling,
        "rope_theta": spec.rope_theta,
        "tie_word_embeddings": spec.tie,
        "torch_dtype": ST_TO_TORCH_DTYPE_NAME[st_dtype],
        "transformers_version": "4.46.0",
        "use_cache": True,
        "vocab_size": spec.vocab,
    }
    if spec.arch == "qwen2":
        cfg.update(
            {
                "bos_token_id": max(spec.vocab - 2, 0),
                "eos_token_id": spec.vocab - 1,
                "max_window_layers": spec.layers,
                "sliding_window": max_pos,  # present in real Qwen2.5 configs; unused (use_sliding_window false)
                "use_sliding_window": False,
            }
        )
    else:
        cfg.update(
            {
                "attention_bias": spec.o_bias,
                "bos_token_id": min(1, spec.vocab - 1),
                "eos_token_id": min(2, spec.vocab - 1),
                "mlp_bias": spec.mlp_bias,
                "pretraining_tp": 1,
            }
        )
    if args_head_dim is not None:
        cfg["head_dim"] = args_head_dim
    return cfg


def random_weights(spec: ModelSpec, seed: int, scale: float) -> "OrderedDict[str, torch.Tensor]":
    """Deterministic float32 weights from `seed`, scaled so activations stay O(1) and logits are spread
    (std about 1): linears N(0, scale^2 / fan_in), embeddings N(0, scale^2 / C), norm weights 1 + N(0, 0.1^2),
    biases N(0, (0.2 scale)^2)."""
    gen = torch.Generator().manual_seed(seed)
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for name, shape in expected_shapes(spec).items():
        noise = torch.randn(shape, generator=gen, dtype=torch.float32)
        if name.endswith("norm.weight"):
            out[name] = 1.0 + 0.1 * noise
        elif name.endswith(".bias"):
            out[name] = 0.2 * scale * noise
        elif name in ("model.embed_tokens.weight", "lm_head.weight"):
            out[name] = noise * (scale / math.sqrt(spec.hidden))
        else:
            out[name] = noise * (scale / math.sqrt(shape[1]))
    return out


def write_model(out_dir: str, cfg: dict, weights: "OrderedDict[str, torch.Tensor]", st_dtype: str, shards: int) -> None:
    """config.json + model.safetensors, or N shards (module order split by bytes) + the index."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        f.write(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    names = list(weights)
    if shards <= 1:
        write_safetensors(os.path.join(out_dir, "model.safetensors"), OrderedDict((n, (st_dtype, weights[n])) for n in names))
        return
    if shards > len(names):
        raise ValueError(f"--shards {shards}: the model has only {len(names)} tensors")
    elem = ST_DTYPES[st_dtype][1]
    sizes = [weights[n].numel() * elem for n in names]
    total = sum(sizes)
    groups: List[List[str]] = []
    i = 0
    for s in range(shards):  # each shard takes >= 1 tensor, then fills up to (s+1)/N of the bytes
        group = [names[i]]
        done = sum(sizes[: i + 1])
        i += 1
        while i < len(names) and len(names) - i > shards - s - 1:
            if s < shards - 1 and done + sizes[i] > total * (s + 1) / shards:
                break
            done += sizes[i]
            group.append(names[i])
            i += 1
        groups.append(group)
    assert i == len(names)
    weight_map: Dict[str, str] = {}
    total_size = 0
    for s, group in enumerate(groups):
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        total_size += write_safetensors(os.path.join(out_dir, fname), OrderedDict((n, (st_dtype, weights[n])) for n in group))
        weight_map.update({n: fname for n in group})
    index = {"metadata": {"total_size": total_size}, "weight_map": weight_map}
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")


def cmd_make_model(args: argparse.Namespace) -> None:
    raw_rope_scaling = None if args.rope_scaling in (None, "", "null", "none") else json.loads(args.rope_scaling)
    cfg_for_spec = {
        "architectures": [ARCHITECTURES[args.arch]],
        "hidden_size": args.hidden,
        "intermediate_size": args.intermediate,
        "num_hidden_layers": args.layers,
        "num_attention_heads": args.heads,
        "num_key_value_heads": args.kv_heads,
        "head_dim": args.head_dim,
        "vocab_size": args.vocab,
        "rms_norm_eps": args.rms_eps if args.rms_eps is not None else (1e-6 if args.arch == "qwen2" else 1e-5),
        "rope_theta": args.rope_theta,
        "rope_scaling": raw_rope_scaling,
        "tie_word_embeddings": args.tie,
        "attention_bias": args.attention_bias,
        "mlp_bias": args.mlp_bias,
    }
    if args.arch == "qwen2" and (args.attention_bias or args.mlp_bias):
        raise ValueError("--attention-bias / --mlp-bias are Llama options (Qwen2 always has q/k/v bias and no other)")
    if args.head_dim is not None and args.head_dim % 2:
        raise ValueError("--head-dim must be even (RoPE rotates pairs)")
    spec = spec_from_config(cfg_for_spec)
    if spec.head_dim % 2:
        raise ValueError(f"head_dim {spec.head_dim} must be even (RoPE rotates pairs)")
    st_dtype = CLI_DTYPE_TO_ST[args.dtype]
    cfg = make_config(spec, args.head_dim, st_dtype, args.max_pos, raw_rope_scaling)
    write_model(args.out, cfg, random_weights(spec, args.seed, args.scale), st_dtype, args.shards)


# ================================================================================================
# forward: token file in, logits file out
# ================================================================================================


def read_token_file(path: str, seq_lens: List[int], vocab: int) -> List[torch.Tensor]:
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) % 4:
        raise ValueError(f"{path}: {len(raw)} bytes is not a whole number of int32 tokens")
    ids = np.frombuffer(raw, dtype="<i4").astype(np.int64)
    if any(n <= 0 for n in seq_lens):
        raise ValueError(f"--seq-lens {seq_lens}: every length must be positive")
    if sum(seq_lens) != ids.size:
        raise ValueError(f"{path}: {ids.size} tokens but --seq-lens sums to {sum(seq_lens)}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab):
        raise ValueError(f"{path}: token ids must be in [0, {vocab}), found [{ids.min()}, {ids.max()}]")
    out, start = [], 0
    for n in seq_lens:
        out.append(torch.from_numpy(ids[start : start + n].copy()))
        start += n
    return out


def cmd_forward(args: argparse.Namespace) -> None:
    dtype = {"f64": torch.float64, "f32": torch.float32}[args.dtype_compute]
    spec, weights = load_model(args.model)
    seq_lens = [int(s) for s in args.seq_lens.split(",") if s.strip()]
    seqs = read_token_file(args.tokens, seq_lens, spec.vocab)
    logits = forward_batch(spec, weights, seqs, dtype)  # [sum T, V]
    with open(args.out, "wb") as f:
        f.write(logits.to(torch.float32).contiguous().numpy().astype("<f4").tobytes())


# ================================================================================================
# self-test: checks that do not rest on this file agreeing with itself
# ================================================================================================


def relative_l2(a: torch.Tensor, ref: torch.Tensor) -> float:
    a, ref = a.to(torch.float64), ref.to(torch.float64)
    return float((a - ref).norm() / ref.norm())


def naive_forward(spec: ModelSpec, weights: Dict[str, torch.Tensor], tokens: List[int]) -> List[List[float]]:
    """The whole model once more in plain Python floats (IEEE double) and loops, written from the math:
    RoPE as a complex rotation of (x[i] + i x[i + D/2]) by e^(i pos w_i), frequencies from the scalar
    llama3 rule of Meta's reference code, attention per query position and head, GQA by index."""
    C, H, Hkv, D = spec.hidden, spec.heads, spec.kv_heads, spec.head_dim
    W = {n: t.tolist() for n, t in weights.items()}

    def matvec(name: str, x: List[float]) -> List[float]:
        rows, bias = W[name + ".weight"], W.get(name + ".bias")
        return [sum(w * xi for w, xi in zip(row, x)) + (bias[o] if bias else 0.0) for o, row in enumerate(rows)]

    def rmsnorm(x: List[float], w: List[float]) -> List[float]:
        r = 1.0 / math.sqrt(sum(v * v for v in x) / len(x) + spec.rms_eps)
        return [wi * xi * r for wi, xi in zip(w, x)]

    freqs = [spec.rope_theta ** (-2.0 * i / D) for i in range(D // 2)]
    rs = spec.rope_scaling
    if rs is not None and rs["rope_type"] == "linear":
        freqs = [f / rs["factor"] for f in freqs]
    elif rs is not None:
        freqs = [llama3_scalar(f, rs) for f in freqs]

    def rope(vec: List[float], pos: int) -> List[float]:
        out = [0.0] * D
        for i in range(D // 2):
            z = complex(vec[i], vec[i + D // 2]) * cmath.exp(1j * pos * freqs[i])
            out[i], out[i + D // 2] = z.real, z.imag
        return out

    silu = lambda g: g / (1.0 + math.exp(-g))  # noqa: E731
    hs = [list(W["model.embed_tokens.weight"][t]) for t in tokens]  # T x [C]
    for layer in range(spec.layers):
        p = f"model.layers.{layer}."
        normed = [rmsnorm(h, W[p + "input_layernorm.weight"]) for h in hs]
        qs = [matvec(p + "self_attn.q_proj", x) for x in normed]
        ks = [matvec(p + "self_attn.k_proj", x) for x in normed]
        vs = [matvec(p + "self_attn.v_proj", x) for x in normed]
        qh = [[rope(q[j * D : (j + 1) * D], t) for j in range(H)] for t, q in enumerate(qs)]  # [T][H][D]
        kh = [[rope(k[j * D : (j + 1) * D], t) for j in range(Hkv)] for t, k in enumerate(ks)]  # [T][Hkv][D]
        vh = [[v[j * D : (j + 1) * D] for j in range(Hkv)] for v in vs]
        for t in range(len(hs)):
            concat: List[float] = []
            for j in range(H):
                g = j // (H // Hkv)
                scores = [sum(a * b for a, b in zip(qh[t][j], kh[u][g])) / math.sqrt(D) for u in range(t + 1)]
                m = max(scores)
                e = [math.exp(s - m) for s in scores]
                z = sum(e)
                concat += [sum(e[u] / z * vh[u][g][d] for u in range(t + 1)) for d in range(D)]
            attn = matvec(p + "self_attn.o_proj", concat)
            hs[t] = [a + b for a, b in zip(hs[t], attn)]
        for t in range(len(hs)):
            x = rmsnorm(hs[t], W[p + "post_attention_layernorm.weight"])
            act = [silu(g) * u for g, u in zip(matvec(p + "mlp.gate_proj", x), matvec(p + "mlp.up_proj", x))]
            hs[t] = [a + b for a, b in zip(hs[t], matvec(p + "mlp.down_proj", act))]
    head = W["model.embed_tokens.weight" if spec.tie else "lm_head.weight"]
    logits = []
    for h in hs:
        x = rmsnorm(h, W["model.norm.weight"])
        logits.append([sum(w * xi for w, xi in zip(row, x)) for row in head])
    return logits


def llama3_scalar(freq: float, rs: dict) -> float:
    """The llama3 rule for one frequency, as Meta's reference `apply_scaling` states it."""
    wavelen = 2 * math.pi / freq
    low_wavelen = rs["original_max_position_embeddings"] / rs["low_freq_factor"]
    high_wavelen = rs["original_max_position_embeddings"] / rs["high_freq_factor"]
    if wavelen < high_wavelen:
        return freq
    if wavelen > low_wavelen:
        return freq / rs["factor"]
    low, high = rs["low_freq_factor"], rs["high_freq_factor"]
    smooth = (rs["original_max_position_embeddings"] / wavelen - low) / (high - low)
    return (1 - smooth) * freq / rs["factor"] + smooth * freq


def tiny_spec(**overrides) -> ModelSpec:
    base = dict(arch="qwen2", hidden=12, intermediate=20, layers=2, heads=4, kv_heads=2, head_dim=6, vocab=23,
                rms_eps=1e-6, rope_theta=10000.0, rope_scaling=None, tie=False, qkv_bias=True, o_bias=False, mlp_bias=False)
    base.update(overrides)
    return ModelSpec(**base)


LLAMA3_TEST_SCALING = {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 8.0,
                       "original_max_position_embeddings": 256}


def check_safetensors_codec() -> str:
    x = torch.randn(1000, dtype=torch.float32) * 3
    x[:4] = torch.tensor([1.0, -2.5, 1.00390625, 1.01171875])  # exact, and two ties (round to even)
    ours = decode_tensor(encode_tensor(x, "BF16"), "BF16", [1000])
    theirs = x.to(torch.bfloat16).to(torch.float32)  # torch's own bf16 rounding
    assert torch.equal(ours, theirs), "bf16 encode/decode differs from torch.bfloat16"
    assert torch.equal(decode_tensor(encode_tensor(x, "F16"), "F16", [1000]), x.to(torch.float16).float()), "f16 codec"
    assert torch.equal(decode_tensor(encode_tensor(x, "F32"), "F32", [1000]), x), "f32 codec"
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.safetensors")
        tensors = OrderedDict([("b", ("BF16", x.view(10, 100))), ("a", ("F32", x[:6].view(2, 3))), ("c", ("F16", x[:5]))])
        write_safetensors(path, tensors)
        back = read_safetensors(path)
        with open(path, "rb") as f:
            raw = f.read()
        (n,) = struct.unpack("<Q", raw[:8])
        assert (8 + n) % 8 == 0, "data section not 8-byte aligned"
        for name, (dt, t) in tensors.items():
            assert back[name][0] == dt and torch.equal(back[name][1], decode_tensor(encode_tensor(t, dt), dt, list(t.shape)))
        bad_cases = {
            "truncated": raw[:-3],
            "header past end": struct.pack("<Q", len(raw)) + raw[8:],
            "unknown dtype": raw.replace(b'"F16"', b'"I16"'),
        }
        for what, blob in bad_cases.items():
            with open(path, "wb") as f:
                f.write(blob)
            try:
                read_safetensors(path)
            except ValueError:
                continue
            raise AssertionError(f"reader accepted a {what} file")
    return "bf16/f16/f32 codecs match torch's casts exactly; round trip; bad files rejected"


def check_rope_complex() -> str:
    spec = tiny_spec(head_dim=8, rope_theta=500.0)
    T, D = 9, spec.head_dim
    cos, sin = rope_cos_sin(rope_inv_freq(spec), T, torch.float64)
    x = torch.randn(3, T, D, dtype=torch.float64)
    ours = apply_rope(x, cos, sin)
    z = torch.complex(x[..., : D // 2], x[..., D // 2 :])  # [3, T, D/2]
    angle = torch.arange(T, dtype=torch.float64)[:, None] * rope_inv_freq(spec).double()[None, :]  # [T, D/2]
    rotated = z * torch.polar(torch.ones_like(angle), angle)
    theirs = torch.cat((rotated.real, rotated.imag), dim=-1)
    err = (ours - theirs).abs().max().item()
    assert err < 1e-12, f"rotate-half RoPE differs from the complex rotation by {err}"
    # relative position: <rope(q, m), rope(k, n)> depends only on m - n
    q, k = torch.randn(D, dtype=torch.float64), torch.randn(D, dtype=torch.float64)
    def dot(m: int, n: int) -> float:  # <rope(q, m), rope(k, n)>
        return float(apply_rope(q.view(1, 1, D), cos[m], sin[m]).flatten() @ apply_rope(k.view(1, 1, D), cos[n], sin[n]).flatten())

    assert abs(dot(5, 2) - dot(8, 5)) < 1e-12 and abs(dot(3, 3) - float(q @ k)) < 1e-12, "RoPE is not relative"
    return f"rotate-half == complex rotation (max err {err:.1e}); scores depend on m - n only"


def check_rope_scaling() -> str:
    spec = tiny_spec(head_dim=8, rope_scaling=LLAMA3_TEST_SCALING)
    ours = rope_inv_freq(spec).double()
    base = [spec.rope_theta ** (-2.0 * i / 8) for i in range(4)]
    theirs = torch.tensor([llama3_scalar(f, LLAMA3_TEST_SCALING) for f in base], dtype=torch.float64)
    err = ((ours - theirs).abs() / theirs).max().item()
    assert err < 1e-6, f"llama3 inv_freq differs from the scalar rule by {err} (relative)"
    default = rope_inv_freq(tiny_spec(head_dim=8)).double()  # the unscaled float32 frequencies
    regimes = {"high" if ours[i] == default[i] else "low" if ours[i] == default[i] / 4 else "medium" for i in range(4)}
    assert regimes == {"high", "medium", "low"}, f"test does not cover every llama3 regime: {regimes}"
    # linear: rope(x, pos) with factor f == default rope at pos / f
    lin = tiny_spec(head_dim=8, rope_scaling={"rope_type": "linear", "factor": 2.0})
    c1, s1 = rope_cos_sin(rope_inv_freq(lin), 10, torch.float64)
    inv = rope_inv_freq(tiny_spec(head_dim=8)).double()
    angles = (torch.arange(10, dtype=torch.float64) / 2.0)[:, None] * inv[None, :]
    err_lin = (c1 - torch.cat((angles, angles), -1).cos()).abs().max().item()
    assert err_lin < 1e-7, f"linear scaling differs from positions / factor by {err_lin}"
    return f"llama3 inv_freq == scalar rule (rel err {err:.1e}, all 3 regimes); linear == positions/factor"


def check_attention_loop() -> str:
    H, Hkv, T, D = 6, 2, 7, 5
    q = torch.randn(H, T, D, dtype=torch.float64)
    k = torch.randn(Hkv, T, D, dtype=torch.float64)
    v = torch.randn(Hkv, T, D, dtype=torch.float64)
    ours = causal_attention(q, k, v)
    worst = 0.0
    for j in range(H):
        g = j // (H // Hkv)
        for t in range(T):
            s = [float(q[j, t] @ k[g, u]) / math.sqrt(D) for u in range(t + 1)]
            e = [math.exp(x - max(s)) for x in s]
            out = sum(e[u] / sum(e) * v[g, u] for u in range(t + 1))
            worst = max(worst, (ours[j, t] - out).abs().max().item())
    assert worst < 1e-12, f"attention differs from the per-position loop by {worst}"
    return f"GQA causal attention == explicit per-position loop (max err {worst:.1e})"


def check_naive_model() -> str:
    cases = {
        "qwen2 GQA2 head_dim!=C/H untied": tiny_spec(),
        "llama llama3 biases tied": tiny_spec(arch="llama", heads=6, kv_heads=2, head_dim=4, tie=True, o_bias=True,
                                              mlp_bias=True, rope_scaling=LLAMA3_TEST_SCALING),
        "llama linear no-bias MHA": tiny_spec(arch="llama", heads=3, kv_heads=3, head_dim=4, qkv_bias=False, rope_theta=100.0,
                                              rope_scaling={"rope_type": "linear", "factor": 3.0}),
    }
    worst = []
    for i, (name, spec) in enumerate(cases.items()):
        weights = random_weights(spec, seed=100 + i, scale=1.0)
        tokens = [3, 17, 0, 22, 9, 9, 4][: 5 + i]
        ours = forward_sequence(spec, weights, torch.tensor(tokens))
        theirs = torch.tensor(naive_forward(spec, weights, tokens), dtype=torch.float64)
        err = relative_l2(ours, theirs)
        assert err < 1e-6, f"{name}: torch model vs naive loops, relative L2 {err}"
        worst.append(f"{name} {err:.1e}")
    return "torch model == plain-Python loop model: " + "; ".join(worst)


def check_gqa_equals_duplicated_mha() -> str:
    gqa = tiny_spec(heads=6, kv_heads=2, head_dim=4, hidden=16)
    weights = random_weights(gqa, seed=7, scale=1.0)
    mha = tiny_spec(heads=6, kv_heads=6, head_dim=4, hidden=16)
    dup = OrderedDict(weights)
    for i in range(gqa.layers):
        for proj in ("k_proj", "v_proj"):
            for kind in ("weight", "bias"):
                name = f"model.layers.{i}.self_attn.{proj}.{kind}"
                per_head = weights[name].view(gqa.kv_heads, gqa.head_dim, -1)  # [Hkv, D, C or 1]
                dup[name] = torch.cat([per_head[j // 3] for j in range(6)]).view(6 * 4, *weights[name].shape[1:])
    a = forward_sequence(gqa, weights, torch.tensor([1, 5, 2, 8, 13]))
    b = forward_sequence(mha, dup, torch.tensor([1, 5, 2, 8, 13]))
    err = relative_l2(a, b)
    assert err < 1e-12, f"GQA model differs from MHA with kv head j//3 copied to head j: {err}"
    return f"GQA(6q/2kv) == MHA with kv head j//3 copied into head j (rel {err:.1e})"


def check_zeroed_blocks() -> str:
    spec = tiny_spec(arch="llama", layers=1, o_bias=True, mlp_bias=True, tie=False)
    w = random_weights(spec, seed=3, scale=1.0)
    for name in ("self_attn.o_proj.weight", "self_attn.o_proj.bias", "mlp.down_proj.weight", "mlp.down_proj.bias"):
        w["model.layers.0." + name] = torch.zeros_like(w["model.layers.0." + name])
    tokens = torch.tensor([4, 0, 19, 4])
    e = w["model.embed_tokens.weight"][tokens].double()  # [T, C]
    normed = e / torch.sqrt((e * e).sum(-1, keepdim=True) / spec.hidden + spec.rms_eps) * w["model.norm.weight"].double()
    expected = torch.einsum("tc,vc->tv", normed, w["lm_head.weight"].double())
    err = relative_l2(forward_sequence(spec, w, tokens), expected)
    assert err < 1e-13, f"zeroed o_proj/down_proj: logits != norm(embed) @ lm_head^T ({err})"
    return f"zeroed attention/MLP outputs -> norm(embed) @ lm_head^T (rel {err:.1e})"


def run_cli(*argv: str) -> None:
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), *argv], capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"qwen2_ref.py {' '.join(argv)} failed:\n{proc.stderr}")


def check_cli_round_trip() -> str:
    with tempfile.TemporaryDirectory() as d:
        m1, m2 = os.path.join(d, "single"), os.path.join(d, "sharded")
        common = ["--arch", "llama", "--hidden", "24", "--intermediate", "40", "--layers", "2", "--heads", "6", "--kv-heads", "3",
                  "--head-dim", "6", "--vocab", "37", "--seed", "11", "--attention-bias", "--dtype", "bf16",
                  "--rope-scaling", json.dumps(LLAMA3_TEST_SCALING)]
        run_cli("make-model", "--out", m1, *common)
        run_cli("make-model", "--out", m2, *common, "--shards", "3")
        with open(os.path.join(m2, "model.safetensors.index.json")) as f:
            index = json.load(f)
        shard_files = sorted(set(index["weight_map"].values()))
        assert shard_files == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)], shard_files
        with open(os.path.join(m1, "config.json")) as f:
            cfg = json.load(f)
        assert cfg["architectures"] == ["LlamaForCausalLM"] and cfg["head_dim"] == 6 and cfg["torch_dtype"] == "bfloat16"
        spec1, w1 = load_model(m1)
        spec2, w2 = load_model(m2)
        assert spec1 == spec2 and all(torch.equal(w1[n], w2[n]) for n in w1), "sharded folder != single-file folder"
        assert index["metadata"]["total_size"] == sum(t.numel() * 2 for t in w2.values())
        # weights are exactly the bf16 rounding of the seeded float32 weights
        fresh = random_weights(spec1, 11, 1.0)
        assert all(torch.equal(w1[n], fresh[n].to(torch.bfloat16).float()) for n in w1), "stored bf16 != rounded weights"
        seqs = [[1, 2, 3, 4, 5, 6], [36, 0, 7], [9]]
        with open(os.path.join(d, "tok.i32"), "wb") as f:
            f.write(np.array(sum(seqs, []), dtype="<i4").tobytes())
        fwd = ["forward", "--model", m2, "--tokens", os.path.join(d, "tok.i32"), "--seq-lens", "6,3,1"]
        run_cli(*fwd, "--out", os.path.join(d, "out.f32"))
        run_cli(*fwd, "--out", os.path.join(d, "out32.f32"), "--dtype-compute", "f32")
        got = torch.from_numpy(np.fromfile(os.path.join(d, "out.f32"), dtype="<f4").copy()).view(10, 37)
        got32 = torch.from_numpy(np.fromfile(os.path.join(d, "out32.f32"), dtype="<f4").copy()).view(10, 37)
        # each sequence alone, and causality: a prefix's logits are the first rows of the full sequence's
        alone = torch.cat([forward_sequence(spec1, w1, torch.tensor(s)) for s in seqs]).float()
        prefix = forward_sequence(spec1, w1, torch.tensor(seqs[0][:4])).float()
        assert relative_l2(got, alone) < 1e-7, "batched CLI logits != each sequence alone"
        assert relative_l2(got[:4], prefix) < 1e-7, "logits depend on later tokens (causality)"
        err32 = relative_l2(got32, got)
        assert err32 < 1e-5, f"f32 compute differs from f64 by {err32}"
        spread = got.std().item()
        assert 0.3 < spread < 10 and len(set(got.argmax(-1).tolist())) > 1, f"degenerate logits (std {spread})"
    return (f"CLI make-model (single, 3 shards, bf16) + forward; batch == alone; causal; "
            f"f32 vs f64 rel {err32:.1e}; logits std {spread:.2f}")


def cmd_self_test(_: argparse.Namespace) -> None:
    torch.manual_seed(0)
    checks: List[Tuple[str, Callable[[], str]]] = [
        ("safetensors codec", check_safetensors_codec),
        ("rope vs complex", check_rope_complex),
        ("rope scaling", check_rope_scaling),
        ("attention vs loop", check_attention_loop),
        ("model vs naive loops", check_naive_model),
        ("gqa head mapping", check_gqa_equals_duplicated_mha),
        ("zeroed blocks", check_zeroed_blocks),
        ("cli round trip", check_cli_round_trip),
    ]
    failed = 0
    for name, fn in checks:
        try:
            print(f"ok    {name}: {fn()}")
        except Exception:  # report every check, then fail
            failed += 1
            print(f"FAIL  {name}:\n{traceback.format_exc()}")
    print(f"{len(checks) - failed}/{len(checks)} self-checks passed (torch {torch.__version__})")
    if failed:
        raise SystemExit(1)


# ================================================================================================
# CLI
# ================================================================================================


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="qwen2_ref.py", description="Independent PyTorch reference for Qwen2/Llama logits.")
    sub = parser.add_subparsers(dest="command", required=True)

    mk = sub.add_parser("make-model", help="write a random HuggingFace model folder")
    mk.add_argument("--out", required=True)
    mk.add_argument("--arch", required=True, choices=sorted(ARCHITECTURES))
    mk.add_argument("--hidden", type=int, required=True)
    mk.add_argument("--intermediate", type=int, required=True)
    mk.add_argument("--layers", type=int, required=True)
    mk.add_argument("--heads", type=int, required=True)
    mk.add_argument("--kv-heads", type=int, required=True)
    mk.add_argument("--head-dim", type=int, default=None, help="written to config.json only when given")
    mk.add_argument("--vocab", type=int, required=True)
    mk.add_argument("--tie", action="store_true", help="tie_word_embeddings (no lm_head.weight)")
    mk.add_argument("--dtype", choices=sorted(CLI_DTYPE_TO_ST), default="f32")
    mk.add_argument("--shards", type=int, default=1)
    mk.add_argument("--seed", type=int, default=0)
    mk.add_argument("--rope-theta", type=float, default=10000.0)
    mk.add_argument("--rope-scaling", default=None, help='JSON, e.g. {"rope_type":"linear","factor":2.0}')
    mk.add_argument("--attention-bias", action="store_true", help="llama: bias on q, k, v, o")
    mk.add_argument("--mlp-bias", action="store_true", help="llama: bias on gate, up, down")
    mk.add_argument("--rms-eps", type=float, default=None, help="default 1e-6 (qwen2) / 1e-5 (llama)")
    mk.add_argument("--max-pos", type=int, default=4096)
    mk.add_argument("--scale", type=float, default=1.0, help="multiplies the std of every random linear/embedding/bias")
    mk.set_defaults(fn=cmd_make_model)

    fw = sub.add_parser("forward", help="logits of independent sequences")
    fw.add_argument("--model", required=True)
    fw.add_argument("--tokens", required=True, help="raw little-endian int32 ids, sequences concatenated")
    fw.add_argument("--seq-lens", required=True, help="comma-separated lengths")
    fw.add_argument("--out", required=True, help="raw little-endian float32 logits [sum(seq-lens) x vocab]")
    fw.add_argument("--dtype-compute", choices=["f64", "f32"], default="f64")
    fw.set_defaults(fn=cmd_forward)

    st = sub.add_parser("self-test", help="check this reference against independent formulations")
    st.set_defaults(fn=cmd_self_test)

    args = parser.parse_args(argv)
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    try:
        args.fn(args)
    except (ValueError, FileNotFoundError, KeyError, json.JSONDecodeError) as e:
        print(f"qwen2_ref.py {args.command}: error: {e}", file=sys.stderr)
        raise SystemExit(2)


if __name__ == "__main__":
    main()
