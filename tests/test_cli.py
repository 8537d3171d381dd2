"""The command line follows its ecosystem's conventions: --help everywhere, meaningful exit codes."""

from __future__ import annotations

import pytest

from trainwreck.cli import MIN_MEMORY_MIB, build_parser, main, physical_memory_mib

from .conftest import CASES, ONE_WORKER, run_cli

COMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)


def test_top_level_help():
    r = run_cli("--help")
    assert r.returncode == 0 and "exit codes" in r.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command):
    r = run_cli(command, "--help")
    assert r.returncode == 0, r.stderr
    assert f"usage: trainwreck {command}" in r.stdout


def test_bad_option_exits_2():
    assert run_cli("run", "--no-such-flag").returncode == 2


PHYSICAL_MIB = physical_memory_mib()
ABSURD = [("--jobs", "0", "a whole number of worker processes, at least 1; got '0'"),
          ("--jobs", "-3", "a whole number of worker processes, at least 1; got '-3'"),
          ("--timeout", "0", "a finite number of seconds greater than 0; got '0'"),
          ("--timeout", "-5", "a finite number of seconds greater than 0; got '-5'"),
          ("--timeout", "nan", "a finite number of seconds greater than 0; got 'nan'"),
          ("--memory-limit", "1", f"MiB per worker from {MIN_MEMORY_MIB} to this machine's"),
          ("--memory-limit", str(MIN_MEMORY_MIB - 1), f"MiB per worker from {MIN_MEMORY_MIB} to this machine's")]
if PHYSICAL_MIB:
    ABSURD.append(("--memory-limit", str(PHYSICAL_MIB + 1), f"to this machine's {PHYSICAL_MIB} MiB"))


@pytest.mark.parametrize("command", ["run", "bench", "check-case"])
@pytest.mark.parametrize("option,value,expected", ABSURD)
def test_absurd_limits_are_refused_before_anything_runs(tmp_path, capsys, command, option, value, expected):
    good = str(CASES / "optimization" / "lr-divergence.yaml")
    target = [good] if command == "check-case" else ["--case", "lr-divergence"]
    with pytest.raises(SystemExit) as e:
        main([command, *target, "--results", str(tmp_path / "res"), "-q", option, value])
    assert e.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"trainwreck {command}: error: argument {option}") and expected in line, line
    assert not (tmp_path / "res").exists()


def test_refused_option_is_exit_2_from_the_command():
    r = run_cli("run", "--jobs", "0")
    assert r.returncode == 2 and "argument --jobs/-j: expected a whole number" in r.stderr
    assert "Traceback" not in r.stderr


def test_small_but_sensible_limits_are_accepted():
    args = build_parser().parse_args(["run", "--timeout", "0.5", "--memory-limit", str(MIN_MEMORY_MIB), "-j", "1"])
    assert (args.timeout, args.memory_limit, args.jobs) == (0.5, MIN_MEMORY_MIB, 1)
    default = build_parser().parse_args(["run"]).memory_limit
    assert MIN_MEMORY_MIB <= default <= (PHYSICAL_MIB or default)


def test_unknown_case_filter_exits_2_with_suggestion():
    r = run_cli("run", "--case", "lr-divergense", "-q")
    assert r.returncode == 2 and "did you mean 'lr-divergence'" in r.stderr and "Traceback" not in r.stderr


def test_score_without_cache_lists_what_is_missing_and_what_to_run(tmp_path):
    """score never trains: the missing records are the failure (exit 1), with the command that makes them."""
    r = run_cli("score", "--results", str(tmp_path), "--case", "lr-divergence", "-q")
    assert r.returncode == 1 and "missing" in r.stderr and "trainwreck run" in r.stderr, r.stderr


def test_ls_registries():
    for what in ("datasets", "models", "transforms", "pipelines", "measures", "cases"):
        r = run_cli("ls", what)
        assert r.returncode == 0 and r.stdout.strip(), what


