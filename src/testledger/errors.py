"""Domain errors raised by services; each adapter (CLI, API, MCP) maps them once."""

from __future__ import annotations


class DomainError(Exception):
    """Base for errors a user can cause and fix. The message says what is wrong and how to fix it."""


class NotFound(DomainError):
    """The named object does not exist (in this workspace)."""


class Forbidden(DomainError):
    """The caller may see the object but its role does not allow this action."""


class Conflict(DomainError):
    """The request clashes with the stored state (an illegal transition, a duplicate key)."""


class Invalid(DomainError):
    """The input is malformed or out of range."""


class Unavailable(DomainError):
    """The store cannot be reached or is not at the schema this version needs."""


class Busy(Unavailable):
    """The store is locked by another writer; the same call may succeed a moment later."""
