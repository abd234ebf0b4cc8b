"""Which channel a delivery was written for: its name and a fingerprint of its settings.

Several configurations may share one outbox file, and two of them may give the same
name to different channels (another URL, another robot). Every delivery therefore
remembers the *identity* of the channel it was written for: the channel's name and a
hash of its kind and options, with each secret hashed first, so the secret itself is
never stored. A process delivers only deliveries whose channel it has with the same
identity; the others wait for a process that has them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from notifier.kinds import ChannelSpec
from notifier.redact import Secret

# Written before identities were kept: any process with a channel of that name takes it.
UNKNOWN = ""


def _canonical(value: Any) -> Any:
    if isinstance(value, Secret):
        # Hashed with a label, so a secret and a plain option of the same text differ.
        return {"secret-sha256": hashlib.sha256(value.reveal().encode()).hexdigest()}
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_canonical(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def channel_identity(spec: ChannelSpec) -> str:
    """A short hex fingerprint of ``spec``'s kind and options (secrets hashed)."""
    canonical = {"kind": spec.kind, "options": _canonical(spec.options)}
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def identities(specs: Mapping[str, ChannelSpec]) -> dict[str, str]:
    """``{name: identity}`` for every configured channel."""
    return {name: channel_identity(spec) for name, spec in specs.items()}
