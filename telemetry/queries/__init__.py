"""The read API of telemetry storage: typed functions and small dataclasses for the read side.

Code here is the only reader that knows where and how telemetry is kept (tables, views, Redis keys);
`command_center.selectors` turns its results into panels.
"""
