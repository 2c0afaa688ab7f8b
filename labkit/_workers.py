"""Worker processes that end with the process that started them (``study --jobs``, ``lsun
prepare --workers``)."""

from __future__ import annotations

import os
import signal


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent ends (``prctl(PR_SET_PDEATHSIG)``), so
    that a killed parent leaves no workers behind; exit at once if the parent (the pid
    ``parent``) is already gone, having died before ``prctl`` took effect. Elsewhere there is no
    such request: idle workers end when their parent closes their queue."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux
        pass
    if os.getppid() != parent:
        os._exit(1)
