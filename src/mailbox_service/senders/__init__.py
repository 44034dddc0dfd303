"""The sender's side of the loop: what happened to each document, told to the sender that
sent it (status API, change feed, signed webhooks), and the print fallback and reminders that
follow from it. `events` is the one record every part writes to and reads from."""
