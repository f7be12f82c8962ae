"""``collapsekit finetune``: a real self-consuming fine-tune of a causal LM, generation after
generation, replace vs accumulate (Gerstgrasser et al. 2024, "Is Model Collapse
Inevitable?"), with an optional share of junk text in every batch (Xing et al. 2025, "LLMs
Can Get Brain Rot": junk-data dose-response).

Generation 0 is the loaded model. Generation g ≥ 1 starts from generation g − 1's weights and
takes ``steps`` AdamW steps on data made by generation g − 1:

- ``replace``: only the ``n_samples`` samples of generation g − 1;
- ``accumulate``: ``n_real`` human texts plus every sample of generations 0 … g − 1.

With ``--mix junk=F``, F > 0, round(F·B·(i+1)) − round(F·B·i) rows of step i's batch of B rows
are junk texts (so a generation trains on round(F·B·steps) junk rows in all; see
:func:`junk_rows`), the rest come from the strategy's pool. Rows are drawn from seeded
permutations of the pool (and of the junk texts), cycled, so every text is used once before
any is used twice.

Each generation's samples continue ``prompt_tokens``-token prefixes of human texts chosen
by a seeded draw per generation (the same prefixes for every strategy), with
:func:`collapsekit.models.sampling.sample` (content-keyed random streams, cached per
generation in ``samples/``). Per (strategy, generation): held-out perplexity and bits per
byte on human text no generation trains on, per-layer geometry of a fixed probe batch,
the policy entropy of the next-token distribution on the probe batch
(:class:`collapsekit.monitor.PolicyEntropy`, full and top-100), the training loss
and the diversity of the generation's samples (distinct-1/2, self-BLEU, mean pairwise
embedding cosine). Generation 0 is measured once and recorded under every strategy.

Only the last ``train_blocks`` decoder blocks and the final norm train (0: everything);
after each generation its trainable tensors go to ``checkpoints/<strategy>/gen<g>.safetensors``
and the run's ``finetune_progress`` metadata, so ``--resume`` continues from the last
finished generation, and gives the records of an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import math
from importlib import resources

import numpy as np

from .. import metrics
from ..params import check_number

STRATEGIES = ("replace", "accumulate")
SECTION = "finetune"
MIN_WORDS = 20  # human texts shorter than this are not used


# --- the training mix (pure, tested by hand) --------------------------------------------
def junk_share(mix: str | None) -> float:
    """The junk fraction F of ``--mix junk=F`` (0 without a mix)."""
    if not mix:
        return 0.0
    key, sep, value = mix.partition("=")
    try:
        share = float(value) if key.strip() == "junk" and sep else None
    except ValueError:
        share = None
    if share is None:
        raise ValueError(f"mix={mix!r}: write junk=F, F the fraction of every training batch "
                         "that is junk text, e.g. --mix junk=0.2")
    return check_number("mix junk", share, 0, 1)


def junk_rows(junk: float, batch_size: int, steps: int) -> list[int]:
    """Junk rows in each of ``steps`` batches of ``batch_size`` rows: ⌊F·B·(i+1) + ½⌋ −
    ⌊F·B·i + ½⌋ for step i, so the batches together hold ⌊F·B·steps + ½⌋ junk rows and each
    holds ⌊F·B⌋ or ⌈F·B⌉ of them."""
    if not 0 <= junk <= 1:
        raise ValueError(f"junk={junk}: give a fraction in [0, 1]")

    def upto(i):
        return math.floor(junk * batch_size * i + 0.5)

    return [upto(i + 1) - upto(i) for i in range(steps)]


def _cycled(rng: np.random.Generator, n: int, count: int) -> list[int]:
    """``count`` indices into n items: seeded permutations of range(n), one after another."""
    out: list[int] = []
    while len(out) < count:
        out += rng.permutation(n).tolist()
    return out[:count]


def training_batches(pool: list[str], junk_texts: list[str], *, steps: int, batch_size: int,
                     junk: float, rng: np.random.Generator) -> list[list[str]]:
    """The texts of each step's batch: :func:`junk_rows` junk texts first, then pool texts
    (both from cycled seeded permutations, the pool's drawn first)."""
    per_step = junk_rows(junk, batch_size, steps)
    n_junk = sum(per_step)
    if n_junk < steps * batch_size and not pool:
        raise ValueError("the training pool is empty")
    if n_junk and not junk_texts:
        raise ValueError("junk > 0 but there are no junk texts")
    real = iter(_cycled(rng, len(pool), steps * batch_size - n_junk) if pool else [])
    bad = iter(_cycled(rng, len(junk_texts), n_junk) if n_junk else [])
    return [[junk_texts[next(bad)] for _ in range(j)]
            + [pool[next(real)] for _ in range(batch_size - j)] for j in per_step]


# --- inputs -----------------------------------------------------------------------------
def bundled_junk() -> list[str]:
    """The bundled junk set: 48 short engagement-bait / repetitive posts written for
    collapsekit (``collapsekit/data/junk.txt``)."""
    text = resources.files("collapsekit.data").joinpath("junk.txt").read_text("utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def _junk_texts(s) -> list[str]:
    from ..io import read_texts

    return read_texts(s.junk_file) if s.junk_file else bundled_junk()


def _needed(s) -> int:
    return s.n_heldout + s.n_probe + s.n_real + s.n_samples


def _human(s) -> list[str]:
    """The first texts of at least MIN_WORDS words: of ``texts`` when given, else of the
    bundled ``human`` source."""
    from ..corpora import human_texts
    from ..io import read_texts

    if s.texts:
        return [t for t in read_texts(s.texts) if len(t.split()) >= MIN_WORDS][:_needed(s)]
    return human_texts(s.human, _needed(s), min_words=MIN_WORDS)


def check(s) -> dict:
    """Everything that can be checked before the run folder exists: strategies, the corpus
    size, the junk file, the optional LoRA adapter."""
    if len(set(s.strategies)) != len(s.strategies):
        raise ValueError(f"strategies {','.join(s.strategies)} repeat one: give each once")
    have = len(_human(s))
    if have < _needed(s):
        raise ValueError(
            f"finetune needs {_needed(s)} {s.texts or s.human} texts of at least {MIN_WORDS} words "
            f"(n_heldout {s.n_heldout} + n_probe {s.n_probe} + n_real {s.n_real} + n_samples "
            f"{s.n_samples} prompts), the corpus has {have}: lower them or give more text")
    if s.prompt_tokens >= s.max_length:
        raise ValueError(f"prompt_tokens={s.prompt_tokens} must be below max_length="
                         f"{s.max_length}")
    extra = {"corpus": str(s.texts) if s.texts else f"human:{s.human}"}
    if junk_share(s.mix) > 0 or s.junk_file:
        texts = _junk_texts(s)
        digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
        extra.update(junk_texts=s.junk_file or "bundled", junk_sha256=digest,
                     n_junk_texts=len(texts))
    return extra


# --- the study --------------------------------------------------------------------------
class _Cut:
    """Token-level cutting with the model's tokenizer."""

    def __init__(self, tok):
        self.tok = tok

    def ids(self, text: str) -> list[int]:
        return list(self.tok(text, add_special_tokens=False)["input_ids"])

    def __call__(self, text: str, n: int) -> str:
        return self.tok.decode(self.ids(text)[:n], skip_special_tokens=True)


def _sample_texts(lm, s, prompts, g: int, strategy: str | None, run):
    """(continuations, training texts prefix + continuation) of generation ``g``'s samples:
    one per prompt, cached in ``samples/``; a rerun reads the cache without the model."""
    from ..models.decoding import Decoding
    from ..models.sampling import sample

    where = f"gen{g}" if strategy is None else f"{strategy}/gen{g}"
    dec = Decoding(temperature=s.temperature, max_new_tokens=s.max_new_tokens, chat=False)
    out = sample(lm.model, lm.tokenizer, prompts, k=1, decoding=dec, seed=s.seed,
                 model_key=f"{lm.weight_hash}:finetune:{where}",
                 cache=run.file(f"samples/{where}.jsonl"), batch_size=s.sample_batch)
    cont = [x.text for x in out]
    train = [lm.tokenizer.decode(list(lm.tokenizer(x.prompt)["input_ids"])
                                 + x.token_ids[:len(x.token_ids) - (x.finish_reason == "eos")],
                                 skip_special_tokens=True) for x in out]
    return cont, train


def _diversity(texts: list[str], embed: bool) -> dict[str, float]:
    out = {}
    for name, fn in (("distinct_1", lambda t: metrics.distinct_n(t, 1)),
                     ("distinct_2", lambda t: metrics.distinct_n(t, 2)),
                     ("self_bleu", metrics.self_bleu)):
        try:
            out[name] = float(fn(texts))
        except ValueError:  # e.g. every sample shorter than two words
            out[name] = float("nan")
    if embed:
        from ..models.embedders import embed as embed_texts

        out["mean_pairwise_cosine"] = float(metrics.mean_pairwise_cosine(embed_texts(texts)))
    return out


def _measure(lm, s, heldout: list[str], probe: list[str]):
    """(scalars, geometry accumulators) of the model as it is now."""
    from ..models import finetune as ft
    from ..models.perplexity import document_nll
    from ..monitor import PolicyEntropy
    from .geometry import accumulate

    nll = document_nll(lm.model, lm.tokenizer, heldout, batch_size=s.eval_batch)
    out = {"perplexity": nll.pooled_perplexity(), "bits_per_byte": nll.pooled_bits_per_byte()}
    ent = PolicyEntropy()
    for logits, mask in ft.logits_batches(lm.model, lm.tokenizer, probe,
                                          max_length=s.max_length, batch_size=s.eval_batch):
        ent.update(logits, mask)
    out.update(ent.compute())
    geo = accumulate(lm, probe, batch_size=s.eval_batch, max_length=s.max_length)
    return out, geo


def _record(run, strategies, g: int, scalars: dict, geo, diversity: dict) -> None:
    from .geometry import record

    for st in strategies:
        for name, value in scalars.items():
            run.add(name, value, section=SECTION, strategy=st, generation=g)
        for name, value in diversity.items():
            run.add(name, value, section="finetune diversity", strategy=st, generation=g)
        record(run, geo, section="finetune geometry", strategy=st, generation=g)


def _prompts(s, pool: list[str], g: int) -> list[tuple[int, str]]:
    pick = np.random.default_rng([s.seed, g]).choice(len(pool), size=s.n_samples,
                                                     replace=False)
    return [(int(i), pool[i]) for i in sorted(pick)]


def study_stage(run, lm, s) -> None:
    """Run every strategy's generations not yet finished (see the module docstring)."""
    from ..models import finetune as ft
    from .progress import progress_bar

    tok, cut = lm.tokenizer, _Cut(lm.tokenizer)
    texts = _human(s)
    n1, n2, n3 = s.n_heldout, s.n_heldout + s.n_probe, s.n_heldout + s.n_probe + s.n_real
    heldout = [cut(t, s.max_length) for t in texts[:n1]]
    probe = [cut(t, s.max_length) for t in texts[n1:n2]]
    real = [cut(t, s.max_length) for t in texts[n2:n3]]
    prefixes = [cut(t, s.prompt_tokens) for t in texts[n3:]]
    junk = junk_share(s.mix)
    junk_texts = [cut(t, s.max_length) for t in _junk_texts(s)] if junk > 0 else []
    train_length = max(s.max_length, s.prompt_tokens + s.max_new_tokens)
    names = ft.freeze_all_but_last(lm.model, s.train_blocks)
    base = ft.trainable_state(lm.model)
    run.meta(finetune_trainable_tensors=len(names),
             finetune_trainable_parameters=int(sum(v.numel() for v in base.values())))
    progress = dict(run.to_dict().get("finetune_progress") or {})
    embed = s.embedding
    steps_rows = list(run.to_dict().get("finetune_steps") or [])

    def save_progress():
        run.meta(finetune_progress=progress, finetune_steps=steps_rows)
        run.write()

    samples = {}  # (strategy or None, g) -> training texts

    def draw(g, st):
        key = (None if g == 0 else st, g)
        if key not in samples:
            cont, train = _sample_texts(lm, s, _prompts(s, prefixes, g), g, key[0], run)
            samples[key] = (cont, train)
        return samples[key]

    with run.timer("finetune generation 0"):
        if not progress.get("gen0"):
            ft.load_trainable(lm.model, base)
            scalars, geo = _measure(lm, s, heldout, probe)
            cont, _ = draw(0, None)
            _record(run, s.strategies, 0, scalars, geo, _diversity(cont, embed))
            progress["gen0"] = True
            save_progress()

    for si, st in enumerate(s.strategies):
        done = int(progress.get(st, 0))
        if done >= s.generations:
            continue
        ft.load_trainable(lm.model, base if done == 0 else ft.read_checkpoint(
            run.file(f"checkpoints/{st}/gen{done}.safetensors")))
        with run.timer(f"finetune {st}"), progress_bar(f"finetune {st}",
                                                      s.generations - done) as tick:
            for g in range(done + 1, s.generations + 1):
                if st == "replace":
                    pool = draw(g - 1, st)[1]
                else:
                    pool = real + [t for h in range(g) for t in draw(h, st)[1]]
                rng = np.random.default_rng([s.seed, STRATEGIES.index(st), g])
                batches = training_batches(pool, junk_texts, steps=s.steps,
                                           batch_size=s.batch_size, junk=junk, rng=rng)
                ft.manual_seed(int(rng.integers(2 ** 62)))
                encoded = (ft.encode_batch(tok, b, max_length=train_length,
                                           device=lm.device) for b in batches)
                losses = ft.train_losses(lm.model, encoded, lr=s.lr)
                n_junk = sum(junk_rows(junk, s.batch_size, s.steps))
                first = (g - 1) * s.steps
                for i, (loss, j) in enumerate(zip(losses, junk_rows(junk, s.batch_size,
                                                                    s.steps))):
                    steps_rows.append({"strategy": st, "generation": g, "step": first + i + 1,
                                       "loss": loss, "junk_rows": j})
                    run.add("train_loss", loss, section="finetune steps", strategy=st,
                            step=first + i + 1)
                scalars, geo = _measure(lm, s, heldout, probe)
                ok = [x for x in losses if x is not None]
                scalars.update(
                    train_loss=float(np.mean(ok)) if ok else None,
                    train_junk_fraction=n_junk / (s.steps * s.batch_size),
                    real_fraction=(len(real) / len(pool)) if st == "accumulate" else 0.0,
                    train_pool=len(pool))
                cont, _ = draw(g, st)
                _record(run, [st], g, scalars, geo, _diversity(cont, embed))
                ft.save_trainable(lm.model, run.file(f"checkpoints/{st}/gen{g}.safetensors"))
                progress[st] = g
                save_progress()
                tick(1)
    run.table("finetune_steps", steps_rows or [{"strategy": None}])
    run.table("finetune_generations", generation_rows(run.records))
    run.write()


def generation_rows(records: list[dict]) -> list[dict]:
    """One row per (strategy, generation): the study's scalars, diversity, and RankMe /
    anisotropy at the last layer (the final norm) of the probe geometry."""
    rows: dict = {}
    last = max((r["layer"] for r in records if r.get("section") == "finetune geometry"),
               default=None)
    for r in records:
        sec = r.get("section")
        if sec not in (SECTION, "finetune diversity", "finetune geometry"):
            continue
        if sec == "finetune geometry" and (r["layer"] != last
                                           or r["metric"] not in ("rankme", "anisotropy")):
            continue
        key = (r["strategy"], r["generation"])
        name = r["metric"] + ("_last_layer" if sec == "finetune geometry" else "")
        rows.setdefault(key, {"strategy": key[0], "generation": key[1]})[name] = r["value"]
    return [rows[k] for k in sorted(rows, key=lambda k: (str(k[0]), k[1]))]
