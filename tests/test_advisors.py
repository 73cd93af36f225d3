"""Advisors: every search_algorithm name gives a working, seeded Optuna sampler; the skopt sampler."""

from __future__ import annotations

import sys
from statistics import median

import numpy as np
import optuna
import pytest
from optuna.study import StudyDirection

from autodistill.advisors import ADVISORS, AdvisorView, _AskTellGridSampler, make_advisor
from autodistill.advisors.skopt_sampler import SkoptSampler, import_skopt, scalarise
from autodistill.errors import ConfigError
from autodistill.space import Architecture, SearchSpace

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = SearchSpace.from_mapping(
    {
        # one categorical of each value type (a categorical's choices are all of one type)
        "width": [128, 256], "act": ["wide", "narrow"], "ratio": [0.5, 1.0], "flag": [True, False],
        "layers": {"low": 1, "high": 6},
        "lr": {"low": 1e-5, "high": 1e-2, "log": True},
    }
)
# a grid needs a step on every float range
GRID_SPACE = SearchSpace.from_mapping(
    {
        # one categorical of each value type (a categorical's choices are all of one type)
        "width": [128, 256], "act": ["wide", "narrow"], "ratio": [0.5, 1.0], "flag": [True, False],
        "layers": {"low": 1, "high": 6},
        "dropout": {"low": 0.0, "high": 0.5, "step": 0.1},
    }
)


def objectives(architecture: Architecture) -> list[float]:
    """A deterministic 2-objective stand-in for (accuracy up, latency down)."""
    numbers = [float(v) for v in architecture.values() if not isinstance(v, str)]
    accuracy = -sum((x - 0.3) ** 2 for x in numbers)
    return [accuracy, float(len(str(architecture.to_dict())))]


def run_study(
    sampler: optuna.samplers.BaseSampler,
    space: SearchSpace,
    n_trials: int,
    study: optuna.Study | None = None,
) -> list[Architecture]:
    """Ask/tell `n_trials` trials; the proposed architectures, in order."""
    study = study or optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    proposals = []
    for _ in range(n_trials):
        trial = study.ask()
        architecture = space.suggest(trial)
        proposals.append(architecture)
        study.tell(trial, objectives(architecture))
    return proposals


@pytest.mark.parametrize("name", ADVISORS.names())
def test_every_advisor_proposes_inside_the_space_in_a_two_objective_study(name):
    space = GRID_SPACE if name == "grid" else SPACE
    sampler = make_advisor(name, space=space, seed=3, n_objectives=2)
    proposals = run_study(sampler, space, n_trials=3)
    assert len(proposals) == 3
    for architecture in proposals:
        assert space.contains(architecture), architecture


@pytest.mark.parametrize(
    ("name", "sampler_type"),
    [
        ("BO", optuna.samplers.GPSampler),
        ("bo", optuna.samplers.GPSampler),
        ("TPE", optuna.samplers.TPESampler),
        ("Random", optuna.samplers.RandomSampler),
        ("GRID", optuna.samplers.GridSampler),
        ("nsga2", optuna.samplers.NSGAIISampler),
        ("SKOPT", SkoptSampler),
    ],
)
def test_names_are_case_insensitive_and_map_to_the_expected_sampler(name, sampler_type):
    space = GRID_SPACE if name.lower() == "grid" else SPACE
    advisor = make_advisor(name, space=space, seed=0, n_objectives=2)
    if sampler_type in (optuna.samplers.GPSampler, SkoptSampler):  # asked through the advisor's view
        assert isinstance(advisor, AdvisorView)
        advisor = advisor.sampler
    assert isinstance(advisor, sampler_type)
    # nothing more specific than expected, except grid's ask/tell variant (a GridSampler subclass)
    expected = _AskTellGridSampler if sampler_type is optuna.samplers.GridSampler else sampler_type
    assert type(advisor) is expected


