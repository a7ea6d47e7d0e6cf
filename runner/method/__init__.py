"""The method API (`Context`) and the machinery that runs a method in its own process."""

from runner.method.context import Budget, Context, MethodAPIError, TaskBrief

__all__ = ["Budget", "Context", "MethodAPIError", "TaskBrief"]
