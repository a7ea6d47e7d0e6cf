"""The Experiments page: a human runs the template experiment through the same SDK call as the
agents' tool, and reads its output, its teacher comparison, its metrics and its files."""

from tests.participants.conftest import open_page, wait_until


def test_a_researcher_runs_an_experiment_and_reads_its_output(arena, app_for):
    researcher = arena.participant("exp-human")
    at = open_page(app_for(researcher), "experiments")
    at.text_input(key="exp_note").input("teacher mean")
    at.button(key="exp_run").click().run()
    assert not at.exception, at.exception
    (queued,) = researcher.experiments()
    assert queued.note == "teacher mean"
    wait_until(lambda: researcher.get_experiment(queued.id).status
               not in ("queued", "running"), timeout=600)
    at.run()
    assert not at.exception, at.exception
    done = researcher.get_experiment(queued.id)
    assert done.status == "finished", (done.error, done.stdout)
    shown = " ".join(str(c.value) for c in at.code)
    assert "teacher's mean label on train" in shown
    assert len(at.dataframe) == 1  # the comparison with the teacher's labels
    assert [b.proto.label for b in at.get("download_button")] == [
        f"labels.csv ({done.files[0].size} bytes)"]
