"""The floor that the edge and the center both stand on: the wire protocol (MQTT messages and
topics, the websocket envelope) and where shared files live. It imports neither side
(docs/architecture.md), so either can change without the other's code."""
