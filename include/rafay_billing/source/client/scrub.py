"""Text a server sent, fit to show: the API key masked, whole and where a cut left the start of it.

Why a module of its own: every place that shows a server's text (an error page's excerpt, a
redirect's target, a listing entry in a paging error) could echo the key, which travels in the
``x-api-key`` header and which gateways' diagnostic pages repeat. The order matters: text cut
before it is scrubbed no longer holds a key that straddled the cut, only its start, which the
search for the whole key misses. So the key is masked in the whole text first, and the text is cut
after; at the cut, a start of the key (:data:`PARTIAL_MIN_CHARS` or more of its first characters)
is masked too, as the cut text might have held it. The proxy's password is masked by
:func:`~rafay_billing.source.client.transport.redact` instead (it sits in a URL, not in a body).
"""

from __future__ import annotations

MASK = "***"

PARTIAL_MIN_CHARS = 4
"""A start of the key this long or longer, left at a cut, is masked. Shorter ones say next to
nothing about the key, and masking them would garble ordinary text that happens to match."""

_CLOSERS = "'\"…"
"""What may follow the cut where cut text is shown: the closing quote of its ``repr``, an ellipsis."""


def scrub_secret(text: str, secret: str, *, cut: bool = False) -> str:
    """``text`` with every occurrence of ``secret`` masked.

    With ``cut`` (``text`` ends where something longer was cut, perhaps followed by a closing quote
    or an ellipsis) also a start of ``secret`` at that end, which might be the key cut short.
    """
    if not secret:
        return text
    if secret in text:
        text = text.replace(secret, MASK)
    return _mask_start_at_end(text, secret) if cut else text


def cut_scrubbed(text: str, secret: str, limit: int, marker: str = "…") -> str:
    """``text`` at most ``limit`` characters (the last being ``marker`` when it was cut), the key
    masked before the cut and a start of it at the cut."""
    text = scrub_secret(text, secret)
    if len(text) <= limit:
        return text
    return scrub_secret(text[: max(0, limit - len(marker))], secret, cut=True) + marker


def _mask_start_at_end(text: str, secret: str) -> str:
    """``text`` with the longest start of ``secret`` it ends with (before any closers) masked."""
    ends = [len(text)]
    bare = text.rstrip(_CLOSERS)
    if len(bare) < len(text):
        ends.append(len(bare))
    for end in ends:
        for size in range(min(len(secret), end), PARTIAL_MIN_CHARS - 1, -1):
            if text.startswith(secret[:size], end - size):
                return text[: end - size] + MASK + text[end:]
    return text
