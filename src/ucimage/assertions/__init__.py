"""Assertions: codec, OpenPGP keys and signatures, types and rules, trust database."""
