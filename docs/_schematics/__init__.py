"""The modules behind ``docs/schematics.py``: drawing helpers (`draw`) and one
module per group of lessons (`cells`, `attention`, `search`)."""
