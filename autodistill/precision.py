"""Mixed precision: autocast for the forward passes, fp32 master weights, a gradient scaler for fp16.

    refusal = precision_refusal("bf16", torch.device("cpu"), force=False)  # a reason, or None
    with autocast(precision, device): loss = ...
    scaler = gradient_scaler(precision, device)  # None unless fp16 (on CUDA)

The parameters stay fp32 whatever the precision: autocast runs the matrix products in the chosen
type and the optimiser updates fp32 weights. bf16 needs hardware for it: on a CPU without
AVX512-BF16 or AMX, bf16 autocast measured about 10x slower than fp32 (ENVIRONMENT-NOTES), so it
is refused there unless forced; CPU fp16 autocast brings no training benefit and is refused.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from pathlib import Path

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX): torch's capability or
    the kernel's flags."""
    if torch.backends.cpu.get_cpu_capability() == "AVX512_BF16":  # not reported by every build
        return True
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in _BF16_CPU_FLAGS)


def precision_refusal(precision: str, device: torch.device, *, force: bool) -> str | None:
    """Why `precision` cannot train on `device` (None: it can), with the fix."""
    if precision == "fp32" or device.type == "cuda":
        return None
    if precision == "fp16":
        return (f"fp16 on {device.type} brings no training benefit (no fp16 autocast kernels "
                "worth using there); use precision: fp32, or bf16 on a device with bf16 hardware")
    if precision == "bf16" and device.type == "cpu" and not cpu_has_bf16() and not force:
        return ("bf16 on this CPU (no AVX512-BF16 or AMX) is about 10x slower than fp32 "
                "(measured); use precision: fp32, or set precision_force: true to run it anyway")
    return None


def autocast(precision: str, device: torch.device) -> AbstractContextManager[object]:
    """Forward passes in `precision` (fp32: nothing changes)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[precision])


def gradient_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """A loss scaler for fp16 (its gradients underflow without one); None otherwise."""
    if precision != "fp16":
        return None
    return torch.amp.GradScaler(device.type)
