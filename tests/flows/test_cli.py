"""The casedesk command as a person uses it: readable output, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.cli import main
from flows.cli_support import clip, display_width, table

ROOT = Path(__file__).parents[2]


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CASEDESK_")}
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        cwd=cwd,
        env={**environment, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_config_check_masks_secrets(tmp_path: Path) -> None:
    (tmp_path / "casedesk.toml").write_text(
        '[outgoing]\nsigning_secret = "very-secret-value"\n', encoding="utf-8"
    )
    result = run_cli(["config", "check"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "very-secret-value" not in result.stdout
    assert "outgoing.signing_secret = **********" in result.stdout
    assert result.stdout.rstrip().endswith("ok")


def test_a_bad_settings_file_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "casedesk.toml").write_text("batch_size = 'many'\n", encoding="utf-8")
    result = run_cli(["cases", "list"], tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert "error: invalid settings in" in result.stderr and "'batch_size'" in result.stderr


@pytest.mark.parametrize("command", [["run"], ["jira", "sync"]])
def test_a_bad_rules_file_stops_a_run_with_one_line(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "rules.toml").write_text(
        '[[rule]]\nid = "x"\nthen.priority = "P9"\n', encoding="utf-8"
    )
    (tmp_path / "casedesk.toml").write_text(
        'rules_path = "rules.toml"\n[jira]\nenabled = true\nurl = "http://127.0.0.1:9"\n'
        'user = "bot@example.com"\ntoken = "t"\nproject = "SUP"\n',
        encoding="utf-8",
    )
    result = run_cli(command, tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: {tmp_path / 'rules.toml'}:3 rule 'x': then.priority: "
        "Input should be 'P0', 'P1' or 'P2'"
    )
    assert not (tmp_path / "var").exists()  # nothing started: no store, no mail read


def test_an_unknown_case_is_one_line(tmp_path: Path) -> None:
    result = run_cli(["cases", "show", "202405-999"], tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: no case numbered '202405-999'"


def test_an_unknown_status_filter_lists_the_allowed_ones(tmp_path: Path) -> None:
    result = run_cli(["cases", "list", "--status", "done"], tmp_path)
    assert result.returncode == 1
    assert "unknown CaseStatus 'done'" in result.stderr and "triage" in result.stderr


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cases", "frobnicate"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_tables_align_chinese_and_latin() -> None:
    rendered = table([{"a": "张伟", "b": "x"}, {"a": "Emily", "b": "y"}]).splitlines()
    # The second column starts at the same terminal column on every row.
    starts = [display_width(line[: len(line) - 1]) for line in rendered[2:]]
    assert starts == [7, 7]
    assert table([]) == "(none)"


def test_long_cells_are_clipped_to_their_terminal_width() -> None:
    assert clip("登录系统提示验证码失效", 9) == "登录系统…"
    assert display_width(clip("登录系统提示验证码失效", 9)) <= 9
    assert clip("short", 9) == "short"
