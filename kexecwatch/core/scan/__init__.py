"""The scanner stage: blocks of whole lines, scanned in bulk with the fast path and the native
library.

Takes blocks of lines and the prefilter; gives the events a rule may need, process-table
updates for the rest, and counts.
"""
