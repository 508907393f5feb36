"""The HTTP surfaces: the JSON API, the web pages, signed links and webhook ingress."""
