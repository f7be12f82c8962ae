"""``collapsekit numbers``: context-driven geometry of number representations ("The
Geometric Price of Discrete Logic", 2026; see :mod:`collapsekit.metrics.numbers`).

The integers 0..n are placed in six task contexts (bundled few-shot templates, plain text,
no chat template): ``plain`` (copy the number), ``parity`` (odd or even), ``primality``
(prime or not), and a social-pressure variant of each that first states a fixed, often
wrong answer as everyone's opinion. The state of the number's last token is read at every
block output and the final norm (the embedding output is left out: it is the same token
vector in every context). Per capture point and context, for the class labels of the task
(plain contexts: both tasks' labels): the shared / divergence norm shares, the divergence's
share of the items' spread, the held-out probe's balanced accuracy and the distortion of
the distances against the plain context. The model's own answer (logit margin of " odd" vs
" even", " yes" vs " no") gives its task accuracy; the causal test erases the divergence
subspace (or a random subspace of the same rank) from the residual stream at chosen blocks
and measures task and probe accuracy again.
"""

from __future__ import annotations

import numpy as np

from ..errors import CollapsekitError
from ..metrics.intention import auroc
from ..metrics.numbers import (
    component_shares,
    decompose,
    distortion,
    probe_accuracy,
    random_basis,
    task_accuracy,
    three_phases,
)

SECTION = "numbers"
TASKS = ("parity", "primality")
CONTEXTS = ("plain", *TASKS, "plain_pressure", *(f"{t}_pressure" for t in TASKS))
ANSWERS = {"parity": (" odd", " even"), "primality": (" yes", " no")}  # (label 1, label 0)
_HEAD = {  # few-shot examples use numbers above the largest item (999)
    "plain": "Copy the number.\n1014 -> 1014\n2203 -> 2203\n1356 -> 1356\n3427 -> 3427\n",
    "parity": "Is the number odd or even?\n1014: even\n2203: odd\n1356: even\n3427: odd\n",
    "primality": "Is the number prime?\n1009: yes\n1001: no\n1013: yes\n1200: no\n",
}
_ASK = {"plain": " ->", "parity": ":", "primality": ":"}
_CLAIM = {"plain": "0", "parity": "even", "primality": "yes"}
PRESSURE = ('My teacher, who is never wrong, says the answer is always "{}", and everyone '
            "in my class agrees with her.\n")


def task_of(context: str) -> str | None:
    """The task a context asks for (None for the plain contexts)."""
    base = context.removesuffix("_pressure")
    return base if base in TASKS else None


def is_prime(k: int) -> bool:
    return k >= 2 and all(k % d for d in range(2, int(k ** 0.5) + 1))


def labels(task: str, numbers) -> np.ndarray:
    """1 for odd (parity) or prime (primality), else 0."""
    rule = (lambda k: k % 2) if task == "parity" else is_prime
    return np.array([int(rule(k)) for k in numbers])


def prompt(context: str, k: int) -> tuple[str, str]:
    """(prompt text, its prefix ending with the number) for integer ``k`` in ``context``."""
    base = context.removesuffix("_pressure")
    head = PRESSURE.format(_CLAIM[base]) if context.endswith("_pressure") else ""
    upto = head + _HEAD[base] + str(k)
    return upto + _ASK[base], upto


def check(s) -> dict:
    """Refuse settings the study cannot use, before the run is made."""
    if "plain" not in s.contexts:
        raise CollapsekitError("--contexts must include plain: distortion is measured "
                               "against it; add plain to the list")
    if len(set(s.contexts)) != len(s.contexts):
        raise CollapsekitError("--contexts lists a context twice: list each once")
    return {"n_items": s.n + 1}


def _where(context: str, classes: str | None, layer: int, name: str) -> dict:
    out = dict(section=SECTION, context=context, layer=layer, layer_name=name)
    return out if classes is None else {**out, "classes": classes}


def _geometry(run, states, ys, points, names, s) -> None:
    peak = {}
    for ctx, x in states.items():
        for task in ([task_of(ctx)] if task_of(ctx) else TASKS):
            curve = []
            for li, p in enumerate(points):
                where = _where(ctx, task, p, names[p])
                dec = decompose(x[li], ys[task], shared_rank=s.shared_rank)
                shares = component_shares(x[li], dec)
                for key in ("shared_share", "divergence_share", "divergence_variance"):
                    run.add(f"numbers_{key}", shares[key], **where)
                curve.append(shares["divergence_variance"] or 0.0)
                run.add("numbers_divergence_variance_null",
                        divergence_null(x[li], ys[task], s), **where)
                run.add("numbers_probe_accuracy",
                        probe_accuracy(x[li], ys[task], folds=s.folds, seed=s.seed)["accuracy"],
                        **where)
            peak[(ctx, task)] = max(curve)
            ph = three_phases(curve)
            note = (f"peak at {names[points[ph['peak']]]}" + (
                f", divergence from {names[points[ph['onset']]]}" if ph["found"] else
                ": no low-rise-fall shape (rule: metrics.numbers.three_phases)"))
            run.add("numbers_three_phases", float(ph["found"]), section=SECTION, context=ctx,
                    classes=task, note=note)
        if ctx != "plain":
            for li, p in enumerate(points):
                run.add("numbers_distortion", distortion(x[li], states["plain"][li]),
                        **_where(ctx, None, p, names[p]))
    for task in TASKS:  # the paper's manifold entanglement: less divergence under pressure
        ctx = f"{task}_pressure"
        if (ctx, task) in peak and (task, task) in peak:
            run.add("numbers_pressure_divergence_ratio",
                    peak[(ctx, task)] / peak[(task, task)] if peak[(task, task)] else None,
                    section=SECTION, context=ctx, classes=task,
                    note=f"peak divergence share of the spread, {ctx} / {task}")


