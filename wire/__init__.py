"""The floor that the edge and the center both stand on: the wire protocol (MQTT messages and
topics, the websocket envelope: protocol.py), the names both must agree on (vocabulary.py), the
model registry both read (models.py), how bad input is reported (errors.py: one "key path:
message" form), TLS to the broker (mqtt_tls.py) and where shared files live (paths.py). It
imports neither side (docs/architecture.md), so either can change without the other's code."""
