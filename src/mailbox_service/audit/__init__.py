"""The audit trail (who did what to which account or document) and intrusion alerts.

`AuditTrail.record` only appends to an in-process buffer; a background task writes the buffer
as one hash-chained batch per UTC day (`chain.py`). `IntrusionAlerts` counts suspicious
failures in Redis and raises one `security.alert` log event per window (`alerts.py`).
"""

from mailbox_service.audit.alerts import IntrusionAlerts
from mailbox_service.audit.chain import AuditChain, DayReport
from mailbox_service.audit.entry import ACTIONS, ANONYMOUS, OPERATOR, key_actor, portal_actor
from mailbox_service.audit.trail import AuditTrail

__all__ = [
    "ACTIONS",
    "ANONYMOUS",
    "OPERATOR",
    "AuditChain",
    "AuditTrail",
    "DayReport",
    "IntrusionAlerts",
    "key_actor",
    "portal_actor",
]
