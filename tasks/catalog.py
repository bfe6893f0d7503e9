"""Registries of what a task is made of: aggregation rules, contribution scorers, model kinds.

`tasks` only names and describes the choices. The implementations live higher in the stack
(`training.defence`, `training.contribution`, `training.model_kinds`), which register their entries here in
`TrainingConfig.ready()`, so adding a rule, a scorer or a model kind is one entry in one training module and
every model field, form, service and the ServerApp read the same list. Domain rules that depend on the
choice (a robust rule needs at least ``min_participants`` per round) are read from the entry.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """One choice: ``name`` is the stored value, ``label`` what people read."""

    name: str
    label: str
    description: str = ""
    min_participants: int = 1  # a task using this choice needs at least this many participants per round
    default: bool = False


class UnknownChoice(ValueError):
    """A name that is not registered; the message lists the registered ones."""


class Catalog:
    """An ordered registry of :class:`Entry` by name (registration order is display order)."""

    def __init__(self, what: str):
        self.what = what
        self._entries: dict[str, Entry] = {}

    def register(self, entry: Entry) -> Entry:
        """Add ``entry``; registering the same entry again is a no-op, a different one under a taken name
        raises ``ValueError``."""
        known = self._entries.get(entry.name)
        if known is not None and known != entry:
            raise ValueError(f"{self.what} {entry.name!r} is already registered as {known!r}")
        self._entries[entry.name] = entry
        return entry

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self._entries) or "none registered"
            raise UnknownChoice(f"unknown {self.what} {name!r}; choose one of: {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def choices(self) -> list[tuple[str, str]]:
        return [(e.name, e.label) for e in self._entries.values()]

    def default(self) -> str:
        """The entry marked ``default`` (else the first registered one)."""
        for e in self._entries.values():
            if e.default:
                return e.name
        if not self._entries:
            raise UnknownChoice(f"no {self.what} is registered")
        return next(iter(self._entries))


aggregation_rules = Catalog("aggregation rule")
scorers = Catalog("contribution scorer")
model_kinds = Catalog("model kind")


# Callables for model fields and forms (Django evaluates callable choices lazily, after apps are ready).
def aggregation_rule_choices() -> list[tuple[str, str]]:
    return aggregation_rules.choices()


def aggregation_rule_default() -> str:
    """The default rule's name (``Task.aggregation_rule``'s default; a module function so migrations can name it)."""
    return aggregation_rules.default()


def scorer_choices() -> list[tuple[str, str]]:
    return scorers.choices()


def scorer_default() -> str:
    """The default contribution scorer's name (``Task.contribution_scorer``'s default)."""
    return scorers.default()


def model_kind_choices() -> list[tuple[str, str]]:
    return model_kinds.choices()
