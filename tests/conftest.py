"""Shared fixtures: tiny random causal LMs built from transformers configs, with a real
word-level tokenizer, so tests of model plumbing need no downloaded weights."""

from __future__ import annotations

import pytest
import torch

WORDS = (
    "the a an of to and in is was it that for on with as by at from this be are or "
    "cat dog bird fish tree river city house king queen man woman child light dark sun "
    "moon star water fire earth wind stone gold red blue green small large old new "
    "runs walks sings sees finds makes takes gives tells knows loves fears . , ? !"
).split()
SPECIAL = ["<pad>", "<unk>", "<s>", "</s>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<s> {{ m['role'] }} : {{ m['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<s> assistant : {% endif %}"
)


def make_tokenizer(padding_side: str = "right"):
    """A real fast tokenizer (word level, whitespace split) over a ~90-word vocabulary."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIAL + WORDS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
        eos_token="</s>", padding_side=padding_side,
    )
    tok.chat_template = CHAT_TEMPLATE
    tok.model_max_length = 64
    return tok


def make_model(arch: str = "llama", vocab_size: int | None = None, seed: int = 0):
    """A tiny randomly initialised causal LM of the given architecture (eval mode, fp32)."""
    from transformers import AutoModelForCausalLM

    vocab_size = vocab_size or len(SPECIAL) + len(WORDS)
    common = dict(vocab_size=vocab_size, pad_token_id=0, bos_token_id=2, eos_token_id=3)
    if arch == "llama":
        from transformers import LlamaConfig
        cfg = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                          num_attention_heads=4, num_key_value_heads=2,
                          max_position_embeddings=64, **common)
    elif arch == "gemma3":
        from transformers import Gemma3TextConfig
        cfg = Gemma3TextConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                               num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                               max_position_embeddings=64, sliding_window=8, **common)
    elif arch == "gpt2":
        from transformers import GPT2Config
        cfg = GPT2Config(n_embd=32, n_layer=3, n_head=4, n_positions=64, **common)
    else:
        raise ValueError(arch)
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg)
    return model.eval()


RICH_VOCAB = 1024
RICH_POSITIONS = 1024


def make_rich_tokenizer(padding_side: str = "right"):
    """A real fast byte-level BPE tokenizer that spells any text: RICH_VOCAB tokens (the 256
    bytes, SPECIAL and the merges) trained here on collapsekit's bundled data files plus
    WORDS; the same specials and chat template as :func:`make_tokenizer`. Deterministic
    (the BPE trainer ranks merges by count, then by the pair)."""
    from importlib import resources

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    data = resources.files("collapsekit.data")
    texts = [f.read_text("utf-8") for f in sorted(data.iterdir(), key=lambda f: f.name)
             if f.name.endswith((".txt", ".jsonl", ".csv"))] + [" ".join(WORDS)]
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=RICH_VOCAB, special_tokens=SPECIAL, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    assert core.get_vocab_size() == RICH_VOCAB
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
        eos_token="</s>", padding_side=padding_side,
    )
    tok.chat_template = CHAT_TEMPLATE
    tok.model_max_length = RICH_POSITIONS
    return tok


def make_rich_model(seed: int = 0):
    """A small random llama for :func:`make_rich_tokenizer`: 10 blocks of width 32 and
    RICH_POSITIONS positions, for studies the 3-block, 64-position tiny model cannot run
    (long documents, reasoning tokens, a given block such as 4 or 9)."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    cfg = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=10,
                      num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=RICH_POSITIONS, vocab_size=RICH_VOCAB,
                      pad_token_id=0, bos_token_id=2, eos_token_id=3)
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(cfg).eval()


def run_cli(monkeypatch, capsys, *args):
    """Run ``collapsekit *args`` through the real entry point: (exit code, stdout, stderr)."""
    import sys

    from collapsekit import cli

    monkeypatch.setattr(sys, "argv", ["collapsekit", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


@pytest.fixture
def tiny_tokenizer():
    return make_tokenizer()


@pytest.fixture(params=["llama", "gemma3", "gpt2"])
def tiny_arch(request):
    return request.param


@pytest.fixture
def tiny_dir(tmp_path):
    """A folder holding a saved tiny llama (safetensors) and its tokenizer: a model spec."""
    path = tmp_path / "tiny-llama"
    make_model("llama").save_pretrained(path, safe_serialization=True)
    make_tokenizer().save_pretrained(path)
    return path


@pytest.fixture
def broken_dir(tmp_path, tiny_dir):
    """A copy of ``tiny_dir`` whose safetensors files are cut to a third: corrupt weights."""
    path = tmp_path / "broken"
    path.mkdir()
    for f in tiny_dir.iterdir():
        data = f.read_bytes()
        (path / f.name).write_bytes(data[:len(data) // 3] if f.suffix == ".safetensors"
                                    else data)
    return path


@pytest.fixture
def tiny_lm():
    """(model, tokenizer) for a tiny llama."""
    return make_model("llama"), make_tokenizer()


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tiny models on one torch thread (faster for tiny matrices, and far
    faster on a shared, busy machine); restores the setting afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
