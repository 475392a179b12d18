"""The classroom kit's command line, ``attention-course classroom init|grade|leaderboard|slides``: each subcommand runs
its own module (``assignments``, ``gradebook``, ``leaderboard``, ``slides``); see the instructor guide."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.course import find_root
from ..core.language import LANGUAGES
from .assignments import DEFAULT_TIMEOUT, init_course
from .gradebook import TASK_CSV, grade_course, read_task_csv, summary
from .leaderboard import format_leaderboard, leaderboard
from .slides import mark_slides


def add_parser(commands) -> None:
    room = commands.add_parser("classroom", help="grade a room with nbgrader, team leaderboards, slides")
    sub = room.add_subparsers(dest="classroom_command", required=True)
    init = sub.add_parser("init", help="write an nbgrader course from solutions/ and release the student versions")
    init.add_argument("folder", type=Path)
    init.add_argument("--lessons", nargs="+", metavar="NN", help="only these lessons, e.g. 01 02 (default: all)")
    init.add_argument("--solutions", type=Path, help="solutions folder (default: the course repository's)")
    init.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help="seconds a cell may run when grading")
    init.add_argument("--challenges", action="store_true",
                      help="also the team challenges of classroom/challenges/ (grade them with --timeout 600)")
    grade = sub.add_parser("grade", help="autograde submissions into grades_by_task.csv and nbgrader's gradebook")
    grade.add_argument("folder", type=Path, help="the course folder made by `classroom init`")
    grade.add_argument("--submissions", type=Path,
                       help="a folder of <student>/NN_name.ipynb to grade (copied; default: the course's submitted/)")
    grade.add_argument("--assignment", nargs="+", help="only these assignments, e.g. lesson02")
    grade.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help="seconds a cell may run (default %(default)s)")
    grade.add_argument("--lang", choices=LANGUAGES,
                       help="the language of the feedback (the checks' messages): default, each assignment's own "
                            "(ja for a course made with `init --solutions solutions-ja`), else en")
    board = sub.add_parser("leaderboard", help="rank teams from a grading CSV's challenge scores")
    board.add_argument("csv", type=Path)
    board.add_argument("--json", action="store_true")
    slides = sub.add_parser("slides", help="mark slide cells in lessons (idempotent; sources and outputs untouched)")
    slides.add_argument("notebooks", nargs="+", type=Path)


def run(args) -> int:
    if args.classroom_command == "init":
        root = None if args.solutions and not args.challenges else find_root()
        solutions = args.solutions or root / "solutions"
        made = init_course(args.folder, solutions, args.lessons, args.timeout,
                           challenges=root / "classroom" / "challenges" if args.challenges else None)
        print(f"wrote the nbgrader course {args.folder}: {', '.join(made)}; student versions in {args.folder / 'release'}")
        return 0
    if args.classroom_command == "grade":
        rows = grade_course(args.folder, args.submissions, args.assignment, args.timeout, lang=args.lang)
        print(summary(rows))
        print(f"wrote {args.folder / TASK_CSV} and nbgrader's {args.folder / 'grades.csv'}")
        return 0
    if args.classroom_command == "leaderboard":
        boards = leaderboard(read_task_csv(args.csv))
        print(json.dumps(boards, indent=1) if args.json else format_leaderboard(boards))
        return 0
    for path in args.notebooks:
        print(f"{path}: {mark_slides(path)} cell(s) changed")
    return 0
