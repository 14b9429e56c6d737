import pytest

from pikan.train.recipe import Recipe, Stage


def test_recipe_expands_adam_then_lbfgs_and_validates():
    recipe = Recipe([Stage.fit(100, "adam+lbfgs", sparsity=1e-3), Stage.prune(0.1),
                     Stage.adapt(), Stage.refine(8)])
    kinds = [(s.kind, s.optimizer, s.steps) for s in recipe]
    assert kinds[:2] == [("fit", "adam", 75), ("fit", "lbfgs", 25)]
    assert recipe.total_steps == 100 and recipe[1].sparsity == 1e-3
    assert Recipe.from_list(recipe.to_list()) == recipe
    assert "refine" not in repr(Recipe.default(100, refine=False))
    with pytest.raises(ValueError, match="stage kind"):
        Stage("train")
    with pytest.raises(ValueError, match="optimizer"):
        Stage.fit(10, "sgd")
    with pytest.raises(ValueError, match="at least one fit"):
        Recipe([Stage.prune()])
    with pytest.raises(TypeError, match="Stage records"):
        Recipe(["fit"])


def test_default_recipe_is_the_progressive_one():
    recipe = Recipe.default(100, sparsity=1e-2, threshold=0.05, grid=12)
    assert [str(s) for s in recipe] == [
        "fit(30 adam, sparsity=0.01)", "fit(10 lbfgs, sparsity=0.01)", "prune(0.05)", "adapt",
        "refine(12)", "fit(45 adam)", "fit(15 lbfgs)"]
    assert recipe.total_steps == 100
    assert [s.kind for s in Recipe.plain(8, "adamw")] == ["fit"]


def test_fit_stages_move_every_parameter_or_the_coefficients_alone():
    stage = Stage.fit(40, "lbfgs", params="coefficients")
    assert stage.params == "coefficients" and Stage.fit(40).params == "all"
    assert str(stage) == "fit(40 lbfgs, params=coefficients)"
    assert stage.label == "L-BFGS fit of the coefficients"
    assert Stage(**stage.to_dict()) == stage
    expanded = Recipe([Stage.fit(8, "adam+lbfgs", params="coefficients")])
    assert [s.params for s in expanded] == ["coefficients", "coefficients"]
    with pytest.raises(ValueError, match="params"):
        Stage.fit(10, params="scales")


def test_surrogate_recipe_is_find_laws_static_recipe():
    """Five L-BFGS fits of steps // 4 iterations in rounds of 20 (at least one round):
    coefficients, with sparsity, then after pruning and after each refinement."""
    recipe = Recipe.surrogate(800)
    assert [str(s) for s in recipe] == [
        "fit(200 lbfgs, params=coefficients)", "fit(200 lbfgs, sparsity=0.0001)",
        "prune(0.01)", "fit(200 lbfgs)", "refine(10)", "fit(200 lbfgs)", "refine(20)",
        "fit(200 lbfgs)"]
    assert Recipe.surrogate(30).total_steps == 5 * 20
    assert Recipe.surrogate(170).total_steps == 5 * 40
    assert Recipe.from_list(recipe.to_list()) == recipe
