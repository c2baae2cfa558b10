"""Named exceptions. Every message says what is wrong and what to do about it.

`exit_code` is what the CLI returns (README, "Exit codes"):

| code | meaning |
|---|---|
| 0 | published |
| 1 | quarantined: the run finished, a suite failed |
| 2 | bad input: nothing was written |
| 3 | internal or environment failure: disk full, read-only output, Prefect server not reachable, a bug |
"""

PUBLISHED, QUARANTINED, BAD_INPUT, FAILURE = 0, 1, 2, 3


class SynthpipeError(Exception):
    """Base class: the CLI prints the message on one line, without a traceback."""

    exit_code = BAD_INPUT


class BadInputError(SynthpipeError):
    """The user's input (file, spec, parameter) cannot be used as given."""


class SpecError(BadInputError):
    """The job spec is invalid: the message names the field and the allowed values."""


class SourceError(BadInputError):
    """The source data is missing, unreadable, empty or unusable."""


class UnknownGeneratorError(BadInputError):
    """No generator is registered under the requested "modality/family" name."""


class ConditionError(BadInputError):
    """A sampling condition names an unknown column or a value never seen in the source."""


class UnsafeCheckpointError(BadInputError):
    """A checkpoint asked to load something other than plain data."""


class NotFittedError(SynthpipeError):
    """`sample` or `save` was called before `fit`: a bug in the caller."""

    exit_code = FAILURE


class RunNotFoundError(BadInputError):
    """A run folder or job named by the user does not exist."""


class OutputError(BadInputError):
    """The output path is not a folder (a file, or under one), found before anything
    was fitted or written. Not writable or too small: `EnvironmentFailure`."""


class IntegrityError(BadInputError):
    """A run's part files are not the ones its manifest recorded (changed, missing or added)."""


class QuarantinedError(SynthpipeError):
    """A quarantined run was asked for where only published runs are allowed."""

    exit_code = QUARANTINED


class EnvironmentFailure(SynthpipeError):
    """The machine failed the run, not the input: the disk filled up, the output became
    read-only, the Prefect server could not be reached. Retrying may heal it."""

    exit_code = FAILURE
