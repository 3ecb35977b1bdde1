"""The detection stage: rules over process and telemetry events, and the alerts.

Takes bytes (through the stages below) and rules; gives alerts, process events and
diagnostics (:class:`~kexecwatch.core.detect.detector.Detector`).
"""
