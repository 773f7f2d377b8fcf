"""Publishing: the seed's tag scheme and what git says about the commit being pushed."""

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
