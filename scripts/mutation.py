"""Mutation pass (cosmic-ray) over the train-step code, on a scratch git worktree; not part of CI.

Usage (from the repository root, in the dev venv; cosmic-ray is pinned in requirements/constraints.txt)::

    .venv/bin/python scripts/mutation.py [--targets compression_step,balancer,backward_and_update]
                                         [--budget-minutes 25] [--worktree /tmp/audiocraft-mutation]

For each target (a function of a module, and the tests meant to guard it) the script makes a fresh detached
worktree of HEAD (the shared working tree is never mutated), lets ``cosmic-ray init`` list every mutant of the
module, keeps those inside the function (the others are marked skipped), then runs ``cosmic-ray exec``: each mutant
is applied to the worktree's file and the target's tests run against it (``PYTHONPATH`` puts the worktree's
``src`` first, before the editable install of the main tree). Each target gets an equal share of the time budget
left; mutants not run by then stay pending (run again with ``--resume`` to go on). It prints, per target, the
killed / survived / pending counts and the diff of every survivor, and writes them to
``<worktree>/<target>.report.txt``.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = "packages/audiocraft-core"
TESTS = f"{CORE}/tests"

# target: (module path, function qualname, pytest arguments)
TARGETS: dict[str, tuple[str, str, list[str]]] = {
    "compression_step": (
        f"{CORE}/src/audiocraft/solvers/compression.py",
        "CompressionSolver.run_step",
        [
            f"{TESTS}/solvers/test_train_step_compression.py",
            "-k",
            "optimizers_step or adversarial_every or clipping or zero_weight or balanced_gradient or plain_weights "
            "or (alone and (adv-plain or feat-balanced or l1-balanced or msspec-plain))",
        ],
    ),
    "balancer": (
        f"{CORE}/src/audiocraft/losses/balancer.py",
        "Balancer.backward",
        [
            f"{TESTS}/losses/test_balancer.py",
            f"{TESTS}/solvers/test_train_step_compression.py",
            "-k",
            "not (solvers and not (balanced_gradient or plain_weights))",
        ],
    ),
    "backward_and_update": (
        f"{CORE}/src/audiocraft/solvers/base.py",
        "StandardSolver.backward_and_update",
        [f"{TESTS}/solvers/test_train_step_lm.py", "-k", "clipping or accumulation or scaler"],
    ),
    "adversarial_loss": (
        f"{CORE}/src/audiocraft/adversarial/losses.py",
        "AdversarialLoss.train_adv",
        [
            f"{TESTS}/adversarial/test_adversarial_losses.py",
            f"{TESTS}/solvers/test_train_step_compression.py",
            "-k",
            "not (solvers and not (optimizers_step or adversarial_every))",
        ],
    ),
}


def _function_lines(path: Path, qualname: str) -> tuple[int, int]:
    """First and last line of the body of the function ``Class.name`` (or ``name``) in ``path``, docstring left out:
    mutants of the signature's annotations are never evaluated (``from __future__ import annotations``)."""
    names = qualname.split(".")
    body = ast.parse(path.read_text()).body
    node: ast.AST | None = None
    for name in names:
        node = next((n for n in body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == name), None)
        if node is None:
            raise SystemExit(f"{qualname} not found in {path}")
        body = node.body  # type: ignore[attr-defined]
    statements = node.body  # type: ignore[union-attr]
    if isinstance(statements[0], ast.Expr) and isinstance(getattr(statements[0], "value", None), ast.Constant):
        statements = statements[1:]
    return statements[0].lineno, node.end_lineno  # type: ignore[union-attr]


def _fresh_worktree(worktree: Path) -> None:
    if worktree.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)], check=False)
        shutil.rmtree(worktree, ignore_errors=True)
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktree), "HEAD"], check=True)


