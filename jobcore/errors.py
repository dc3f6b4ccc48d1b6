"""Job errors, the base of every domain error. Permanent ones are listed in an actor's ``throws=`` so Retries never retries them."""

from __future__ import annotations


class JobError(Exception):
    """Base of every domain error."""


class PermanentError(JobError):
    """Retrying cannot help (bad input, a missing record, a declined card): fail at once."""


class BusinessOutcome(PermanentError):
    """An expected end of the business, not a fault (a declined card, a sold-out product).

    The job stops as for any permanent error (compensation runs, the message is stored), but its
    dead letter's reason is ``business_outcome``, so alerts on dead letters can leave it out.
    """


class InvalidInput(PermanentError):
    """A message's arguments are malformed: wrong type, out of range, unknown kind."""


class NotFound(PermanentError):
    """The record a message names does not exist."""


class TransientError(JobError):
    """Worth retrying with backoff (a timeout, a 5xx, a lock)."""


class InvalidSend(ValueError):
    """A send, group or limit was asked with options that cannot work (an empty group, a unique
    key over 200 characters, a limit below 1); raised at send time, before anything is written."""
