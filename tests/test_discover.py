"""discover: the whole pipeline on small catalogue systems."""

import json

import pikan
import pikan.systems


def test_discover_positions_only_data_and_constant_free_law(tmp_path):
    """Data without velocities (a lab recording) and a law with no free constant after
    snapping (V = x**2/2) both go through: velocities are estimated, refinement is skipped."""
    entry = pikan.systems.get("harmonic")
    full = entry.simulate(n_trajectories=4, seed=0)
    positions = pikan.Trajectories.from_arrays([r.t for r in full], [r.q for r in full],
                                               coords=full.coords)
    run = pikan.discover(entry.model(), positions, out=tmp_path / "run", steps=150,
                         progress=False, plots=False)
    truth = entry.laws()["V"]
    assert pikan.equivalent(run.laws["V"].expr, truth), str(run.laws)
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["verification"]["rollout_error"] < 1e-2
    assert report["refinement"]["used"] in ("extracted", "refined")
