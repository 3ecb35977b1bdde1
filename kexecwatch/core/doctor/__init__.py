"""The pure logic of ``kexecwatch doctor``: facts about a host judged into verdicts.

Takes what the audit tools print and plain facts collected by the shell; gives one check per
line of the report.
"""
