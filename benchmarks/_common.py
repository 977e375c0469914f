"""What the benchmark scripts share: the description of the machine they ran on."""

from __future__ import annotations

import os
import platform


def machine() -> dict:
    """Platform, CPUs, load, Python and (when installed) torch and its CUDA device."""
    info = {
        "loadavg_1min": os.getloadavg()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    try:
        import torch
    except ImportError:
        return info
    return info | {
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
