"""Publishing: the release as a library call (``pipeline``: ``prepare_release``, then
``release``), its plan and push (``release``), the seed's tag scheme (``tags``) and what git
says about the commit being pushed (``git``)."""

from crossdock.publish.git import GitState, git_state
from crossdock.publish.tags import (
    DEFAULT_TEMPLATES,
    TagAssignment,
    format_timestamp,
    plan_tags,
    tag_digests,
)

__all__ = [
    "DEFAULT_TEMPLATES",
    "GitState",
    "TagAssignment",
    "format_timestamp",
    "git_state",
    "plan_tags",
    "tag_digests",
]
