"""Mentions taken from alert labels (``mention_labels``) and how they are told apart.

A route or channel with ``mention_labels = ["owner"]`` mentions the value of each listed
label an alert has (a value may list several people, separated by commas or spaces).
Kinds that notify by phone number and by user id tell them apart with :func:`is_mobile`:
a value of exactly 11 digits (a mainland China mobile number, the form WeCom and DingTalk
take), or ``+`` followed by 6 to 15 digits, is a mobile number; anything else is a user id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["is_mobile", "label_mentions", "merge"]

_MOBILE = re.compile(r"\d{11}|\+\d{6,15}")
_SEPARATORS = re.compile(r"[,\s]+")


def is_mobile(value: str) -> bool:
    """Whether ``value`` is a mobile number (see the module docs for the rule)."""
    return _MOBILE.fullmatch(value.strip()) is not None


def label_mentions(labels: Mapping[str, str], names: Iterable[str]) -> tuple[str, ...]:
    """The people named by the ``names`` labels in ``labels``, each once, in order."""
    found: list[str] = []
    for name in names:
        for who in _SEPARATORS.split(labels.get(name, "")):
            if who and who not in found:
                found.append(who)
    return tuple(found)


def merge(*groups: Iterable[str]) -> tuple[str, ...]:
    """Every mention of every group, each once, in order."""
    return tuple(dict.fromkeys(m for group in groups for m in group))
