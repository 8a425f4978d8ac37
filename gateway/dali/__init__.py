"""DALI on the gateway.

- :mod:`lykta.dali_bus` (shared core): the ``DaliBus`` interface every transport implements;
- :mod:`gateway.dali.board`: ``BoardDaliBus``, a ``DaliBus`` on the firmware bridge board;
- :mod:`gateway.dali.timing`: bus time per frame (the one source of those figures);
- :mod:`gateway.dali.planner`: wanted levels -> fewest broadcast/group/short-address frames (pure);
- :mod:`gateway.dali.budget`: the bus-time budget for background work (pure);
- :mod:`gateway.dali.driver`: ``DaliLuminaireDriver`` — levels, states, D4i banks, presence;
- :mod:`gateway.dali.lunatone`: python-dali's Lunatone serial drivers as a ``DaliBus``.
"""
