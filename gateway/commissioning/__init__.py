"""Commissioning a cabinet: find, address, identify and test what is wired to its buses.

The pure core builds python-dali command sequences (generators that yield commands and get
the responses back, like ``dali.sequences``): :mod:`.addressing` (random address allocation
for control gear and DALI-2 control devices, duplicates), :mod:`.inventory` (D4i luminaire
information, device types, firmware), :mod:`.report` (found/missing/unexpected against the
site plan, JSON and HTML). :mod:`.runner` runs a sequence on a ``DaliBus`` and counts frames
and bus time; :mod:`.session` is the resumable step-by-step procedure behind
``lykta commission``; :mod:`.journal` keeps its progress on disk.
"""
