"""The OTLP/HTTP receiver: views, per-signal conversion, the durable metric buffer and its minute flush."""
