"""The progress display (pikan/train/progress.py) when stderr is not a terminal (captured)."""

from pikan.train.progress import Progress


def row(step, val=None):
    return {"step": step, "stage": 0, "optimizer": "adam", "lr": 0.01, "loss": 0.5, "val": val}


def test_lines_every_few_steps_and_at_the_end(capsys):
    progress = Progress(True, total=12, initial=2, every=5)
    for step in range(3, 13):
        progress.update(row(step, val=0.25 if step == 10 else None))
    progress.message("done")
    progress.close()
    lines = capsys.readouterr().err.splitlines()
    assert [line.split()[3] for line in lines[:-1]] == ["5/12", "10/12", "12/12"]
    assert lines[0].startswith("[pikan fit] step 5/12 stage 1 adam loss 5.000e-01 lr 1.00e-02")
    assert "val 2.500e-01" in lines[1] and "val" not in lines[0]
    assert lines[0].endswith("s") and " eta " in lines[0]
    assert lines[-1] == "[pikan fit] done"


def test_disabled_prints_nothing(capsys):
    progress = Progress(False, total=4, initial=0, every=1)
    for step in range(1, 5):
        progress.update(row(step))
    progress.message("interrupted")
    progress.close()
    assert capsys.readouterr().err == ""
