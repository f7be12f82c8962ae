"""Capture on every decoder family of issue 15, each a tiny random model built from its
transformers config: per-layer states against HF's ``output_hidden_states`` with padding on
either side, the blocks / final norm the generic rule finds, attention entropy unchanged
between sdpa-loaded and eager models, and architectures it must refuse or run without
attention."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers as T
from conftest import SPECIAL, WORDS, make_tokenizer
from test_capture import _entropy_reference

from collapsekit.models.capture import (
    NO_ATTENTION, UnsupportedArchitecture, attention_entropy_reducer, iter_capture, layout,
)

V = len(SPECIAL) + len(WORDS)
IDS = dict(vocab_size=V, pad_token_id=0, bos_token_id=2, eos_token_id=3)
ATTN = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
            max_position_embeddings=64)
GQA = dict(ATTN, num_key_value_heads=1)
# family → (config, blocks path, final-norm path); 2 blocks of width 16 each
FAMILIES = {
    "gpt_neox": (lambda: T.GPTNeoXConfig(**ATTN, **IDS), "gpt_neox.layers",
                 "gpt_neox.final_layer_norm"),
    "opt": (lambda: T.OPTConfig(hidden_size=16, ffn_dim=32, num_hidden_layers=2,
                                num_attention_heads=2, max_position_embeddings=64,
                                word_embed_proj_dim=16, **IDS),
            "model.decoder.layers", "model.decoder.final_layer_norm"),
    "opt-350m": (lambda: T.OPTConfig(hidden_size=16, ffn_dim=32, num_hidden_layers=2,
                                     num_attention_heads=2, max_position_embeddings=64,
                                     word_embed_proj_dim=8, do_layer_norm_before=False,
                                     **IDS),
                 "model.decoder.layers", "model.decoder.project_out"),
    "phi": (lambda: T.PhiConfig(**ATTN, **IDS), "model.layers", "model.final_layernorm"),
    "falcon": (lambda: T.FalconConfig(hidden_size=16, num_hidden_layers=2,
                                      num_attention_heads=2, max_position_embeddings=64,
                                      **IDS), "transformer.h", "transformer.ln_f"),
    "bloom": (lambda: T.BloomConfig(hidden_size=16, n_layer=2, n_head=2, **IDS),
              "transformer.h", "transformer.ln_f"),
    "mamba": (lambda: T.MambaConfig(hidden_size=16, state_size=4, num_hidden_layers=2,
                                    expand=2, conv_kernel=4, **IDS),
              "backbone.layers", "backbone.norm_f"),
    "qwen2": (lambda: T.Qwen2Config(**GQA, **IDS), "model.layers", "model.norm"),
    "mistral": (lambda: T.MistralConfig(**GQA, sliding_window=4, **IDS), "model.layers",
                "model.norm"),
    "gemma2": (lambda: T.Gemma2Config(**GQA, head_dim=8, sliding_window=4, **IDS),
               "model.layers", "model.norm"),
    "gemma3": (lambda: T.Gemma3TextConfig(**GQA, head_dim=8, sliding_window=4, **IDS),
               "model.layers", "model.norm"),
    "llama": (lambda: T.LlamaConfig(**GQA, **IDS), "model.layers", "model.norm"),
    "gpt2": (lambda: T.GPT2Config(n_embd=16, n_layer=2, n_head=2, n_positions=64, **IDS),
             "transformer.h", "transformer.ln_f"),
    "gptj": (lambda: T.GPTJConfig(n_embd=16, n_layer=2, n_head=2, rotary_dim=4,
                                  n_positions=64, **IDS), "transformer.h", "transformer.ln_f"),
    "rwkv": (lambda: T.RwkvConfig(hidden_size=16, num_hidden_layers=2, attention_hidden_size=16,
                                  intermediate_size=32, context_length=64, **IDS),
             "rwkv.blocks", "rwkv.ln_out"),
}
NO_EMBED_STATE = {"mamba", "rwkv"}  # HF's hidden_states: blocks 1..L and the final norm
NO_ATTENTION_FAMILIES = {"mamba", "rwkv"}
TEXTS = ["the cat runs . the dog sees a bird in the river of gold and the king loves the queen",
         "a small fish", "the old man tells the child of the sun"]
_MODELS: dict = {}


def model_for(family: str, eager: bool = False):
    """The family's tiny model (loaded with its default attention, sdpa where it has it) or
    an eager twin with the same weights."""
    key = (family, eager)
    if key not in _MODELS:
        cfg = FAMILIES[family][0]()
        if eager:
            cfg._attn_implementation = "eager"
        torch.manual_seed(0)
        model = T.AutoModelForCausalLM.from_config(cfg).eval()
        if eager:
            model.load_state_dict(model_for(family).state_dict())
        _MODELS[key] = model
    return _MODELS[key]


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread):
    yield


@pytest.mark.parametrize("family", FAMILIES)
def test_layout_is_found_from_the_model_structure(family):
    _, blocks, final = FAMILIES[family]
    found = layout(model_for(family))
    assert (found.blocks_path, found.final_path, len(found.blocks)) == (blocks, final, 2)
    info = found.describe()
    if family in NO_ATTENTION_FAMILIES:
        assert found.attention == {} and info["attention"] == NO_ATTENTION
    else:
        assert sorted(found.attention) == [1, 2] and "in 2 of 2 blocks" in info["attention"]


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("family", FAMILIES)
def test_states_match_output_hidden_states_of_each_text_alone(family, side):
    """Every capture point of every real token in a padded batch equals HF's own hidden
    state of that text run alone; block L is the final module's input; logits too."""
    model, tok = model_for(family), make_tokenizer(side)
    (batch,) = list(iter_capture(model, tok, TEXTS, logits=True))
    assert len(batch.hidden) == 4 and not batch.mask.all()
    final = layout(model).final
    for i, text in enumerate(TEXTS):
        ids = torch.tensor([tok(text)["input_ids"]])
        with torch.no_grad():
            ref = model(input_ids=ids, output_hidden_states=True, use_cache=False)
        ours = [h[i][batch.mask[i]] for h in batch.hidden]
        theirs = list(ref.hidden_states)
        pairs = [(1, 0), (2, 1), (3, 2)] if family in NO_EMBED_STATE else [(0, 0), (1, 1),
                                                                            (3, 2)]
        for a, b in pairs:
            torch.testing.assert_close(ours[a], theirs[b][0], atol=2e-5, rtol=1e-4)
        with torch.no_grad():
            torch.testing.assert_close(final(ours[2]), ours[3], atol=2e-5, rtol=1e-4)
        torch.testing.assert_close(batch.logits[i][batch.mask[i]], ref.logits[0], atol=2e-5,
                                   rtol=1e-4)
    short = batch.mask[1].nonzero().flatten().tolist()
    on_left = side == "left" and family not in ("bloom", "mamba", "rwkv")  # no position ids
    width, k = batch.mask.shape[1], len(TEXTS[1].split())
    assert short == (list(range(width - k, width)) if on_left else list(range(k)))


