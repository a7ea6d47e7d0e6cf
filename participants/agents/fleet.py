"""Running several agents side by side: their folders, their registration, their threads, and
one exit status that says whether any of them died.

Layout under the workspaces root: `<name>/` is the agent's workspace (all its tools can reach);
`.harness/<name>/` holds what only the harness may touch (its token, its state with the dollars
spent), out of reach of the agent's file tools and of a sandbox that mounts only the workspace.
"""

from __future__ import annotations

import logging
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from participants.sdk import ArenaClient

log = logging.getLogger("w2s_arena.agents")


def harness_dir(workspaces: Path, name: str) -> Path:
    return workspaces / ".harness" / name


def agent_client(workspaces: Path, name: str, *, url: str | None, admin_token: str | None,
                 arm: str) -> ArenaClient:
    """The agent's own token, kept in its harness folder so a restarted harness is the same
    participant; the first time, an admin token registers it (a name another agent of the
    study already has is refused by the server)."""
    token_file = harness_dir(workspaces, name) / "token"
    old = workspaces / name / ".token"  # where harnesses before this layout kept it
    if old.is_file() and not token_file.exists():
        token_file.parent.mkdir(parents=True, exist_ok=True)
        old.replace(token_file)
    if token_file.exists():
        return ArenaClient(url, token_file.read_text().strip())
    if not admin_token:
        raise ValueError(f"{name} has no token yet: pass --admin-token (or set "
                         "ARENA_ADMIN_TOKEN) so it can be registered")
    with ArenaClient(url, admin_token) as admin:
        issued = admin.add_participant(name, arm=arm, kind="agent")
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(issued.token + "\n")
    token_file.chmod(0o600)
    return ArenaClient(url, issued.token)


@dataclass
class Outcome:
    name: str
    stopped: str | None = None  # the budget that ended it
    died: str | None = None  # an exception that escaped the harness
    spent_usd: float = 0.0
    iterations: int = 0


def run_agents(agents: list[Any]) -> list[Outcome]:
    """Run each agent in its own thread until it stops; an agent that raises is reported as
    died (with its traceback in the log), never silently counted as finished."""
    outcomes = {a.config.name: Outcome(a.config.name) for a in agents}

    def run(agent: Any) -> None:
        outcome = outcomes[agent.config.name]
        try:
            agent.run()
        except BaseException as exc:  # whatever it was, the agent is dead: say so
            outcome.died = f"{type(exc).__name__}: {exc}"
            log.error("%s died:\n%s", agent.config.name, traceback.format_exc())
        outcome.stopped = agent.state.stopped
        outcome.spent_usd, outcome.iterations = agent.state.spent_usd, agent.state.iteration

    threads = [threading.Thread(target=run, args=(a,), name=a.config.name) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return list(outcomes.values())


def exit_code(outcomes: list[Outcome]) -> int:
    """0 when every agent stopped at a budget; 1 when any died or stopped for no reason."""
    return 1 if any(o.died or not o.stopped for o in outcomes) else 0
