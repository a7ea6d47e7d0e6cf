"""Schemathesis fuzzes every operation of the OpenAPI spec, as an admin and as a participant:
whatever it sends, the server answers without a 5xx."""

import subprocess
import sys
from pathlib import Path

import pytest

ST = Path(sys.executable).with_name("st")


@pytest.mark.slow
@pytest.mark.parametrize("role", ["admin", "participant"])
def test_no_server_error_anywhere_in_the_spec(server, role):
    token = server.admin_token if role == "admin" else server.participant("fuzz").token
    proc = subprocess.run(
        [str(ST), "run", f"{server.url}/openapi.json", "--checks", "not_a_server_error",
         "-H", f"Authorization: Bearer {token}", "--max-examples", "30", "--no-color"],
        capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + server.log_tail()
    assert "Tested: " in proc.stdout
