"""ucimage: build, sign, serve, boot and inspect Ubuntu Core images."""

__version__ = "0.1.0"
