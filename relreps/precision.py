"""Mixed precision for training: which autocast dtype a run uses, and where it applies.

``TrainConfig.precision`` is one of :data:`PRECISIONS`:

- ``"fp32"``: float32 everywhere (the default; the shipped agents were trained so);
- ``"bf16"``: bfloat16 autocast on a CPU with native bfloat16 arithmetic (AVX-512 BF16 or AMX) or
  a GPU with native bfloat16 (compute capability 8.0 and later); refused elsewhere;
- ``"auto"``: bfloat16 where it is native, float16 with a gradient scaler on a GPU without it
  (e.g. a T4), float32 on a CPU without it.

Autocast covers the convolutions and linear layers of the PPO update's forward pass (the backward
pass follows the forward's dtypes) and of the rollout's forward pass over all environments. The
parts that are sensitive to rounding stay in float32 in every precision: the anchor embeddings
(their moving average and the embedding of the anchor frames), the relative projection (centring,
normalisation, cosines), every LayerNorm (the encoder's latent norm and the head's), and the
actor's logits and the critic's values (so log-probabilities and PPO's ratio are computed in
float32). Acting one frame at a time (evaluation, ``predict``) stays in float32.
"""

from __future__ import annotations

import contextlib

import torch

__all__ = [
    "DTYPES",
    "PRECISIONS",
    "RESOLVED",
    "autocast",
    "check_precision",
    "cpu_has_bf16",
    "cuda_has_bf16",
    "float32",
    "resolve",
]


PRECISIONS = ("fp32", "bf16", "auto")
#: What a precision setting resolves to on a device: the autocast dtype's short name.
RESOLVED = ("fp32", "bf16", "fp16")
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision) -> None:
    """Refuse a precision that is not one of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: expected one of {PRECISIONS}")


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX-512 BF16 or AMX tiles)."""
    cpu = torch.cpu
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        fn = getattr(cpu, probe, None)
        if fn is not None and fn():
            return True
    return False


def cuda_has_bf16() -> bool:
    """Whether the current GPU computes in bfloat16 natively (not emulated)."""
    if not torch.cuda.is_available():
        return False
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # torch without the including_emulation argument
        return torch.cuda.get_device_capability()[0] >= 8


def resolve(precision: str, device: torch.device | str) -> str:
    """The autocast a precision setting means on ``device``: ``"fp32"``, ``"bf16"`` or ``"fp16"``."""
    check_precision(precision)
    kind = torch.device(device).type
    if kind not in ("cpu", "cuda"):
        if precision == "bf16":
            raise ValueError(f"precision 'bf16' runs on 'cpu' or 'cuda', not {kind!r}: use 'fp32' or 'auto'")
        return "fp32"
    native = cpu_has_bf16() if kind == "cpu" else cuda_has_bf16()
    if precision == "fp32":
        return "fp32"
    if precision == "bf16":
        if not native:
            where = "this CPU has no AVX-512 BF16 or AMX" if kind == "cpu" else "this GPU has no native bfloat16"
            raise ValueError(f"precision 'bf16' needs native bfloat16 arithmetic, and {where}: "
                             f"use 'auto' (it picks what the device runs fast) or 'fp32'")
        return "bf16"
    if native:
        return "bf16"
    return "fp16" if kind == "cuda" else "fp32"


def autocast(device_type: str, resolved: str):
    """The autocast context of a resolved precision (a no-op for ``"fp32"``)."""
    if resolved not in RESOLVED:
        raise ValueError(f"unknown resolved precision {resolved!r}: expected one of {RESOLVED}")
    dtype = DTYPES[resolved]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype)


def float32(device_type: str):
    """A region that runs in float32 inside an autocast one."""
    return torch.autocast(device_type, enabled=False)
