"""The field simulator: Modbus devices, DALI control gear and pedestrians that speak the real
protocols over real transports (TCP on loopback, pseudo-terminals). Used by the demo, tests and
benchmarks, never by production code paths."""