def test_grid_advisor_runs_the_whole_grid_under_ask_and_tell():
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=make_advisor("grid", space=GRID_SPACE, seed=0, n_objectives=2))
    size = GRID_SPACE.size()
    for _ in range(size):
        trial = study.ask()
        GRID_SPACE.suggest(trial)
        study.tell(trial, [0.5, 1.0])  # optuna's GridSampler would raise here on the last point
    keys = {Architecture.from_params(t.params).key() for t in study.trials}
    assert len(keys) == size


@pytest.mark.parametrize("name", ["random", "TPE", "skopt", "BO"])
def test_same_seed_gives_same_proposals_and_another_seed_others(name):
    # 6 trials: past skopt's 5 initial points, so a fitted proposal is compared too
    first, second, other = (
        run_study(make_advisor(name, space=SPACE, seed=seed, n_objectives=2), SPACE, n_trials=6)
        for seed in (11, 11, 12)
    )
    assert [a.key() for a in first] == [a.key() for a in second]
    assert [a.key() for a in first] != [a.key() for a in other]


def test_unknown_advisor_name_is_a_config_error_listing_the_choices():
    with pytest.raises(ConfigError) as caught:
        make_advisor("bayes", space=SPACE, seed=0, n_objectives=2)
    message = str(caught.value)
    assert "search_algorithm" in message and "'bayes'" in message
    for name in ("BO", "TPE", "random", "grid", "NSGA2", "skopt"):
        assert name in message


def test_grid_advisor_over_a_continuous_float_range_says_it_needs_a_step():
    with pytest.raises(ConfigError, match="step"):
        make_advisor("grid", space=SPACE, seed=0, n_objectives=2)


@pytest.mark.parametrize(
    ("seed", "n_objectives", "problem"),
    [
        (-1, 2, "seed"),
        (1.5, 2, "seed"),
        (True, 2, "seed"),
        (0, 0, "n_objectives"),
        (0, "2", "n_objectives"),
    ],
)
def test_make_advisor_rejects_a_bad_seed_or_objective_count(seed, n_objectives, problem):
    with pytest.raises(ConfigError, match=problem):
        make_advisor("random", space=SPACE, seed=seed, n_objectives=n_objectives)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"n_initial_points": 0}, "n_initial_points"),
        ({"base_estimator": "SVM"}, "base_estimator"),
        ({"acq_func": "UCB"}, "acq_func"),
        ({"seed": -5}, "seed"),
    ],
)
def test_skopt_sampler_rejects_bad_arguments_at_construction(kwargs, problem):
    with pytest.raises(ConfigError, match=problem):
        SkoptSampler(**kwargs)


def test_skopt_missing_is_an_import_error_naming_the_pip_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "skopt", None)  # makes `import skopt` fail
    with pytest.raises(ImportError, match="pip install scikit-optimize"):
        import_skopt()


def test_skopt_proposes_every_kind_of_dimension_itself_after_n_initial_points():
    space = SearchSpace.from_mapping(
        {
            "width": [128, 256], "act": ["wide", "narrow"], "ratio": [0.5, 1.0], "flag": [True, False],
            "inter": {"low": 64, "high": 384, "step": 64},
            "heads": {"low": 1, "high": 16, "log": True},
            "blocks": {"low": 0.0, "high": 5.0, "step": 1.0},
            "lr": {"low": 1e-5, "high": 1e-2, "log": True},
            "dropout": {"low": 0.0, "high": 0.5},
        }
    )
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=SkoptSampler(seed=5, n_initial_points=2)
    )
    for number in range(5):
        trial = study.ask()
        architecture = space.suggest(trial)
        assert space.contains(architecture), architecture
        # relative params are skopt's answer; the first trials come from the random fallback
        expected = {} if number < 2 else architecture.to_dict()
        assert Architecture.from_params(trial.relative_params) == Architecture(expected)
        study.tell(trial, objectives(architecture))


