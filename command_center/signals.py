"""Read-side events. `health_changed` is sent by the probe task on every service state transition with
`service`, `old_status`, `new_status` (service states of the contract, section 10) and `ts` (aware datetime).
"""

from django.dispatch import Signal

health_changed = Signal()
