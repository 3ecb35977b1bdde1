"""Text from a log made safe to show: terminal-safe escapes and one-line JSON.

Takes strings and bytes from records; gives text no terminal or line reader can be steered
by. Also the base of the written-out value classes every stage uses
(:mod:`~kexecwatch.core.text.frozen`).
"""
