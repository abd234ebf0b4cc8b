"""Who holds a lease: worker names, and whether the worker behind one is still running.

A worker's name is ``host:pid:token``. When a process is killed, its leases outlive it;
a restarted process on the same host sees the pid is gone and takes its deliveries
back at once instead of waiting for the leases to expire.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys


def worker_id() -> str:
    """``host:pid:token``: unique per engine, and says which process holds a lease."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def owner_alive(owner: str) -> bool:
    """Whether the worker named ``owner`` may still be running.

    Only a process on this host can be checked; anything else counts as alive and its
    leases simply expire.
    """
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or sys.platform == "win32":
        return True
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True
