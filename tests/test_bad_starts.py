"""Bad starts fail in one line with exit code 2 before anything is written, and the
corrected command then runs without --force: a mistyped path, a device this torch cannot
use, corrupt weights."""

import pytest
import torch

from conftest import run_cli


def _fails(monkeypatch, capsys, *args, message):
    capsys.readouterr()  # drop what the fixtures printed
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and message in err, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_mistyped_local_path_is_a_path_not_a_hub_id(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    _fails(monkeypatch, capsys, "geometry", "--model", "./my-checkpint", "--out", "g",
           message="no such folder or file my-checkpint")
    assert not (tmp_path / "g").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_cuda_without_cuda_fails_before_the_folder(monkeypatch, capsys, tmp_path, tiny_dir):
    out = tmp_path / "g"
    _fails(monkeypatch, capsys, "geometry", "--model", str(tiny_dir), "--device", "cuda",
           "--out", str(out), message="no CUDA device")
    _fails(monkeypatch, capsys, "geometry", "--model", str(tiny_dir), "--device", "tpu9",
           "--out", str(out), message="unknown device 'tpu9'")
    assert not out.exists()


def test_corrupt_weights_leave_no_run_behind(monkeypatch, capsys, tmp_path, tiny_dir,
                                            broken_dir):
    broken = broken_dir
    out = tmp_path / "run"
    args = ("geometry", "--quick", "--param", "n=4", "--param", "max_length=16",
            "--no-report", "--out", str(out))
    _fails(monkeypatch, capsys, *args, "--model", str(broken),
           message="look truncated or corrupt")
    assert not out.exists()
    code, _, err = run_cli(monkeypatch, capsys, *args, "--model", str(tiny_dir))  # no --force
    assert code == 0, err
    assert (out / "metrics.json").is_file()


@pytest.mark.parametrize("args, message", [
    (("scan", "--quick", "--param", "diversity.n_prompts=0"), "n_prompts=0"),
    (("scan", "--quick", "--param", "diversity.n_prompts=-1"), "n_prompts=-1"),
    (("scan", "--quick", "--param", "diversity.temperature=-1"), "temperature=-1"),
    (("scan", "--quick", "--param", "diversity.top_p=0"), "top_p=0.0"),
    (("diversity", "--top-k", "-3"), "top_k=-3"),
    (("geometry", "--n", "-1"), "n=-1"),
    (("passkey", "--trials", "0"), "trials=0"),
    (("drift", "--edits", "0"), "edits=0"),
    (("drift", "--n", "0"), "n=0"),
])
def test_counts_and_settings_out_of_range_are_refused_not_replaced(monkeypatch, capsys,
                                                                   tmp_path, args, message):
    out = tmp_path / "out"
    _fails(monkeypatch, capsys, *args, "--out", str(out), message=message)
    assert not out.exists()


def test_ctrl_c_exits_130_with_the_resume_line(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "m"
    proc = subprocess.Popen(
        [sys.executable, "-m", "collapsekit.cli", "manifold", "--out", str(out), "--param",
         "rounds=5000000"], stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not (out / "metrics.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the run exists: the stage is running
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == ("interrupted: what was written is kept; rerun "
                                            "with --resume to continue")


def test_a_truncated_gguf_is_one_line(monkeypatch, capsys, tmp_path):
    from collapsekit.models.registry import embedded_gguf

    good = embedded_gguf("smollm2-135m-instruct")
    bad = tmp_path / "cut.gguf"
    with open(good, "rb") as src:
        bad.write_bytes(src.read(4 << 20))  # the header and the first 4 MiB of tensors
    monkeypatch.setenv("COLLAPSEKIT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "g"
    capsys.readouterr()
    code, _, err = run_cli(monkeypatch, capsys, "geometry", "--model", str(bad), "--out",
                           str(out))
    last = err.strip().splitlines()[-1]  # after the "dequantizing … once" progress line
    assert code == 2 and "Traceback" not in err
    assert last.startswith("error: could not read the GGUF file") and "truncated" in last
    assert not out.exists()


def test_user_files_in_out_survive_runs_with_and_without_force(monkeypatch, capsys,
                                                              tmp_path):
    out = tmp_path / "m"
    (out / "plots").mkdir(parents=True)
    (out / "tables").mkdir()
    mine = {"notes.txt": "mine", "plots/mine.png": "png", "tables/mine.csv": "a\n1\n",
            "tables/mine.parquet": "pq"}
    for rel, text in mine.items():
        (out / rel).write_text(text)
    args = ("manifold", "--quick", "--param", "rounds=3", "--out", str(out))
    for extra in ((), ("--force",), ("--force", "--param", "dim=4")):
        code, _, err = run_cli(monkeypatch, capsys, *args, *extra)
        assert code == 0, err
        assert {rel: (out / rel).read_text() for rel in mine} == mine
    (out / "index.html").write_text("<html>someone else's</html>")
    _fails(monkeypatch, capsys, *args, "--force", "--param", "dim=5",
           message="index.html was not written by collapsekit")
    assert (out / "index.html").read_text() == "<html>someone else's</html>"


@pytest.mark.parametrize("args, message", [
    (("scan", "--k", "abc"), "No such option '--k'"),
    (("--bogus",), "No such option '--bogus'"),
    (("compare",), "Missing argument 'RUNS...'"),
    (("nosuchcommand",), "No such command 'nosuchcommand'"),
    (("geometry", "--seed", "x"), "'x' is not a valid integer"),
    (("geometry", "--dtype", "float8"), "Invalid value for '--dtype'"),
])
def test_usage_errors_are_one_line_with_exit_2(monkeypatch, capsys, args, message):
    _fails(monkeypatch, capsys, *args, message=message)


def test_version_and_an_out_path_with_markup(monkeypatch, capsys, tmp_path):
    code, out, err = run_cli(monkeypatch, capsys, "--version")
    assert code == 0 and out.strip() == __import__("collapsekit").__version__
    out_dir = tmp_path / "run[/x]"  # rich markup in a path: printed as it is
    code, _, err = run_cli(monkeypatch, capsys, "manifold", "--quick", "--param", "rounds=2",
                           "--no-report", "--out", str(out_dir))
    assert code == 0 and str(out_dir / "metrics.json") in err.replace("\n", "")
