"""TLS to the MQTT broker, one model for both sides (docs/security.md "TLS").

The edge (YAML ``broker.tls``, paho) and the center (``GRIDWATCH_MQTT__TLS__*``, aiomqtt)
connect the same way: the broker's certificate is always verified, against ``ca_file`` or the
system's CAs, and a client certificate is a ``cert_file`` + ``key_file`` pair. Writing that
once keeps the two from drifting (a check added on one side only, a different TLS version).
The broker's own listener (``simulators.local_services.BrokerTls``) names its files the same.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, model_validator


class TlsFiles(BaseModel):
    """The PEM files of one end of a TLS connection: the CA that verifies the other end, and
    this end's certificate with its key (both or neither)."""

    model_config = ConfigDict(extra="forbid")

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("give both cert_file and key_file, or neither")
        return self

    def relative_to(self, folder: Path) -> Self:
        """A copy whose relative paths start at ``folder`` (the edge's YAML file's folder, so a
        config and its certificates can move together)."""
        return self.model_copy(update={
            name: (folder / value).resolve() for name in ("ca_file", "cert_file", "key_file")
            if (value := getattr(self, name)) is not None and not value.is_absolute()})


class MqttTls(TlsFiles):
    """A client's TLS to the broker. ``ca_file`` verifies the broker's certificate (unset: the
    system's CAs); ``cert_file`` + ``key_file`` is a client certificate, for brokers that
    require one (``require_certificate true``)."""

    #: Skip the host name check (a certificate issued for another name). Never in production.
    insecure: bool = False

    def _context_args(self) -> dict[str, Any]:
        """The arguments paho's ``tls_set`` and aiomqtt's ``TLSParameters`` share."""
        return {"ca_certs": str(self.ca_file) if self.ca_file else None,
                "certfile": str(self.cert_file) if self.cert_file else None,
                "keyfile": str(self.key_file) if self.key_file else None,
                "cert_reqs": ssl.CERT_REQUIRED, "tls_version": ssl.PROTOCOL_TLS_CLIENT}

    def apply(self, client: Any) -> None:
        """Turn TLS on for a paho ``mqtt.Client`` (before it connects)."""
        client.tls_set(**self._context_args())
        client.tls_insecure_set(self.insecure)

    def aiomqtt_kwargs(self) -> dict[str, Any]:
        """``tls_params`` and ``tls_insecure`` for ``aiomqtt.Client(host, port, ...)``."""
        import aiomqtt  # the center's client; the edge does not need it installed

        return {"tls_params": aiomqtt.TLSParameters(**self._context_args()),
                "tls_insecure": self.insecure}
