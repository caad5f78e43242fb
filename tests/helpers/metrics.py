"""Reading the Prometheus metrics in tests: a sample's value, 0 when it does not exist yet."""

from __future__ import annotations

from prometheus_client import REGISTRY


def sample(name: str, **labels: str) -> float:
    """The value of one sample of the default registry (0.0 for a series not yet seen)."""
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


class Delta:
    """Remember samples now; ``delta(name, **labels)`` is how much each moved since."""

    def __init__(self) -> None:
        self._before: dict[tuple, float] = {}

    def watch(self, name: str, **labels: str) -> Delta:
        self._before[(name, tuple(sorted(labels.items())))] = sample(name, **labels)
        return self

    def delta(self, name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return sample(name, **labels) - self._before[key]
