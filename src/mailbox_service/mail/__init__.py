"""Email as the service sends it: a document type's templates rendered into a MIME message
(`email.py`, with `formatting.py` for money and dates), handed to the SMTP relay (`smtp.py`),
and the ways that can fail (`failures.py`).

Both senders of email use it: the notification worker (`notifications/`) and the payment
reminders (`senders/reminders.py`). It knows nothing of the outbox or of reminders, so it sits
below both (docs/architecture.md, "Layers").
"""
