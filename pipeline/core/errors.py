"""Named exceptions. Every message says what is wrong and what to do about it.

`exit_code` is what the CLI returns: 2 for bad input, 1 for a run that failed
validation (quarantined)."""


class SynthpipeError(Exception):
    """Base class: the CLI prints the message on one line, without a traceback."""

    exit_code = 2


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
    """`sample` or `save` was called before `fit`."""


class RunNotFoundError(BadInputError):
    """A run folder or job named by the user does not exist."""


class IntegrityError(BadInputError):
    """A run's part files are not the ones its manifest recorded (changed, missing or added)."""


class QuarantinedError(SynthpipeError):
    """A quarantined run was asked for where only published runs are allowed."""

    exit_code = 1
