"""Command-line interface: ``ucimage VERB ...``."""
