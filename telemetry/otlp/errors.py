"""Errors raised while decoding an OTLP/HTTP request; each knows the HTTP status the receiver answers."""


class PayloadError(Exception):
    """A request body the receiver refuses; `message` is safe to send back to the client."""

    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedMediaType(PayloadError):
    """Content-Type (or Content-Encoding, RFC 9110 section 15.5.16) the receiver cannot read."""

    http_status = 415


class PayloadTooLarge(PayloadError):
    """Body larger than the cap, before or after decompression."""

    http_status = 413


class InvalidPayload(PayloadError):
    """Body that is not a valid OTLP message of the expected kind."""

    http_status = 400
