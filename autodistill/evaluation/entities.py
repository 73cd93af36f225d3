"""Entity-level F1 of tag sequences (BIO or IO tags, as conlleval and seqeval count them).

An entity is a maximal run of tags of one type: it starts at `B-X`, or at `I-X` (or a bare `X`)
after a tag of another type or `O`; it is counted right only when its start, end and type all
match a gold entity.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

OUTSIDE = "O"


def entities(tags: Sequence[str]) -> set[tuple[int, int, str]]:
    """The (start, end, type) of every entity in one sequence of tag names."""
    found: set[tuple[int, int, str]] = set()
    start, kind = None, ""
    for i, tag in enumerate([*tags, OUTSIDE]):
        prefix, _, typ = tag.partition("-") if "-" in tag else ("I", "", tag)
        if tag == OUTSIDE:
            prefix, typ = OUTSIDE, ""
        if start is not None and (prefix in (OUTSIDE, "B") or typ != kind):
            found.add((start, i, kind))
            start = None
        if prefix != OUTSIDE and start is None:
            start, kind = i, typ
    return found


def entity_f1(pairs: Iterable[tuple[Sequence[str], Sequence[str]]]) -> dict[str, float]:
    """{"f1", "precision", "recall"} over (gold tags, predicted tags) pairs; 0 where undefined."""
    right = gold_count = predicted_count = 0
    for gold, predicted in pairs:
        g, p = entities(gold), entities(predicted)
        right += len(g & p)
        gold_count += len(g)
        predicted_count += len(p)
    precision = right / predicted_count if predicted_count else 0.0
    recall = right / gold_count if gold_count else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"f1": f1, "precision": precision, "recall": recall}
