"""The search spends its proposals on valid, unexplored architectures: the random fallback draws
only what the task can build, a repeat is followed by an unexplored architecture at once, and a
finite space is exhausted once every valid architecture is settled (invalid ones never proposed)."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState
from torch import nn

from autodistill.config.schema import SearchSection
from autodistill.errors import InvalidArchitecture
from autodistill.study.protocol import TrainedStudent
from autodistill.study.search import AutoDistillation

SPACE = {"hidden_size": [4, 6, 8], "num_attention_heads": [2, 3, 4]}  # 9 points, 6 valid
# the names trials are recorded with (study/record.py: studies on disk hold them)
INVALID_REASON, PROPOSED_BY, REPEAT_OF = "invalid_reason", "proposed_by", "repeat_of"
VALID = {(4, 2), (4, 4), (6, 2), (6, 3), (8, 2), (8, 4)}


class HeadsTask:
    """A task whose builder refuses heads that do not divide the hidden size; nothing to train."""

    measures_cost = stops_early = False

    def __init__(self) -> None:
        self.built: list[tuple[int, int]] = []

    def check_architecture(self, architecture):
        if architecture["hidden_size"] % architecture["num_attention_heads"]:
            raise InvalidArchitecture("hidden_size is not divisible by num_attention_heads")

    def build(self, architecture):
        self.check_architecture(architecture)
        self.built.append((architecture["hidden_size"], architecture["num_attention_heads"]))
        return nn.Linear(architecture["hidden_size"], architecture["num_attention_heads"])

    def cost(self, model):
        return {}

    def train(self, model, callbacks=()):
        return TrainedStudent(model)

    def evaluate(self, model):
        return {"accuracy": model.in_features / 10, "params": sum(p.numel() for p in model.parameters())}

    def checkpoint_score(self, model):
        return 0.0

    def save(self, student, directory):
        pass

    def teacher_figures(self, recorded):
        return None


class StuckOnOne(optuna.samplers.RandomSampler):
    """Proposes (8, 4) every time, as a GP sure of its best point does."""

    def sample_independent(self, study, trial, name, distribution):
        return {"hidden_size": 8, "num_attention_heads": 4}[name]


def _agent(tmp_path, task, **extra):
    section = SearchSection(metrics=["accuracy", "params"], higher_is_better=[True, False],
                            **{"search_space": SPACE, "search_algorithm": "random", "max_trials": 50, "seed": 0,
                               **extra})
    return AutoDistillation(task, section, storage_url=f"sqlite:///{tmp_path / 's.db'}", study_name="s",
                            output_dir=tmp_path, save_students=False, progress=False)


def test_a_stuck_advisor_is_followed_by_every_valid_architecture_once_and_no_invalid_one(tmp_path):
    task = HeadsTask()
    agent = _agent(tmp_path, task)
    agent.study.sampler = StuckOnOne(seed=0)
    assert agent.valid_count() == 6
    agent.search_loop()  # ends: the space is exhausted, though max_trials is 50
    trials = agent.study.trials
    assert sorted(task.built) == sorted(VALID)  # each valid architecture built once
    assert not any(INVALID_REASON in t.user_attrs for t in trials)
    repeats = [t for t in trials if REPEAT_OF in t.user_attrs]
    # each repeat is followed by a random unexplored architecture, never a second repeat in a row
    assert all(trials[t.number + 1].user_attrs.get(PROPOSED_BY) for t in repeats if t.number + 1 < len(trials))
    assert len(repeats) == len(VALID) - 1 and all(t.state == TrialState.COMPLETE for t in repeats)


def test_the_search_never_draws_an_invalid_architecture_itself(tmp_path):
    """Proposals of the advisor may be invalid (recorded as such); the search's own draws are not."""
    agent = _agent(tmp_path, HeadsTask(), max_trials=6)
    agent.search_loop()
    drawn = [t for t in agent.study.trials if t.user_attrs.get(PROPOSED_BY)]
    assert not any(INVALID_REASON in t.user_attrs for t in drawn)
    assert sum(t.state == TrialState.COMPLETE and REPEAT_OF not in t.user_attrs for t in agent.study.trials) == 6



def test_bo_spends_a_finite_space_on_unexplored_architectures_with_repeats_hidden_from_it(tmp_path):
    """BO asked through its view (repeats hidden, advisors/advisor_view.py) still explores: every valid
    architecture is built once, and its own proposals are mostly unexplored ones."""
    space = {"hidden_size": [4, 6, 8, 12], "num_attention_heads": [2, 3, 4]}  # 9 of 12 valid
    valid = {(h, n) for h in space["hidden_size"] for n in space["num_attention_heads"] if h % n == 0}
    task = HeadsTask()
    agent = _agent(tmp_path, task, search_space=space, search_algorithm="BO", startup_trials=2)
    agent.search_loop()
    trials = agent.study.trials
    assert sorted(task.built) == sorted(valid)
    own = [t for t in trials if not t.user_attrs.get(PROPOSED_BY)]
    assert len(trials) < 50  # ended by exhausting the space, not by max_trials
    assert sum(REPEAT_OF in t.user_attrs for t in own) <= len(own) // 2
