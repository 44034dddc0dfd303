"""Signed webhooks: senders' endpoints, the fan-out of sender events to them, and delivery.

endpoints.py   the `webhook_endpoints` store (url, events, signing secret, state)
url_policy.py  which URLs may be endpoints (no link-local or metadata addresses), checked at
               creation and again, on the resolved address, at every attempt
signing.py     Standard Webhooks secrets, signatures and payloads
deliveries.py  the `webhook_deliveries` store: one record per (event, endpoint), claimed by
               compare-and-set like the notification outbox
sender.py      one HTTP POST to a receiver, pinned to the address the policy checked
courier.py     what the two jobs do: dispatch an event, deliver one delivery
actors.py      the dramatiq actors on the `webhooks` queue; sweep.py finds lost jobs
controller.py  `/v1/admin/webhooks` and `/v1/admin/webhook-deliveries`
"""
