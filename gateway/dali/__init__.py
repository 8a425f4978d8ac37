"""DALI on the gateway: the bus interface, transports and the command planner."""
