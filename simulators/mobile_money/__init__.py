"""Mobile Money simulator: MTN MoMo and Airtel Money collection APIs on one HTTP port.

It is the outside world for the rest of the project, so it imports nothing from `services`
or `libs`. Run it with `python -m simulators.mobile_money --help`.
"""