def test_skopt_study_is_stored_in_sqlite_and_resumes_with_the_same_proposals(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(
        storage=storage,
        study_name="search",
        directions=["maximize", "minimize"],
        sampler=SkoptSampler(seed=21, n_initial_points=2),
    )
    before = run_study(study.sampler, SPACE, n_trials=2, study=study)

    # a new process: a fresh sampler over the stored study
    reloaded = optuna.load_study(
        study_name="search", storage=storage, sampler=SkoptSampler(seed=21, n_initial_points=2)
    )
    assert [Architecture.from_params(t.params) for t in reloaded.trials] == before
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in reloaded.trials)
    after = run_study(reloaded.sampler, SPACE, n_trials=2, study=reloaded)

    # the resumed trials are past n_initial_points: skopt fitted them on the stored trials
    uninterrupted = run_study(SkoptSampler(seed=21, n_initial_points=2), SPACE, n_trials=4)
    assert [a.key() for a in before + after] == [a.key() for a in uninterrupted]


def maximise_near(optimum: float, directions: list[str], seed: int) -> list[float]:
    """Proposals of x in [0, 1] for objectives that all peak at x = optimum."""
    study = optuna.create_study(
        directions=directions, sampler=SkoptSampler(seed=seed, n_initial_points=2)
    )
    proposals = []
    for _ in range(12):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        proposals.append(x)
        gap = (x - optimum) ** 2
        study.tell(trial, [-gap if d == "maximize" else gap for d in directions])
    return proposals


@pytest.mark.parametrize("directions", [["maximize"], ["maximize", "minimize"]])
def test_skopt_fitted_proposals_concentrate_near_the_optimum(directions):
    # random proposals would have a median distance near 0.3; a sign error would push
    # the model to the edges of [0, 1], 0.3 or 0.7 away
    proposals = maximise_near(0.3, directions, seed=0)
    later = proposals[6:]
    assert median(abs(x - 0.3) for x in later) < 0.05, proposals