def test_new_case_then_validate(tmp_path):
    r = run_cli("new-case", "optimization/my-new-case", "--cases", str(tmp_path))
    assert r.returncode == 0, r.stderr
    path = tmp_path / "optimization" / "my-new-case.yaml"
    assert path.exists()
    v = run_cli("validate", str(path))
    assert v.returncode == 0, v.stderr
    again = run_cli("new-case", "optimization/my-new-case", "--cases", str(tmp_path))
    assert again.returncode == 2 and "exists" in again.stderr


@pytest.mark.slow
def test_new_case_check_case_round_trip(tmp_path, corpus_results, results_dir):
    """The template `new-case` writes is a working case: check-case trains it and every oracle holds;
    break its fault and check-case says which oracle fails, with the measured numbers, and exits 1."""
    r = run_cli("new-case", "optimization/my-first-case", "--cases", str(tmp_path))
    assert r.returncode == 0, r.stderr
    path = tmp_path / "optimization" / "my-first-case.yaml"
    ok = run_cli("check-case", str(path), "--results", str(results_dir), "-q", *ONE_WORKER)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("oracle holds") == 6 and "loss_nonfinite = 1" in ok.stdout

    path.write_text(path.read_text().replace("compile: {learning_rate: 0.1}", "compile: {learning_rate: 0.02}"))
    bad = run_cli("check-case", str(path), "--results", str(results_dir), "-q", *ONE_WORKER)
    assert bad.returncode == 1
    assert "ORACLE FAILS my-first-case broken" in bad.stdout and "loss_nonfinite = 0 [>= 1] FAILS" in bad.stdout


@pytest.mark.parametrize("args, expected", [
    (["validate", "/nonexistent.yaml"], "/nonexistent.yaml: no such file"),
    (["validate", "cases/architecture"], "cases/architecture: is a directory"),
    (["check-case", "/nonexistent.yaml"], "/nonexistent.yaml: no such file"),
    (["validate", "--cases", "/typo"], "/typo: no such case directory"),
    (["reproduce", "/nonexistent.json"], "/nonexistent.json: No such file"),
    (["reproduce", "README.md"], "README.md: not a trainwreck table"),
], ids=["missing-case", "folder-as-case", "check-missing", "missing-corpus", "missing-table", "not-a-table"])
def test_path_typos_are_one_line_usage_errors(args, expected):
    """An everyday typo is exit 2 with the path and what was expected, never a traceback or '0 cases valid'."""
    r = run_cli(*args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert expected in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- fail early, before any training

def _trained(results) -> list:
    runs = results / "runs"
    return sorted(runs.glob("*.json")) if runs.exists() else []


def test_bad_detector_spec_is_reported_before_training(tmp_path):
    r = run_cli("bench", "--case", "lr-divergence", "--seeds", "0", "--no-sweeps", "--results", str(tmp_path),
                "--detector-spec", "no_such_module:Nothing", "--no-plots")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "no_such_module:Nothing" in r.stderr and "Traceback" not in r.stderr
    assert _trained(tmp_path) == [], "trained before resolving the detectors"


def test_unwritable_results_directory_is_refused_before_training(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    r = run_cli("run", "--case", "lr-divergence", "--seeds", "0", "--results", str(blocker / "results"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "cannot write run records" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("command", ["run", "bench", "check-case"])
def test_a_seed_filter_that_matches_no_run_is_exit_2(tmp_path, command):
    target = [str(CASES / "optimization" / "lr-divergence.yaml")] if command == "check-case" else \
        ["--case", "lr-divergence"]
    r = run_cli(command, *target, "--seeds", "7", "--results", str(tmp_path))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "no run matches the filters: seeds [7]" in r.stderr
    assert _trained(tmp_path) == []


def test_run_specs_carry_their_backend_and_device(corpus):
    import inspect

    from trainwreck.run import execute, plan

    specs = plan(corpus[:1], backend="jax", device="cpu", threads=2, env={"TF_ENABLE_ONEDNN_OPTS": "0"})
    assert {(s.backend, s.device, s.setting.threads, s.setting.env) for s in specs} == \
        {("jax", "cpu", 2, (("TF_ENABLE_ONEDNN_OPTS", "0"),))}
    assert not {"backend", "device", "threads", "env"} & set(inspect.signature(execute).parameters)
