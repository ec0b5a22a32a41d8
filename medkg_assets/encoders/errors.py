"""Errors whose type names are recorded (metadata, metrics) so operators can count them."""


class EncoderError(RuntimeError):
    """Base class: an encoder could not produce valid vectors."""


class GpuNotAvailableError(EncoderError):
    """A profile that requires a GPU found none; it never falls back to the CPU."""


class EncoderUnavailableError(EncoderError):
    """A model server is unreachable or unhealthy, or a backend cannot run here."""


class ModelLoadError(EncoderError):
    """A model reference could not be loaded (missing path, package or hub access)."""


class DimensionMismatchError(EncoderError):
    """Vectors whose dimension differs from the profile's `dims`."""


class InvalidVectorError(EncoderError):
    """Vectors with NaN/inf values, or zero vectors where normalisation is required."""