@pytest.mark.parametrize("family", sorted(set(FAMILIES) - NO_ATTENTION_FAMILIES))
def test_attention_entropy_same_as_eager_output_attentions(family):
    """Loaded with its default attention (sdpa for most), capture switches to eager for
    the pass and back: the entropies equal those of HF's output_attentions of an eager
    twin, with the model's sliding windows."""
    model, tok = model_for(family), make_tokenizer("left")
    impl = model.config._attn_implementation
    (batch,) = list(iter_capture(model, tok, TEXTS, attention_reducer=attention_entropy_reducer))
    assert model.config._attn_implementation == impl
    positions = (batch.mask.long().cumsum(-1) - 1).clamp(min=0)
    eager = model_for(family, eager=True)
    kw = {"position_ids": positions} if family not in ("bloom",) else {}
    with torch.no_grad():
        ref = eager(batch.input_ids, attention_mask=batch.mask.long(), output_attentions=True,
                    use_cache=False, **kw)
    types = getattr(model.config, "layer_types", None) or ["full_attention"] * 2
    window = getattr(model.config, "sliding_window", None)
    mask = batch.mask.numpy()
    for layer in (1, 2):
        w = window if types[layer - 1] == "sliding_attention" or family == "mistral" else None
        ent, norm, rows, norm_rows = _entropy_reference(
            ref.attentions[layer - 1].double().numpy(), mask, w)
        got = batch.attention[layer]
        np.testing.assert_allclose(got["entropy_sum"], ent, rtol=1e-5)
        np.testing.assert_allclose(got["norm_entropy_sum"], norm, rtol=1e-5)
        assert (got["rows"], got["norm_rows"]) == (rows, norm_rows)


@pytest.mark.parametrize("family", sorted(NO_ATTENTION_FAMILIES))
def test_no_attention_architecture_captures_the_residual_stream(family):
    (batch,) = list(iter_capture(model_for(family), make_tokenizer(), TEXTS,
                                 attention_reducer=attention_entropy_reducer))
    assert batch.attention == {} and all(h is not None for h in batch.hidden)


def test_parallel_sublayer_lists_are_refused():
    """XLM keeps attentions, norms and FFNs in parallel lists: no list of whole blocks,
    so the chain check refuses it instead of capturing the FFN outputs."""
    torch.manual_seed(0)
    model = T.XLMWithLMHeadModel(T.XLMConfig(emb_dim=16, n_layers=2, n_heads=2, **IDS)).eval()
    with pytest.raises(UnsupportedArchitecture, match="do not run once each, in order"):
        layout(model)


MLP_OUTPUT = {"gpt_neox": "mlp.dense_4h_to_h", "opt": "fc2", "opt-350m": "fc2", "phi": "mlp.fc2",
              "falcon": "mlp.dense_4h_to_h", "bloom": "mlp.dense_4h_to_h", "gpt2": "mlp.c_proj",
              "gptj": "mlp.fc_out", "rwkv": "feed_forward.value"}


@pytest.mark.parametrize("family", FAMILIES)
def test_weight_edits_find_each_family_mlp_output(family):
    """drift's rank-one edits: the MLP output matrix of every family, and a clear
    NotApplicable (a skipped probe in a scan) for Mamba, which has no MLP."""
    from collapsekit.errors import NotApplicable
    from collapsekit.models.editing import mlp_output_matrix

    model = model_for(family)
    if family == "mamba":
        with pytest.raises(NotApplicable, match="has no MLP"):
            mlp_output_matrix(model, 1)
        return
    name, weight = mlp_output_matrix(model, 1)
    want = MLP_OUTPUT.get(family, "mlp.down_proj")
    assert name == f"{FAMILIES[family][1]}.1.{want}.weight"
    assert weight is model.get_parameter(name) and weight.ndim == 2
