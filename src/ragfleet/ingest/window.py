"""Fixed token windows with overlap: the baseline chunker.

Window ``k`` holds tokens ``[s_k, e_k)`` with ``e_k`` the last safe cut (a word boundary,
see :meth:`TokenSpans.bounds`) at most ``max_tokens`` after ``s_k``; the next window starts
at the last safe cut at or before ``e_k - overlap``, so consecutive windows share at least
``overlap`` tokens, exactly ``overlap`` when that position is a word boundary. It never
steps backwards or repeats a window: if that cut is not after ``s_k``, or the window from
it would end at ``e_k`` again, it takes the first cut that moves both ends forward.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from ragfleet.ingest.base import Cut, Fits, TokenChunker, TokenSpans, always_fits


def window_ranges(
    bounds: list[int],
    lo: int,
    hi: int,
    max_tokens: int,
    overlap: int,
    fits: Fits = always_fits,
) -> list[tuple[int, int]]:
    """Token windows covering ``[lo, hi)``, cut only at ``bounds`` (and ``lo``, ``hi``).

    Args:
        bounds: ascending safe cut positions; gaps between them must be ``<= max_tokens``.
        lo, hi: the token range to cover.
        max_tokens: the most tokens one window holds.
        overlap: the tokens consecutive windows share, ``0 <= overlap < max_tokens``.
        fits: a window that does not fit shrinks to the previous bound (see
            :meth:`TokenChunker.grid`: only pieces cut inside a word can fail).

    Returns:
        ``[(s_0, e_0), (s_1, e_1), …]`` with ``s_0 = lo``, last ``e = hi``, ``e - s <=
        max_tokens``, ``s_k < s_{k+1} <= e_k < e_{k+1}``: no token left out and no window
        inside another.
    """
    out: list[tuple[int, int]] = []
    s = lo
    while True:
        e = hi if hi - s <= max_tokens else bounds[bisect_right(bounds, s + max_tokens) - 1]
        if e <= s:  # lo is not a bound and its word is too long: cut it anyway
            e = s + max_tokens
        while not fits(s, e) and (k := bisect_left(bounds, e) - 1) >= 0 and bounds[k] > s:
            e = bounds[k]
        if not out or e > out[-1][1]:  # a shrunk window can fall inside the previous one
            out.append((s, e))
        if e >= hi:
            return out
        s = _next_start(bounds, s, e, hi, max_tokens, overlap)


def _next_start(bounds: list[int], s: int, e: int, hi: int, max_tokens: int, overlap: int) -> int:
    """The last bound at or before ``e - overlap`` whose window reaches past ``e``; if none
    lies after ``s``, the first bound after ``s`` whose window does."""
    k = bisect_right(bounds, e)
    after_e = min(bounds[k], hi) if k < len(bounds) else hi
    earliest = max(s + 1, after_e - max_tokens)  # a window from here reaches after_e
    k = bisect_right(bounds, e - overlap) - 1
    if k >= 0 and bounds[k] >= earliest:
        return bounds[k]
    k = bisect_right(bounds, earliest - 1)
    return min(bounds[k], e) if k < len(bounds) else e


class WindowChunker(TokenChunker):
    """Token windows of ``max_tokens`` sharing ``overlap`` tokens, cut between words."""

    __slots__ = ()

    def cuts(self, text: str, tokens: TokenSpans) -> list[Cut]:
        cfg = self.config
        bounds, fits = self.grid(text, tokens)
        ranges = window_ranges(bounds, 0, len(tokens), cfg.max_tokens, cfg.overlap, fits)
        return [Cut(lo, hi) for lo, hi in ranges]
