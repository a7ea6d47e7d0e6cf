"""Bad input gets a clear error and loses nothing; roles are enforced on every route."""

import socket
import threading
import time

import httpx
import pytest

from participants.sdk import ArenaAPIError, ArenaClient
from study.records import AttemptStatus
from tests.e2e.conftest import VANILLA


def raw(server, method, path, token=None, **kwargs):
    headers = kwargs.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, server.url + path, headers=headers, timeout=10, **kwargs)


def error_of(call):
    with pytest.raises(ArenaAPIError) as info:
        call()
    return info.value


def test_malformed_json_and_non_utf8_bodies(server):
    tok = server.participant("hal").token
    bad_json = raw(server, "POST", "/v1/attempts", tok, content=b"{not json",
                   headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 422 and bad_json.json()["code"] == "invalid"
    latin1 = raw(server, "POST", "/v1/attempts", tok,
                 content=b'{"task": "rt_sentiment", "source": "# caf\xe9"}',
                 headers={"Content-Type": "application/json"})
    assert latin1.status_code == 400 and latin1.json()["code"] == "invalid"
    assert "parsing the body" in latin1.json()["message"]
    surrogate = raw(server, "POST", "/v1/attempts", tok,
                    content=b'{"task": "rt_sentiment", "source": "x = 1  # \\ud800"}',
                    headers={"Content-Type": "application/json"})
    assert surrogate.status_code == 422 and "UTF-8" in surrogate.json()["message"]
    missing = raw(server, "POST", "/v1/attempts", tok, json={"task": "rt_sentiment"})
    assert missing.status_code == 422 and "source" in missing.json()["message"]


def test_source_problems_are_named(server):
    ivy = server.participant("ivy")
    big = error_of(lambda: ivy.submit("x = 1\n" * 5000, "rt_sentiment"))
    assert big.status == 413 and "at most 20000" in big.message
    assert error_of(lambda: ivy.submit("   \n", "rt_sentiment")).message == \
        "the method source is empty"
    syntax = error_of(lambda: ivy.submit("def run(ctx)\n    pass\n", "rt_sentiment"))
    assert syntax.status == 422 and "line 1" in syntax.message
    unknown = error_of(lambda: ivy.submit(VANILLA, "no_such_task"))
    assert unknown.status == 404 and "unknown task 'no_such_task'" in unknown.message
    huge = raw(server, "POST", "/v1/attempts", ivy.token,
               content=b'{"source": "' + b"x" * 11_000_000 + b'"}',
               headers={"Content-Type": "application/json"})
    assert huge.status_code == 413
    assert ivy.quota().attempts_used == 0  # nothing above cost an attempt


def test_tokens_missing_unknown_revoked_expired(server):
    assert raw(server, "GET", "/v1/me").status_code == 401
    assert raw(server, "GET", "/v1/me", "w2s_not-a-token").json()["message"] == "unknown token"
    jay = server.participant("jay")
    assert jay.me().participant.display_name == "jay"
    with server.admin() as admin:
        admin.revoke_token(jay.token_id)
    revoked = error_of(jay.me)
    assert revoked.status == 401 and "revoked" in revoked.message
    short = server.participant("kim", hours=0.0003)  # about one second
    assert short.me().participant.display_name == "kim"
    time.sleep(1.5)
    expired = error_of(short.me)
    assert expired.status == 401 and "expired" in expired.message


def test_roles_on_every_kind_of_route(server):
    lee, mia = server.participant("lee"), server.participant("mia")
    analyst = server.participant("ana", role="analyst")
    assert error_of(lambda: lee.add_participant("x", arm="human")).status == 403
    assert error_of(lambda: lee.export("attempts")).status == 403
    assert error_of(lambda: lee.attempts(everyone=True)).status == 403
    assert error_of(lambda: analyst.submit(VANILLA, "rt_sentiment")).status == 403
    assert error_of(lambda: analyst.add_participant("x", arm="human")).status == 403
    view = lee.submit(VANILLA, "rt_sentiment")
    other = error_of(lambda: mia.attempt(view.id))
    assert other.status == 404  # another participant's attempt does not exist for mia
    assert error_of(lambda: mia.cancel(view.id)).status == 404
    assert error_of(lambda: mia.post("result", "mine?", "", attempt_id=view.id)).status == 404
    done = lee.wait(view.id, poll=0.1)
    assert done.private is None
    seen_by_analyst = analyst.attempt(view.id)
    assert seen_by_analyst.private is not None and seen_by_analyst.source == VANILLA
    assert analyst.export("events")[:4] == b"PAR1"
    board = mia.leaderboard()
    assert [r.display_name for r in board] == ["lee"]
    assert not hasattr(board[0], "private_pgr")


def test_duplicate_submit_with_one_idempotency_key(server):
    ned = server.participant("ned")
    first = ned.submit(VANILLA, "rt_sentiment", idempotency_key="retry-me")
    second = ned.submit(VANILLA, "rt_sentiment", idempotency_key="retry-me")
    assert first.id == second.id
    via_header = raw(server, "POST", "/v1/attempts", ned.token,
                     json={"task": "rt_sentiment", "source": VANILLA},
                     headers={"Idempotency-Key": "retry-me"})
    assert via_header.status_code == 200 and via_header.json()["id"] == first.id
    assert len(ned.attempts()) == 1 and ned.quota().attempts_used == 1


def test_a_client_that_disconnects_mid_upload_leaves_nothing(server):
    oli = server.participant("oli")
    body = b'{"task": "rt_sentiment", "source": "' + b"#" * 5000
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST /v1/attempts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nAuthorization: Bearer " + oli.token.encode() +
                     b"\r\nContent-Length: 100000\r\n\r\n" + body)
        time.sleep(0.3)
    time.sleep(0.3)
    assert oli.attempts() == []
    assert oli.health()  # and the server carries on


def test_ten_clients_submitting_at_once(server):
    clients = [server.participant(f"p{i}") for i in range(10)]
    results, errors = [], []

    def go(client: ArenaClient) -> None:
        try:
            results.append(client.submit(VANILLA, "rt_sentiment"))
        except Exception as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len({r.id for r in results}) == 10
    with server.admin() as admin:
        assert len(admin.attempts(everyone=True)) == 10
    for client, view in zip(clients, sorted(results, key=lambda v: v.participant_id),
                            strict=False):
        assert view.status in (AttemptStatus.QUEUED, AttemptStatus.RUNNING)
        assert client.health()


def test_dry_runs_check_a_method_and_are_capped_per_day(server):
    uli = server.participant("uli")
    ok = uli.dry_run(VANILLA, "rt_sentiment")
    assert ok.ok and ok.n_predictions == 2000 and 0 <= ok.mean_prediction <= 1
    broken = uli.dry_run("def run(ctx):\n    return [0.5]\n", "rt_sentiment")
    assert not broken.ok and "got 1 predictions for 2000 test items" in broken.error
    uli.dry_run(VANILLA, "rt_sentiment")
    capped = error_of(lambda: uli.dry_run(VANILLA, "rt_sentiment"))
    assert capped.status == 429 and "3 of 3" in capped.message
    assert uli.quota().attempts_used == 0  # dry runs are not attempts