def test_scalarise_flips_maximised_objectives_and_ranks_a_dominating_trial_first():
    values = np.array([[3.0, 10.0], [1.0, 20.0], [2.0, 15.0]])  # (accuracy up, latency down)
    directions = [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
    scalars = scalarise(values, directions, weights=np.array([0.5, 0.5]))
    assert scalars[0] == 0.0  # best on both objectives
    assert scalars[0] < scalars[2] < scalars[1]
    assert scalars[1] == pytest.approx(0.5 + 0.05 * 1.0)  # worst on both: max + rho * sum


@pytest.mark.parametrize("name", ["BO", "TPE", "skopt"])
def test_model_based_advisors_stop_copying_random_after_the_startup_trials(name):
    def run(advisor_name):
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_advisor(
            advisor_name, space=SPACE, seed=5, n_objectives=2, startup_trials=3))
        proposals = []
        for _ in range(8):
            trial = study.ask()
            arch = SPACE.suggest(trial)
            proposals.append(arch.key())
            numbers = [v for v in arch.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
            study.tell(trial, [sum(numbers) % 7, len(arch.key()) % 5])
        return proposals

    assert run(name)[3:] != run("random")[3:]


def test_startup_trials_default_to_a_third_of_the_budget_between_3_and_10():
    from autodistill.config.schema import SearchSection

    def section(**kw):
        return SearchSection(search_space={"a": [1, 2]}, **kw)

    assert section(max_trials=8).random_startup_trials == 3
    assert section(max_trials=60).random_startup_trials == 10
    assert section(max_trials=20).random_startup_trials == 6
    assert section(max_trials=20, startup_trials=4).random_startup_trials == 4


def _screened_search(sampler: optuna.samplers.BaseSampler, *, trained: int, asks: int) -> tuple[int, int]:
    """A search whose slow architectures (hidden x layers > 200) are screened out before
    training, as the search loop does: pruned, with a screened_reason. (screened proposals,
    proposals of an architecture screened before)."""
    from optuna.trial import TrialState

    from autodistill.study.record import SCREENED_REASON

    space = SearchSpace.from_mapping({"hidden_size": [8, 16, 32, 64, 128, 256],
                                      "num_hidden_layers": {"low": 1, "high": 4}})
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    screened, again, done = 0, 0, 0
    seen: set[str] = set()
    for _ in range(asks):
        trial = study.ask()
        arch = space.suggest(trial)
        latency = arch["hidden_size"] * arch["num_hidden_layers"]
        if latency > 200:
            trial.set_user_attr(SCREENED_REASON, "too slow")
            study.tell(trial, state=TrialState.PRUNED)
            screened, again = screened + 1, again + (arch.key() in seen)
            seen.add(arch.key())
            continue
        study.tell(trial, [1 - latency ** -0.5, latency])  # bigger: more accurate, slower
        done += 1
        if done == trained:
            break
    return screened, again


def test_bo_does_not_propose_a_screened_architecture_again():
    screened, again = _screened_search(make_advisor("BO", space=SPACE, seed=0, n_objectives=2, startup_trials=3),
                                       trained=6, asks=30)
    assert again == 0 and screened <= 6
    # Optuna's GPSampler alone learns nothing from the pruned trials: it asks for them again
    _, plain_again = _screened_search(optuna.samplers.GPSampler(seed=0, n_startup_trials=3), trained=6, asks=15)
    assert plain_again >= 5


def test_skopt_proposing_a_point_told_before_prints_no_warning():
    import warnings

    tiny = SearchSpace.from_mapping({"layers": {"low": 1, "high": 2}})
    sampler = SkoptSampler(seed=0, n_initial_points=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # skopt's "has been evaluated at point ... before" would raise
        proposals = run_study(sampler, tiny, n_trials=6)
    assert {a["layers"] for a in proposals} == {1, 2}


@pytest.mark.parametrize("name", ["BO", "skopt"])
def test_the_advisor_never_sees_a_repeat_and_sees_pruned_trials_as_pending(name):
    """Repeats recorded as the search records them (a trial of its own with the earlier trial's values and
    `repeat_of`) are left out of the study the wrapped sampler reads; screened ones are shown running."""
    from optuna.trial import TrialState

    from autodistill.study.record import REPEAT_OF, TrialRecord, write

    space = SearchSpace.from_mapping({"hidden_size": [8, 16, 32], "num_hidden_layers": [1, 2, 3]})
    advisor = make_advisor(name, space=space, seed=0, n_objectives=2, startup_trials=3)
    assert isinstance(advisor, AdvisorView)
    seen: list[list[tuple[int, TrialState, bool]]] = []  # (number, state, a repeat) as each ask saw them
    original = advisor.sampler.sample_relative

    def spy(study, trial, search_space):
        seen.append([(t.number, t.state, REPEAT_OF in t.user_attrs) for t in study.get_trials(deepcopy=False)])
        return original(study, trial, search_space)

    advisor.sampler.sample_relative = spy
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=advisor)
    first: dict[str, optuna.trial.FrozenTrial] = {}
    for ask in range(14):
        if ask % 3 == 2 and first:  # the advisor proposes a trained architecture again
            study.enqueue_trial(dict(next(iter(first.values())).params))
        trial = study.ask()
        arch = space.suggest(trial)
        if arch.key() in first:
            earlier = first[arch.key()]
            write(trial, TrialRecord.from_trial(earlier).reused(repeat_of=earlier.number))
            study.tell(trial, earlier.values)
        elif arch["hidden_size"] * arch["num_hidden_layers"] > 40:  # screened out: pruned
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, [1 - 1 / arch["hidden_size"], arch["hidden_size"] * arch["num_hidden_layers"]])
            first[arch.key()] = study.trials[-1]
    repeats = [t for t in study.trials if REPEAT_OF in t.user_attrs]
    assert len(repeats) >= 4 and len(seen) >= 9  # asked for every trial but the queued ones
    for trials in seen:
        assert not any(repeat for _, _, repeat in trials)
        assert not any(state == TrialState.PRUNED for _, state, _ in trials)  # shown as running
    last = seen[-1]
    assert [n for n, state, _ in last if state == TrialState.COMPLETE] == [
        t.number for t in first.values() if t.number < len(study.trials) - 1]