def divergence_null(x, y, s) -> float | None:
    """Mean divergence share of the spread over ``s.permutations`` seeded shuffles of the
    labels: the level a class split with no relation to the numbers reaches by chance."""
    if not s.permutations:
        return None
    rng = np.random.default_rng(s.seed)
    vals = [component_shares(x, decompose(x, yp, shared_rank=s.shared_rank))
            ["divergence_variance"] or 0.0
            for yp in (rng.permutation(y) for _ in range(s.permutations))]
    return float(np.mean(vals))


def _ablations(run, lm, ctx, x, y, read, points, names, s, tick) -> None:
    """Per ablated block p: the model's task accuracy and AUROC with the divergence subspace
    of p (fitted on all items) or a random subspace of equal rank erased there, and the
    probe's accuracy at p with the subspace erased (cross-fitted on the training folds)."""
    from ..models.ablation import ablated, read_numbers

    texts, pos, answers, clean = read
    dim = x.shape[2]
    for p in ablation_points(len(names), s.ablation_layers):
        li = points.index(p)
        dec = decompose(x[li], y, shared_rank=s.shared_rank)
        k = dec.divergence.shape[1]
        rnd = random_basis(dim, k, seed=s.seed + p)
        bases = {"divergence": dec.divergence, "random": rnd}
        erase = {"none": None, "random": lambda a, b, q=rnd: q,
                 "divergence": lambda a, b: decompose(a, b, shared_rank=s.shared_rank).divergence}
        where = _where(ctx, None, p, names[p])  # the context names the task
        for kind in ("none", "divergence", "random"):
            scope = {**where, "ablation": kind,
                     **({"note": f"erased rank {k}"} if kind != "none" else {})}
            if kind == "none":
                margins = clean
            else:
                with ablated(lm.model, p, bases[kind]):
                    _, margins = read_numbers(lm.model, lm.tokenizer, texts, pos, points=[],
                                              answers=answers, batch_size=s.batch_size,
                                              progress=tick)
            run.add("numbers_ablation_task_accuracy", task_accuracy(margins, y), **scope)
            run.add("numbers_ablation_task_auroc", auroc(margins, y), **scope)
            run.add("numbers_ablation_probe_accuracy", probe_accuracy(
                x[li], y, folds=s.folds, seed=s.seed, erase=erase[kind])["accuracy"], **scope)


def ablation_points(n_points: int, count: int | None) -> list[int]:
    """Block outputs 1..L to ablate at: all, or ``count`` evenly spaced ones (0: none)."""
    blocks = list(range(1, n_points - 1))
    if count is None or count >= len(blocks):
        return blocks
    picks = np.linspace(0, len(blocks) - 1, count).round().astype(int) if count else []
    return [blocks[i] for i in sorted(set(np.asarray(picks, dtype=int).tolist()))]


def study_stage(run, lm, s) -> None:
    """The numbers study (settings: n, contexts, shared_rank, folds, ablation_layers,
    batch_size, seed): records of section ``numbers``."""
    from ..models.ablation import answer_ids, read_numbers, token_index
    from .progress import progress_bar

    numbers = list(range(s.n + 1))
    ys = {t: labels(t, numbers) for t in TASKS}
    tok = lm.tokenizer
    names = ["embed", *(f"block_{i}" for i in range(1, lm.n_layers + 1)), "final_norm"]
    points = list(range(1, len(names)))
    n_abl = len(ablation_points(len(names), s.ablation_layers))
    n_task = sum(task_of(c) is not None for c in s.contexts)
    states, inputs = {}, {}
    with run.timer("numbers_read"), progress_bar(
            "numbers", len(numbers) * (len(s.contexts) + 2 * n_abl * n_task)) as tick:
        for ctx in s.contexts:
            pairs = [prompt(ctx, k) for k in numbers]
            texts = [t for t, _ in pairs]
            pos = [token_index(tok, t, u) for t, u in pairs]
            task = task_of(ctx)
            answers = answer_ids(tok, ANSWERS[task]) if task else None
            states[ctx], margins = read_numbers(lm.model, tok, texts, pos, points=points,
                                                answers=answers, batch_size=s.batch_size,
                                                progress=tick)
            if task:
                inputs[ctx] = (texts, pos, answers, margins)
                where = dict(section=SECTION, context=ctx, classes=task)
                run.add("numbers_task_accuracy", task_accuracy(margins, ys[task]), **where)
                run.add("numbers_task_auroc", auroc(margins, ys[task]), **where)
        with run.timer("numbers_geometry"):
            _geometry(run, states, ys, points, names, s)
        with run.timer("numbers_ablation"):
            for ctx, read in inputs.items():
                _ablations(run, lm, ctx, states[ctx], ys[task_of(ctx)], read, points, names,
                           s, tick)
    run.meta(numbers=dict(s, contexts=list(s.contexts), pressure=PRESSURE.strip()))
