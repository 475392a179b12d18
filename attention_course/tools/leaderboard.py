"""Team challenges' leaderboard (``attention-course classroom leaderboard``): teams ranked by the scores their checks
printed into a graded room's ``grades_by_task.csv``."""

from __future__ import annotations

import re

from .gradebook import one_line

# A challenge is a graded task whose check prints "score=<number>"; its rows in grades_by_task.csv rank the teams.
CHALLENGES = {
    "challenge.val_loss_5min": {"better": "lower", "what": "validation loss (nats/char) after 5 minutes on the cpu profile"},
    "challenge.accuracy_200_labels": {"better": "higher", "what": "test accuracy of a classifier trained on 200 labels"},
}
SCORE = re.compile(r"score=(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")


def leaderboard(rows: list[dict[str, str]]) -> dict[str, list[dict[str, object]]]:
    """For each challenge in the rows: teams ranked by their score (a failed check has no score and ranks last)."""
    boards: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        task = row["task"]
        if not task.startswith("challenge."):
            continue
        verdict = f"\N{WHITE HEAVY CHECK MARK} {task}: "  # the grader's own line starts so; a team's print cannot
        message = row.get("message", "")
        match = SCORE.match(message[len(verdict):]) if message.startswith(verdict) else None
        passed = float(row.get("points") or 0) > 0 and match is not None
        boards.setdefault(task, []).append({"team": row["student"], "score": float(match["value"]) if passed else None,
                                            "message": row.get("message", "")})
    for task, entries in boards.items():
        sign = -1.0 if CHALLENGES.get(task, {}).get("better", "higher") == "higher" else 1.0
        entries.sort(key=lambda e: (e["score"] is None, sign * e["score"] if e["score"] is not None else 0.0, e["team"]))
        for rank, entry in enumerate(entries, 1):
            entry["rank"] = rank if entry["score"] is not None else None
    return boards


def format_leaderboard(boards: dict[str, list[dict[str, object]]]) -> str:
    if not boards:
        return "no challenge rows (tasks named challenge.*) in this CSV"
    lines = []
    for task, entries in sorted(boards.items()):
        what = CHALLENGES.get(task, {})
        lines.append(f"{task}: {what.get('what', '')} ({what.get('better', 'higher')} is better)")
        for entry in entries:
            if entry["score"] is None:
                lines.append(f"   -  {entry['team']:20s} no score: {one_line(str(entry['message']), 100)}")
            else:
                lines.append(f"  {entry['rank']:2d}. {entry['team']:20s} {entry['score']:.4g}")
    return "\n".join(lines)
