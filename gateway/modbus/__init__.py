"""Modbus on the gateway: declarative device profiles, the pure read planner, register decoding
and the asyncio poller (RTU over serial and Modbus TCP).

Entry points:

- :func:`gateway.modbus.profile.load_profile` / :func:`~gateway.modbus.profile.load_profiles`:
  TOML device profiles (``config/profiles/*.toml``) validated with pydantic;
- :func:`gateway.modbus.planner.plan_reads`: registers -> fewest read transactions;
- :func:`gateway.modbus.decode.decode_values`: raw registers -> scaled field values;
- :class:`gateway.modbus.poller.ModbusPoller`: polls one bus (serial line or TCP endpoint) and
  yields ``lykta.contract`` ``MeterReading`` / ``SensorReading`` and ``Event`` messages.
"""
