"""Bounds on the text the operator writes into status and Events, and how a cut says so.

A status is one etcd value (the API server refuses objects past about 1.5 MiB), and its
messages come from places the operator does not control: the API server's answers
(an admission policy's message), registries' answers, the keys of a docker config. So
every message is cut to a fixed length, and every cut ends in "and N more", telling the
reader that something was left out and how much.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "MAX_CONDITION_MESSAGE_CHARS",
    "MAX_EVENT_MESSAGE_CHARS",
    "MAX_MESSAGE_CHARS",
    "MAX_NAME_CHARS",
    "capped_join",
    "capped_text",
    "unlisted",
]

# One message in a status list (a namespace's failure, a registry check).
MAX_MESSAGE_CHARS = 1024
# One name taken from input: a registry server (a docker config's key: no bound of its
# own) or a source's label. Real ones are shorter: a host name is at most 253.
MAX_NAME_CHARS = 512
# A condition's message: several of the above joined, and notes on cut lists.
MAX_CONDITION_MESSAGE_CHARS = 4096
# events.k8s.io/v1 refuses a note longer than 1 kB; core/v1 Events are kept as short.
MAX_EVENT_MESSAGE_CHARS = 1024


def _more(count: int, what: str = "") -> str:
    return f" ... and {count} more" + (f" {what}" if what else "")


def capped_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text`, or as much of it as fits in `limit` characters with "... and N more characters"."""
    if len(text) <= limit:
        return text
    # The count of the cut is at most len(text), so its digits never make the result longer.
    kept = max(0, limit - len(_more(len(text), "characters")))
    return text[:kept] + _more(len(text) - kept, "characters")


def capped_join(items: Sequence[str], limit: int, separator: str = "; ") -> str:
    """As many whole items (each capped first) as fit in `limit` characters, then "and N more"."""
    whole = items
    items = [capped_text(item, min(limit, MAX_MESSAGE_CHARS)) for item in whole]
    joined = separator.join(items)
    if len(joined) <= limit:
        return joined
    # Some item is left out, so the note is always there: count it in while filling up.
    shown, length = 0, 0
    for item in items:
        grown = length + (len(separator) if shown else 0) + len(item)
        if grown + len(_more(len(items) - shown - 1)) > limit:
            break
        shown, length = shown + 1, grown
    if shown == 0:  # not even the first item fits whole beside the note
        note = _more(len(items) - 1)
        return capped_text(whole[0], limit - len(note)) + note
    return separator.join(items[:shown]) + _more(len(items) - shown)


def unlisted(field: str, total: int, listed: int) -> str:
    """A note for a condition message when a status list shows only `listed` of `total` entries."""
    if total <= listed:
        return ""
    return f"; {field} lists the first {listed}, and {total - listed} more"
