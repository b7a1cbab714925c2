"""The one TLS-context provider every door takes its context from.

Today it reads the certificate chain and key files named in `[tls]`; the certificate store of the
issue "Platform" plugs in here later (with SNI). A door asks for the context at each new
connection, and the provider reloads the files when they change, so a renewed certificate reaches
every door without a restart.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

from wildpy.config import ConfigError, TlsConfig

log = logging.getLogger("wildpy.tls")


class TlsProvider:
    def __init__(self, settings: TlsConfig) -> None:
        self._certificate = Path(settings.certificate) if settings.certificate else None
        self._key = Path(settings.key) if settings.key else None
        if (self._certificate is None) != (self._key is None):
            raise ConfigError("tls: set both certificate and key, or neither")
        self._context: ssl.SSLContext | None = None
        self._stamp: tuple[float, float] | None = None
        if self._certificate is not None:
            self.context()  # a bad file stops the start, with one line

    @property
    def configured(self) -> bool:
        return self._certificate is not None

    def context(self) -> ssl.SSLContext | None:
        """The server context for a new connection; None when no certificate is configured."""
        if self._certificate is None or self._key is None:
            return None
        try:
            stamp = (self._certificate.stat().st_mtime, self._key.stat().st_mtime)
        except OSError as exc:
            if self._context is not None:
                log.error("TLS files unreadable (%s); keeping the loaded certificate", exc)
                return self._context
            raise ConfigError(f"tls: cannot read {exc.filename}: {exc.strerror}") from None
        if stamp != self._stamp:
            self._context = self._load()
            self._stamp = stamp
        return self._context

    def _load(self) -> ssl.SSLContext:
        assert self._certificate is not None and self._key is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self._certificate, self._key)
        except (OSError, ssl.SSLError) as exc:
            if self._context is not None:
                log.error("new TLS certificate not loaded (%s); keeping the previous one", exc)
                return self._context
            raise ConfigError(f"tls: cannot load {self._certificate}: {exc}") from None
        log.info("TLS certificate loaded from %s", self._certificate)
        return context
