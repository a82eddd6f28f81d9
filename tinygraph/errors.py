"""tinygraph's errors: one base class, each kind also a subclass of the matching builtin."""

from __future__ import annotations


class TinygraphError(Exception):
    """Base class of every error tinygraph raises on purpose."""


class ShapeError(TinygraphError, ValueError):
    """Operands whose shapes do not fit the op (broadcasting, matmul, reshape, a layer's width)."""


class AxisError(TinygraphError, ValueError, IndexError):
    """An axis out of range, or a reduction over an empty axis."""


class IndexOutOfRange(TinygraphError, IndexError):
    """Indexing a node out of its bounds."""


class DTypeError(TinygraphError, TypeError):
    """Data of a kind tinygraph does not hold (int, bool, complex, object, str, None)."""


class GraphError(TinygraphError, RuntimeError):
    """Misuse of the graph: backward without a gradient, a cycle, a stale graph, a bad rule."""


class AnomalyError(TinygraphError, RuntimeError):
    """Raised in detect_anomaly() mode where a NaN or Inf first appears."""


class InputError(TinygraphError, ValueError):
    """A value outside what the function accepts (a class label, a target, a setting)."""


class GradcheckError(TinygraphError, AssertionError):
    """Analytic and numerical Jacobians differ."""


class LoadError(TinygraphError, ValueError):
    """A saved file that does not fit the model or is not safe to load."""


class ModuleError(TinygraphError, NotImplementedError):
    """A module called without a forward method to run."""


class ReadOnlyError(TinygraphError, ValueError):
    """Writing into a node's data in place (node.data[i] = v): assign new data instead."""


class ArgTypeError(InputError, TypeError):
    """An argument of the wrong type (a str where a number goes, a number where a name goes):
    an InputError like any bad argument, and a TypeError."""


class NotFound(TinygraphError, KeyError):
    """A lookup by name that found nothing (a layer in a report, a node in a view)."""

    def __str__(self) -> str:  # KeyError would show the message quoted, as a repr
        return str(self.args[0]) if self.args else ""
