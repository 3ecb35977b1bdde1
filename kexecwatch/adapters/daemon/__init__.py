"""``kexecwatch run``: the daemon and its parts (follower, log files, checkpoint, journal,
outputs, notifications, /proc).

Takes the audit log by name, the configuration and the state directory; gives alerts to the
outputs, exactly once.
"""
