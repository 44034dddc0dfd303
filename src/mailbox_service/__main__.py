"""`python -m mailbox_service` runs the command line."""

from mailbox_service.cli import main

main()
