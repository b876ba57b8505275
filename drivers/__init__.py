"""Instrument drivers: one class per protocol with its transport passed in (STYLE.md §1–3).

Only the narrow interface the pipeline depends on exists so far (``drivers.base``); the
SpectraMax/BioTek protocol classes, the pty serial fake and the pyvisa-sim dialogues come
with the instrument issue.
"""
