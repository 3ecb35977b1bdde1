"""``kexecwatch live``: the full-screen terminal view.

Takes a followed log or recorded logs and the keyboard; gives a screen.
"""
