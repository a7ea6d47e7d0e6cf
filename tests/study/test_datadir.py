"""Tasks from a data folder in the AAR layout: loaded, hashed and cached like built-in tasks;
bad folders refused with the reason before anything is cached; `arena tasks check`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from study.cli import app
from study.errors import InvalidError
from study.protocol import load_protocol, parse_protocol
from study.settings import cache_dir
from study.tasks.datadir import load_data_dir, prepare_protocol_tasks
from tests.conftest import REPO
from tests.lm_data import SIZES, write_aar_like, write_keyword_task

PROTOCOL = """
name = "lm"
model_pair = "tiny-lm"
[tasks]
hill_climb = ["keywords"]
[[datasets]]
name = "keywords"
kind = "classify"
folder = "{folder}"
description = "Is the keyword in this text a positive one?"
label_names = ["negative", "positive"]
[lm]
baseline_seeds = 2
[[arms]]
name = "human"
"""


def test_a_folder_loads_with_a_stable_hash_and_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("ARENA_CACHE_DIR", str(tmp_path / "cache"))
    folder = write_keyword_task(tmp_path / "data")
    task = load_data_dir(folder, name="keywords", kind="classify")
    assert task.info.sizes == {"weak_train": 40, "train": 240, "test": 160}
    assert load_data_dir(folder, name="keywords", kind="classify").info.content_hash == \
        task.info.content_hash
    protocol = parse_protocol(PROTOCOL.format(folder=folder))
    tasks = prepare_protocol_tasks(protocol)
    cached = cache_dir() / "tasks" / "keywords" / tasks["keywords"].info.content_hash
    assert json.loads((cached / "task.json").read_text())["role"] == "hill_climb"
    assert (cached / "train.jsonl").exists()
    # One changed row is a new task (new hash), never a stale cache hit.
    lines = (folder / "test.jsonl").read_text().splitlines()
    row = json.loads(lines[0])
    row["label"] = 1 - row["label"]
    (folder / "test.jsonl").write_text("\n".join([json.dumps(row), *lines[1:]]) + "\n")
    assert load_data_dir(folder, name="keywords", kind="classify").info.content_hash != \
        task.info.content_hash


def test_folder_path_expands_environment_variables(tmp_path, monkeypatch):
    write_keyword_task(tmp_path / "aar" / "chat")
    monkeypatch.setenv("ARENA_AAR_DATA", str(tmp_path / "aar"))
    assert load_data_dir("${ARENA_AAR_DATA}/chat", name="chat", kind="classify").info.sizes[
        "test"] == 160
    monkeypatch.delenv("ARENA_AAR_DATA")
    with pytest.raises(InvalidError, match="environment variable not set"):
        load_data_dir("${ARENA_AAR_DATA}/chat", name="chat", kind="classify")


def _break(folder, name, text):
    (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "test.jsonl").unlink(), r"lacks test\.jsonl"),
    (lambda f: (f / "train_label.jsonl").open("a").write('{"text": "x", "label": 7}\n'),
     r"train_label\.jsonl:41: classify label must be 0 or 1"),
    (lambda f: (f / "train_unlabel.jsonl").open("a").write("not json\n"),
     r"train_unlabel\.jsonl:241:"),
    (lambda f: _break(f, "train_label.jsonl", '{"text": "a b", "label": 1}\n' * 3),
     r"train_label\.jsonl has only label 1"),
    (lambda f: _break(f, "test.jsonl", ""), r"test\.jsonl has no rows"),
    (lambda f: (f / "test.jsonl").open("a").write(
        (f / "train_unlabel.jsonl").read_text().splitlines()[0] + "\n"),
     r"1 item\(s\) appear in both train_unlabel\.jsonl and test\.jsonl"),
])
def test_bad_folders_are_refused_with_the_reason(tmp_path, monkeypatch, damage, message):
    monkeypatch.setenv("ARENA_CACHE_DIR", str(tmp_path / "cache"))
    folder = write_keyword_task(tmp_path / "data")
    damage(folder)
    with pytest.raises(InvalidError, match=message):
        prepare_protocol_tasks(parse_protocol(PROTOCOL.format(folder=folder)))
    assert not (tmp_path / "cache" / "tasks").exists()  # nothing cached from a bad folder


def test_repeated_dataset_names_are_refused(tmp_path):
    folder = write_keyword_task(tmp_path / "data")
    text = PROTOCOL.format(folder=folder)
    twice = text.replace("[lm]", text[text.index("[[datasets]]"):text.index("[lm]")] + "[lm]")
    with pytest.raises(InvalidError, match=r"names repeat: \['keywords'\]"):
        prepare_protocol_tasks(parse_protocol(twice))


def test_old_protocols_load_without_the_lm_tables():
    protocol = parse_protocol('name = "x"\n[tasks]\nhill_climb = ["rt_sentiment"]\n'
                              '[[arms]]\nname = "human"\n')
    assert protocol.datasets == [] and protocol.models is None and protocol.lm == {}


def test_arena_tasks_check_prints_sizes_balance_and_token_lengths(tmp_path):
    folder = write_keyword_task(tmp_path / "data")
    result = CliRunner().invoke(app, ["tasks", "check", str(folder), "--kind", "classify"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name, n in SIZES.items():
        assert name in result.output and f" {n} " in result.output
    # Nine words, [CLS] and [SEP]: eleven BERT tokens, twelve where a keyword is two pieces
    # ("tedious" → "ted", "##ious"): counted by the tokenizer, not guessed from words.
    assert "11 / 11 / 12 / 12" in result.output and "[[datasets]]" in result.output
    (folder / "train_label.jsonl").write_text('{"text": "a", "label": 0}\n')
    bad = CliRunner().invoke(app, ["tasks", "check", str(folder), "--kind", "classify"])
    assert bad.exit_code == 2 and "only label 0" in bad.output
    assert CliRunner().invoke(app, ["tasks"]).exit_code == 0  # the listing still works
    offline = CliRunner().invoke(
        app, ["tasks", "check", str(folder), "--kind", "classify", "--model",
              "Qwen/Qwen3-4B-Base"],
        env={"COLUMNS": "400", "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")})
    assert offline.exit_code == 2, offline.output
    assert f"(protocol [models]), the Hugging Face cache ({tmp_path / 'hub'})" in offline.output


def test_the_shipped_lm_protocols_load_and_aar_reads_its_folders(tmp_path, monkeypatch):
    assert load_protocol(REPO / "protocols" / "tiny-lm.toml").model_pair == "tiny-lm"
    aar = load_protocol(REPO / "protocols" / "aar.toml")
    assert aar.model_pair == "aar" and aar.lm["lora_r"] == 32 and aar.lm["baseline_seeds"] == 16
    monkeypatch.setenv("ARENA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ARENA_AAR_DATA", str(write_aar_like(tmp_path / "aar")))
    tasks = prepare_protocol_tasks(aar)
    assert (tasks["chat"].kind, tasks["chat"].info.role) == ("pairwise", "hill_climb")
    assert (tasks["math"].kind, tasks["math"].info.role) == ("verify", "held_out")
    assert set(tasks["code"].subsets("test")) == {"level0", "level1"}
    root = tmp_path / "aar"
    check = lambda name, kind: CliRunner().invoke(  # noqa: E731
        app, ["tasks", "check", str(root / name), "--kind", kind], env={"COLUMNS": "200"})
    chat, math = check("chat", "pairwise"), check("math", "verify")
    assert chat.exit_code == 0 and " 240 " in chat.output, chat.output
    assert math.exit_code == 0 and "level0, level1" in math.output, math.output
    wrong = check("chat", "verify")  # pairwise rows read as verify rows
    assert wrong.exit_code == 2 and "train_label.jsonl:1:" in wrong.output, wrong.output


def test_a_built_in_task_takes_the_role_the_protocol_gives_it():
    """tiny-lm climbs rt_sentiment, which the catalogue files as held out: the study shows it
    as its hill-climb task, with the catalogue's hash (same data, features and baselines)."""
    from study.tasks import prepare_task

    tasks = prepare_protocol_tasks(load_protocol(REPO / "protocols" / "tiny-lm.toml"))
    catalogue = prepare_task("rt_sentiment")
    assert str(catalogue.info.role) == "held_out"
    assert str(tasks["rt_sentiment"].info.role) == "hill_climb"
    assert tasks["rt_sentiment"].info.content_hash == catalogue.info.content_hash


