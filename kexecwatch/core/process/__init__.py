"""The process stage: an event becomes a process event, and the process table names its
parents.

Takes events; gives process events (ECS documents) with their parents, entry leaders and
identities.
"""
