"""The exec credential plugin hands out a cached token while it is young, so that a helm
process pays a process start, not a boto3 import and a signature, for its credential."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tasks.aws import token


def credential(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert token.main(["--cluster", "c", "--region", "us-east-1", *args]) == 0
    return json.loads(capsys.readouterr().out)["status"]


def test_a_young_cached_token_is_handed_out_again_and_a_stale_one_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    cache = tmp_path / "token.json"
    first = credential(capsys, "--lifetime", "60", "--cache", str(cache))
    assert first["token"].startswith(token.TOKEN_PREFIX)
    assert oct(cache.stat().st_mode & 0o777) == "0o600"
    assert credential(capsys, "--lifetime", "60", "--cache", str(cache))["token"] == first["token"]

    kept = json.loads(cache.read_text())
    cache.write_text(json.dumps({**kept, "minted": time.time() - 59}))  # 1 s of 60 left
    again = credential(capsys, "--lifetime", "60", "--cache", str(cache))
    assert json.loads(cache.read_text())["minted"] > time.time() - 5  # minted anew
    assert again["token"].startswith(token.TOKEN_PREFIX)


def test_without_a_cache_every_call_mints(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    assert credential(capsys)["token"].startswith(token.TOKEN_PREFIX)