def test_arena_prepare_checks_every_folder_before_caching_or_fetching_a_model(tmp_path,
                                                                             monkeypatch):
    """A bad second folder: the error names file:line, no task is cached, and the model pair
    (a hub id here, missing offline) is not even looked up. Fixed, the model's own error says
    where it looked, with '[models]' printed as text."""
    from huggingface_hub import constants

    monkeypatch.setenv("ARENA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    good, bad = write_keyword_task(tmp_path / "good"), write_keyword_task(tmp_path / "bad", seed=1)
    with (bad / "test.jsonl").open("a") as rows:
        rows.write('{"text": "no label"}\n')
    text = PROTOCOL.format(folder=good).replace('model_pair = "tiny-lm"\n', "")
    text = text.replace('hill_climb = ["keywords"]', 'hill_climb = ["keywords"]\n'
                        'held_out = ["other"]')
    text += (f'[[datasets]]\nname = "other"\nkind = "classify"\nfolder = "{bad}"\n'
             '[models]\nweak = "Qwen/Qwen1.5-0.5B-Chat"\nstrong = "Qwen/Qwen3-4B-Base"\n')
    protocol = tmp_path / "p.toml"
    protocol.write_text(text)
    prepare = lambda: CliRunner().invoke(app, ["prepare", "--protocol", str(protocol)],  # noqa: E731
                                         env={"COLUMNS": "400"})
    refused = prepare()
    assert refused.exit_code == 2 and "bad/test.jsonl:161" in refused.output, refused.output
    assert not (tmp_path / "cache").exists()  # no task copy, no model built or fetched
    (bad / "test.jsonl").write_text((bad / "test.jsonl").read_text().rsplit('{"text"', 1)[0])
    missing = prepare()
    assert missing.exit_code == 2 and "model_unavailable" in missing.output, missing.output
    assert "a local folder (protocol [models])" in missing.output
    assert f"the Hugging Face cache ({constants.HF_HUB_CACHE})" in missing.output
    assert "HF_HUB_OFFLINE" in missing.output


def test_no_study_is_created_on_a_bad_folder(tmp_path, monkeypatch):
    """`arena study create` (and `arena up`, which creates the study the first time) check the
    folders first: the reason, exit 2, and no study file a server could not open."""
    monkeypatch.setenv("ARENA_CACHE_DIR", str(tmp_path / "cache"))
    folder = write_keyword_task(tmp_path / "data")
    (folder / "train_unlabel.jsonl").unlink()
    protocol = tmp_path / "p.toml"
    protocol.write_text(PROTOCOL.format(folder=folder))
    for command in (["study", "create", str(protocol)],
                    ["up", "--protocol", str(protocol), "--workspace-port", "0"]):
        result = CliRunner().invoke(app, [*command, "--data-dir", str(tmp_path / "study")],
                                    env={"COLUMNS": "400"})
        assert result.exit_code == 2, result.output
        assert "lacks train_unlabel.jsonl" in result.output
        assert not (tmp_path / "study").exists() and not (tmp_path / "cache").exists()
    # A good folder but an LM the machine does not have: arena up says where it looked
    # (instead of a traceback from the server it would start) and creates no study.
    write_keyword_task(folder)
    protocol.write_text(PROTOCOL.format(folder=folder).replace(
        'model_pair = "tiny-lm"', '[models]\nweak = "Qwen/Qwen1.5-0.5B-Chat"\n'
        'strong = "tiny-qwen3"').replace("[tasks]", "\n[tasks]", 1))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    result = CliRunner().invoke(app, ["up", "--protocol", str(protocol), "--workspace-port", "0",
                                      "--data-dir", str(tmp_path / "study")],
                                env={"COLUMNS": "400"})
    assert result.exit_code == 2 and "model_unavailable" in result.output, result.output
    assert f"Hugging Face cache ({tmp_path / 'hub'})" in result.output
    assert not (tmp_path / "study").exists()


def test_a_study_pins_its_data_and_refuses_a_changed_folder(tmp_path, monkeypatch):
    """The frozen protocol carries each data folder's content hash: the server rebuilding its
    tasks from a folder edited since (one label flipped) is refused with the reason, never
    re-baselined mid-study; an amendment written without the hashes keeps the study's."""
    from study.protocol import ProtocolSpec
    from study.server import create_study, db_path
    from study.service import ArenaService
    from study.store import Database, Store

    monkeypatch.setenv("ARENA_CACHE_DIR", str(tmp_path / "cache"))
    folder = write_keyword_task(tmp_path / "data")
    text = PROTOCOL.format(folder=folder)
    issued = create_study(tmp_path / "study", parse_protocol(text))
    db = Database(db_path(tmp_path / "study"))
    try:
        store = Store(db)
        frozen = ProtocolSpec.model_validate_json(store.get_study()["protocol_json"])
        pinned = frozen.datasets[0].content_hash
        unpinned = prepare_protocol_tasks(parse_protocol(text))["keywords"].info.content_hash
        assert pinned == unpinned and parse_protocol(text).datasets[0].content_hash is None
        assert prepare_protocol_tasks(frozen)["keywords"].info.content_hash == pinned
        service = ArenaService(store, frozen)
        admin = service.authenticate(issued.token)
        out = service.amend_protocol(admin, text.replace('name = "lm"', 'name = "lm"\n'
                                                         'seeds_per_attempt = 2'), reason="x")
        assert service.protocol.datasets[0].content_hash == pinned and out["rescored"] == 0
        with pytest.raises(InvalidError, match="fixed for a study's life"):
            service.amend_protocol(admin, text.replace(str(folder), str(tmp_path / "other")),
                                   reason="new data")
    finally:
        db.close()
    lines = (folder / "test.jsonl").read_text().splitlines()
    row = json.loads(lines[0])
    row["label"] = 1 - row["label"]
    (folder / "test.jsonl").write_text("\n".join([json.dumps(row), *lines[1:]]) + "\n")
    with pytest.raises(InvalidError, match=f"changed since the study was created: content "
                                           f"hash [0-9a-f]{{16}}, pinned {pinned}"):
        prepare_protocol_tasks(frozen)


def test_arena_serve_names_a_data_folder_gone_or_changed_since_the_study_began(tmp_path,
                                                                              monkeypatch):
    """Restarting the server in a shell without ARENA_AAR_DATA, or after the data changed:
    the reason and exit 2 before any server starts (was a traceback from its startup)."""
    from study.server import create_study

    monkeypatch.setenv("ARENA_CACHE_DIR", str(tmp_path / "cache"))
    folder = write_keyword_task(tmp_path / "aar" / "kw")
    monkeypatch.setenv("ARENA_AAR_DATA", str(tmp_path / "aar"))
    create_study(tmp_path / "study", parse_protocol(PROTOCOL.format(folder="${ARENA_AAR_DATA}/kw")))
    serve = lambda: CliRunner().invoke(app, ["serve", "--data-dir", str(tmp_path / "study"),  # noqa: E731
                                             "--slots", "0", "--port", "1"],
                                       env={"COLUMNS": "400"})
    monkeypatch.delenv("ARENA_AAR_DATA")
    unset = serve()
    assert unset.exit_code == 2 and "environment variable not set" in unset.output, unset.output
    monkeypatch.setenv("ARENA_AAR_DATA", str(tmp_path / "aar"))
    with (folder / "test.jsonl").open("a") as rows:
        rows.write('{"text": "one more item", "label": 1}\n')
    changed = serve()
    assert changed.exit_code == 2, changed.output
    assert "changed since the study was created" in changed.output
