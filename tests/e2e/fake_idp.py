"""A minimal OpenID Connect provider on loopback, for browser tests of ``ARBOR_AUTH=oidc``.

It implements the authorization-code flow as Streamlit's ``st.login`` (Authlib) uses it: discovery,
``/authorize`` (signs in :attr:`FakeIdP.user` at once, no form), ``/token`` (an RS256-signed ID token
carrying the request's nonce) and ``/jwks``.  The test chooses who signs in by setting ``user``.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "arbor-console"
CLIENT_SECRET = "test-client-secret"


class FakeIdP:
    """Serve on ``127.0.0.1:<free port>`` in a daemon thread until :meth:`close`."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"})
        self.user: dict[str, Any] = {"sub": "u-1", "email": "ops@example.com", "name": "Ops"}
        self.codes: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _json(self, payload: dict[str, Any], status: int = 200) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/.well-known/openid-configuration":
                    self._json(idp.metadata())
                elif parts.path == "/jwks":
                    self._json({"keys": [idp.key.as_dict(private=False)]})
                elif parts.path == "/authorize":
                    code = secrets.token_urlsafe(16)
                    with idp.lock:
                        idp.codes[code] = {"nonce": query.get("nonce"), "user": dict(idp.user)}
                    target = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.end_headers()
                else:
                    self._json({"error": "not_found"}, 404)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if urlsplit(self.path).path != "/token":
                    self._json({"error": "not_found"}, 404)
                    return
                client_id, client_secret = form.get("client_id"), form.get("client_secret")
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
                with idp.lock:
                    grant = idp.codes.pop(form.get("code", ""), None)
                if (client_id, client_secret) != (CLIENT_ID, CLIENT_SECRET) or grant is None:
                    self._json({"error": "invalid_grant"}, 400)
                    return
                now = int(time.time())
                claims = {
                    "iss": idp.url,
                    "aud": CLIENT_ID,
                    "iat": now,
                    "exp": now + 600,
                    **grant["user"],
                }
                if grant["nonce"]:
                    claims["nonce"] = grant["nonce"]
                id_token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, idp.key)
                self._json(
                    {
                        "access_token": "access-token",
                        "token_type": "Bearer",
                        "expires_in": 600,
                        "id_token": id_token,
                    }
                )

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def metadata(self) -> dict[str, Any]:
        """The discovery document."""
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
