"""The audit stage: bytes of an audit log become records, and records events.

Takes lines; gives records (a header and raw fields) and events (the records that share a
node and an audit id), with parse issues and lost events as values.
"""