def _write_config(worktree: Path, name: str, module: str, pytest_args: list[str], timeout: float) -> Path:
    python = sys.executable
    command = " ".join(
        [python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
        + [f"'{a}'" if " " in a else a for a in pytest_args]
    )
    config = worktree / f"{name}.toml"
    config.write_text(
        "[cosmic-ray]\n"
        f'module-path = "{module}"\n'
        f"timeout = {timeout}\n"
        "excluded-modules = []\n"
        f'test-command = "{command}"\n'
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
    )
    return config


def _skip_outside(session: Path, module: str, first: int, last: int) -> int:
    """Mark skipped every mutant of ``session`` outside lines [first, last]; returns how many are kept."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    kept = 0
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in list(db.pending_work_items):
            inside = all(
                str(m.module_path).endswith(module) and first <= m.start_pos[0] <= last for m in item.mutations
            )
            if inside:
                kept += 1
            else:
                db.set_result(
                    item.job_id, WorkResult(output="outside the target function", worker_outcome=WorkerOutcome.SKIPPED)
                )
    return kept


def _report(session: Path) -> tuple[dict[str, int], list[str]]:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    counts = {"killed": 0, "survived": 0, "incompetent": 0, "pending": 0}
    survivors: list[str] = []
    with use_db(str(session), WorkDB.Mode.open) as db:
        done = dict(db.results)
        for item in db.work_items:
            result = done.get(item.job_id)
            if result is None:
                counts["pending"] += 1
            elif result.worker_outcome == WorkerOutcome.SKIPPED:
                continue
            elif result.test_outcome == TestOutcome.SURVIVED:
                counts["survived"] += 1
                mutation = item.mutations[0]
                survivors.append(
                    f"--- {mutation.operator_name} occurrence {mutation.occurrence} at line "
                    f"{mutation.start_pos[0]}\n{result.diff}"
                )
            elif result.test_outcome == TestOutcome.INCOMPETENT:
                counts["incompetent"] += 1
            else:
                counts["killed"] += 1
    return counts, survivors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated, from {sorted(TARGETS)}")
    parser.add_argument("--budget-minutes", type=float, default=25.0, help="total run time for all targets")
    parser.add_argument("--worktree", type=Path, default=Path("/tmp/audiocraft-mutation"))
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant's test run")
    parser.add_argument("--resume", action="store_true", help="keep the worktree and sessions, run pending mutants")
    args = parser.parse_args(argv)
    names = [n for n in args.targets.split(",") if n]
    unknown = sorted(set(names) - set(TARGETS))
    if unknown:
        parser.error(f"unknown target(s) {unknown}; expected some of {sorted(TARGETS)}")
    if not args.resume:
        _fresh_worktree(args.worktree)
    cosmic = str(Path(sys.executable).with_name("cosmic-ray"))
    if not Path(cosmic).exists():
        raise SystemExit(
            f"{cosmic} not found: install the pinned tool with `{sys.executable} -m pip install "
            "cosmic-ray` (PIP_CONSTRAINT=requirements/constraints.txt)"
        )
    sources = [str(args.worktree / "packages" / p / "src") for p in sorted(os.listdir(ROOT / "packages"))]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sources + [os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    for name in names:  # the tests must import the worktree's copy, or every mutant would survive
        module = TARGETS[name][0]
        dotted = module.split("/src/", 1)[1].removesuffix(".py").replace("/", ".")
        probe = f"import importlib.util as u; print(u.find_spec({dotted!r}).origin)"
        origin = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        if Path(origin) != args.worktree / module:
            raise SystemExit(f"{dotted} imports from {origin}, not from the worktree's {args.worktree / module}")
    deadline = time.monotonic() + args.budget_minutes * 60
    for position, name in enumerate(names):
        module, qualname, pytest_args = TARGETS[name]
        session = args.worktree / f"{name}.sqlite"
        config = _write_config(args.worktree, name, module, pytest_args, args.timeout)
        if not (args.resume and session.exists()):
            subprocess.run([cosmic, "init", str(config), str(session)], cwd=args.worktree, env=env, check=True)
            first, last = _function_lines(args.worktree / module, qualname)
            kept = _skip_outside(session, module, first, last)
            print(f"{name}: {kept} mutants in {qualname} (lines {first}-{last})", flush=True)
        left = (deadline - time.monotonic()) / (len(names) - position)  # an equal share of what is left
        if left > 0:
            proc = subprocess.Popen(
                [cosmic, "exec", str(config), str(session)], cwd=args.worktree, env=env, start_new_session=True
            )
            try:
                proc.wait(timeout=left)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 15)
                proc.wait()
                print(f"{name}: time budget reached", flush=True)
            # cosmic-ray restores each file after its test run; make sure an interrupted run left none mutated.
            subprocess.run(["git", "-C", str(args.worktree), "checkout", "--", module], check=True)
        counts, survivors = _report(session)
        text = f"{name} ({qualname}): {counts}\n" + "\n".join(survivors)
        (args.worktree / f"{name}.report.txt").write_text(text + "\n")
        print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
