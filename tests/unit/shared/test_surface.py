from __future__ import annotations

import shared


def _leaves(cls: type[shared.ProblemError]) -> list[type[shared.ProblemError]]:
    """The shared tree's concrete errors (services may subclass them with their own details)."""
    children = [child for child in cls.__subclasses__() if child.__module__.startswith("shared")]
    return [leaf for child in children for leaf in _leaves(child)] if children else [cls]


def test_every_problem_error_has_a_distinct_status() -> None:
    statuses = [cls.status for cls in _leaves(shared.ProblemError)]
    assert len(statuses) == len(set(statuses))
    assert all(400 <= status < 600 for status in statuses)
    assert {cls.status // 100 for cls in _leaves(shared.ClientError)} == {4}
    assert {cls.status // 100 for cls in _leaves(shared.ServerError)} == {5}
