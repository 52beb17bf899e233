"""The probe: the smallest service built on the runtime, for the runtime's own tests.

A parent table (`probe`, with a unique name) and a child (`probe_item`, a foreign key to
it), a router over them, its own settings, migrations and `python -m probe`: what the
template's example gives the template's tests, kept here so that the proofs of the
runtime's mechanisms do not depend on an example a service removes.
"""
