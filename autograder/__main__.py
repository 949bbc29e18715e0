"""`python -m autograder <verb>`: the instructor's command line. Thin: parsing here, work in autograder.grading."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXAMPLES = {
    "release": "python -m autograder release ch01_univariate   (or --all) [--no-check]",
    "collect": "python -m autograder collect ch01_univariate ~/Downloads/submissions "
               "[--force]   (or --exchange)",
    "autograde": "python -m autograder autograde ch01_univariate [ch02_gradients ...|--all] --jobs 2 "
                 "[--student alice] [--force] [--autodiff flag] [--memory 4G]",
    "feedback": "python -m autograder feedback ch01_univariate [--student alice] [--force]   (or --all)",
    "report": "python -m autograder report ch01_univariate   (or --all)",
    "export": "python -m autograder export [--to grades.csv] [--canvas canvas.csv]",
    "demo": "python -m autograder demo --jobs 2",
}
CORES = os.cpu_count() or 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="autograder", description="Release, collect, grade, give feedback on and "
                                "report the course's assignments, with nbgrader underneath.")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, help_: str) -> argparse.ArgumentParser:
        return verbs.add_parser(name, help=help_, description=help_, epilog="example: " + EXAMPLES[name])

    r = verb("release", "Generate exercises/<assignment> from solutions/<assignment> (nbgrader generate_assignment, "
             "normalised so that regenerating leaves no diff), then grade each solution against its own tests "
             "as a submission is graded (exit status 1 if one fails; a pass is remembered, so grading skips it).")
    r.add_argument("assignment", nargs="?")
    r.add_argument("--all", action="store_true", help="release every assignment")
    r.add_argument("--no-check", action="store_true",
                   help="skip grading each solution against its own tests (the first autograde does it)")
    r.add_argument("--jobs", type=int, default=CORES, help=f"solutions checked at once (default: cores = {CORES})")
    c = verb("collect", "Copy submissions into <data>/submitted/<student>/<assignment>/ from nbgrader's layout "
             "(<dir>/<student>/<assignment>/) or a flat folder of <student>_*.ipynb files (LMS downloads).")
    c.add_argument("assignment")
    c.add_argument("source", type=Path, nargs="?", help="folder of submissions")
    c.add_argument("--exchange", action="store_true",
                   help="the latest submission per student from nbgrader's exchange "
                        "(<data>/exchange/vc4ml/inbound, where the Assignment List "
                        "submits)")
    c.add_argument("--force", action="store_true", help="replace submissions collected before")
    c.add_argument("--pattern", help="regex on flat file names with a (?P<student>...) group")
    a = verb("autograde", "Autograde submissions with nbgrader, several at once with a progress bar, and print the "
             "score table. Unchanged submissions graded before are skipped unless --force. Several assignments "
             "(or --all) are graded in one batch.")
    a.add_argument("assignment", nargs="*")
    a.add_argument("--all", action="store_true", help="every assignment with submissions")
    a.add_argument("--jobs", type=int, default=CORES, help=f"submissions graded at once (default: cores = {CORES})")
    a.add_argument("--student", action="append", help="grade only this student (repeatable)")
    a.add_argument("--force", action="store_true", help="regrade even unchanged submissions")
    a.add_argument("--autodiff", choices=("zero", "flag"), default="zero",
                   help="a hand derivation that calls JAX autodiff: zero the question (default) or only flag it "
                        "for review")
    a.add_argument("--memory", default=None, metavar="SIZE",
                   help="memory per submission's kernel, e.g. 2G (default) or 512M")
    a.add_argument("--notebook-timeout", type=int, default=None, metavar="SECONDS",
                   help="wall time per submission's notebook (default 300); the per-cell limit is "
                        "Execute.timeout in nbgrader_config.py")
    a.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="grade on a running Dask cluster, e.g. tcp://10.0.0.5:8786 (default: "
                        "$AUTOGRADER_SCHEDULER, else local worker processes); see README 'Grading a large class'")
    f = verb("feedback", "Write an HTML feedback page per graded student: score and diagnosis per question, "
             "never the hidden tests or the points they used. Students not graded yet get no page.")
    f.add_argument("assignment", nargs="?")
    f.add_argument("--all", action="store_true", help="every assignment with graded submissions")
    f.add_argument("--student", action="append", help="only this student (repeatable)")
    f.add_argument("--force", action="store_true", help="overwrite feedback written before")
    rep = verb("report", "Print the score table and write a class report (Markdown + HTML): per question the "
               "score distribution and the most common diagnosed mistakes, the submissions flagged for review "
               "and why, figures. Students not graded yet are listed, not counted.")
    rep.add_argument("assignment", nargs="?")
    rep.add_argument("--all", action="store_true", help="every assignment with graded submissions")
    e = verb("export", "Write nbgrader's grades CSV and a Canvas-importable CSV for the whole gradebook. An "
             "assignment a student did not submit is left blank in both (not 0; nbgrader's own exporter writes "
             "0), so an import never records a missing submission as an earned zero.")
    e.add_argument("--to", type=Path, default=None, help="nbgrader CSV (default: <data>/grades.csv)")
    e.add_argument("--canvas", type=Path, default=None, help="Canvas CSV (default: <data>/grades_canvas.csv)")
    d = verb("demo", "Release, build the bundled demo class, autograde it, write feedback, reports and CSVs.")
    d.add_argument("--jobs", type=int, default=CORES)
    d.add_argument("assignments", nargs="*", help="default: every assignment with a demo/<name>.yml")
    return p


def _positive_jobs(args) -> None:
    if getattr(args, "jobs", 1) < 1:
        raise SystemExit("autograder: error: --jobs must be at least 1")


def _one_or_all(args, course, pipeline) -> list[str]:
    """feedback/report: one assignment, or --all (every assignment with graded submissions)."""
    if args.all and args.assignment:
        raise course.CourseError("name an assignment or pass --all, not both")
    if args.all:
        return pipeline.graded_assignments()
    if not args.assignment:
        raise course.CourseError("name an assignment or pass --all")
    return [course.require_assignment(args.assignment)]


def _assignments(args, course) -> list[str]:
    if args.all and args.assignment:
        raise course.CourseError("name assignments or pass --all, not both")
    if not args.all:
        if not args.assignment:
            raise course.CourseError("name an assignment or pass --all")
        return list(dict.fromkeys(args.assignment))
    from autograder.grading import autograde

    found = [name for name in course.assignments() if autograde.submissions(name)]
    if not found:
        raise course.CourseError(f"no submissions in {course.data_dir() / 'submitted'}: collect them first: "
                                 f"`python -m autograder collect <assignment> <folder of submissions>`")
    return found


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _positive_jobs(args)
    from autograder.grading import course, pipeline

    try:
        if args.verb == "release":
            if not args.all and not args.assignment:
                raise course.CourseError("name an assignment or pass --all")
            pipeline.release(course.assignments() if args.all else [args.assignment], not args.no_check,
                             args.jobs)
        elif args.verb == "collect":
            if (args.source is None) == (not args.exchange):
                raise course.CourseError("collect: give a folder of submissions or "
                                         "--exchange, not both")
            pipeline.collect(args.assignment, args.source, args.force, args.pattern)
        elif args.verb == "autograde":
            pipeline.autograde(_assignments(args, course), args.student, args.jobs, args.force, args.autodiff,
                               args.memory, args.notebook_timeout, args.scheduler)
        elif args.verb == "feedback":
            for name in _one_or_all(args, course, pipeline):
                pipeline.feedback(name, args.student, args.force, some_may_be_missing=args.all)
        elif args.verb == "report":
            for name in _one_or_all(args, course, pipeline):
                pipeline.report(name)
        elif args.verb == "export":
            pipeline.export(args.to, args.canvas)
        elif args.verb == "demo":
            pipeline.demo(args.assignments, args.jobs)
    except course.CourseError as err:
        from autograder.grading.safe_text import terminal

        print(f"autograder: error: {terminal(err)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
