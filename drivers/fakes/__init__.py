"""Wire-level fakes: pty processes speaking the SpectraMax and BioTek bytes, and the
pyvisa-sim definitions of a SCPI reader, all over the same seeded :class:`PlateModel` as
the protocol-level simulator, so tests know the plate they should get back.

* ``python -m drivers.fakes.spectramax --link PATH …`` / ``python -m drivers.fakes.biotek``
  (faults and the control socket: ``drivers.fakes.server``);
* :class:`drivers.fakes.process.FakeProcess`: start one, wait until it is ready, change its
  faults at run time, stop it (what the tests and ``platewatch demo`` use);
* ``drivers/fakes/scpi_reader.yaml``: pyvisa-sim definitions written by
  ``python -m drivers.fakes.scpi_sim`` from the plate model (seed 1).
"""
