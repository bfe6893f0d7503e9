"""Sections that the apps above `tasks` add to the task page, without `tasks` importing them.

A section is a template included in the task detail page (after "Participants", in registration order) and a
function that builds its context; the page puts that context under the section's ``name``. ``training``
registers its "Training" section (rounds, chart, participants' node states, the start button) in
``TrainingConfig.ready()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TaskPageSection:
    name: str  # the template reads its context as {{ <name>.… }}; must not clash with the page's own keys
    template: str
    context: Callable[..., dict[str, Any]]  # (*, request, task) -> the section's context


class _Sections:
    def __init__(self) -> None:
        self._sections: dict[str, TaskPageSection] = {}

    def register(self, section: TaskPageSection) -> TaskPageSection:
        """Add a section; the same section again is a no-op, another one under a taken name a ValueError."""
        known = self._sections.get(section.name)
        if known is not None and known != section:
            raise ValueError(f"task page section {section.name!r} is already registered as {known!r}")
        self._sections[section.name] = section
        return section

    def all(self) -> list[TaskPageSection]:
        return list(self._sections.values())


task_detail_sections = _Sections()
