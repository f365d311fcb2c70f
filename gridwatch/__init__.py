"""The roof: the one ``gridwatch`` command over the center, the edge and the simulators.

It is the only package that may import all three (docs/architecture.md); each of them stands
on ``wire`` alone."""
