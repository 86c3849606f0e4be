// Only type-checked (norun): the TLS block needs a certificate and a second host.
