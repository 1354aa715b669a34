"""Carrier SMSC simulator: a real SMPP 3.4 server standing in for MTN Uganda and Airtel Uganda.

It is the outside world for the rest of the project, so it imports nothing from `services`
or `libs` and checks what it receives with its own decoding (the `gsm0338` codec, not ours).
Run it with `python -m simulators.carrier --help`.
"""
