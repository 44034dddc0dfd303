"""Developer tools of mailbox-service, kept out of the production wheel.

`devstack` runs the backing servers as plain processes for `make run`, the tests and the
benchmarks; `demo` makes sample data (archives to backfill, the demo inbox); `cli` holds the
`mailbox-service dev …` and `demo …` commands, which the service's CLI loads from here on use.
A source checkout has this package on its path (the editable install adds `src/`); the wheel
that `uv build` makes holds only `mailbox_service`.
"""
